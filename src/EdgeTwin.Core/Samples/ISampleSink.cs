namespace EdgeTwin.Core.Samples;

/// <summary>
/// Where sources put what they read. The pipeline's implementation copies the batch into its bounded
/// channel, so callers may reuse their buffer as soon as the call completes. A full channel makes
/// <see cref="WriteAsync"/> wait (backpressure), never drop silently.
/// </summary>
public interface ISampleSink
{
    ValueTask WriteAsync(ReadOnlyMemory<Sample> samples, CancellationToken cancellationToken);
}
