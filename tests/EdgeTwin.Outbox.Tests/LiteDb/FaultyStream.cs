namespace EdgeTwin.Outbox.Tests.LiteDb;

/// <summary>Shared switch for every stream of one outbox: when armed, writes fail as a full disk does.</summary>
public sealed class DiskFaults
{
    private volatile bool _full;

    public bool Full
    {
        get => _full;
        set => _full = value;
    }

    public int FailedWrites;

    public Stream Wrap(FileStream inner) => new FaultInjectingStream(inner, ThrowIfFull, faultsSetLength: false);

    private void ThrowIfFull(string name)
    {
        if (Full)
        {
            Interlocked.Increment(ref FailedWrites);
            throw new IOException($"No space left on device : '{name}'", 28);
        }
    }
}

/// <summary>
/// A file stream whose writes and flushes (and, when <c>faultsSetLength</c>, length changes) first ask <c>fault</c>,
/// which throws the storage error under test (a full disk, a read-only file system) for the stream's file name.
/// </summary>
internal sealed class FaultInjectingStream(FileStream inner, Action<string> fault, bool faultsSetLength) : Stream
{
    public override bool CanRead => inner.CanRead;

    public override bool CanSeek => inner.CanSeek;

    public override bool CanWrite => inner.CanWrite;

    public override long Length => inner.Length;

    public override long Position { get => inner.Position; set => inner.Position = value; }

    public override void Flush()
    {
        fault(inner.Name);
        inner.Flush(flushToDisk: true);
    }

    public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);

    public override long Seek(long offset, SeekOrigin origin) => inner.Seek(offset, origin);

    public override void SetLength(long value)
    {
        if (faultsSetLength)
        {
            fault(inner.Name);
        }

        inner.SetLength(value);
    }

    public override void Write(byte[] buffer, int offset, int count)
    {
        fault(inner.Name);
        inner.Write(buffer, offset, count);
    }
}
