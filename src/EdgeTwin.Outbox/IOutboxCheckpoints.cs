namespace EdgeTwin.Outbox;

/// <summary>A named blob an outbox keeps beside its entries. An empty <see cref="Value"/> removes it.</summary>
public readonly record struct OutboxBlob(string Name, ReadOnlyMemory<byte> Value);

/// <summary>
/// Small named blobs an outbox changes in the same durable commit as an append, so that a writer's own bookkeeping
/// (the summarizer's open windows) can never disagree with the records it has made: after a power cut the store holds
/// either both or neither.
/// </summary>
public interface IOutboxCheckpoints
{
    /// <summary>Appends <paramref name="records"/> (may be empty) and sets every blob of <paramref name="blobs"/>, all in one durable commit. Returns the sequence of the last record.</summary>
    ValueTask<long> AppendAsync(IReadOnlyList<OutboxRecord> records, IReadOnlyList<OutboxBlob> blobs, CancellationToken cancellationToken);

    /// <summary>The blob as last committed, or null when there is none.</summary>
    ValueTask<byte[]?> ReadBlobAsync(string name, CancellationToken cancellationToken);
}
