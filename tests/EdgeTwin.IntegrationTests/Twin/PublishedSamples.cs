using EdgeTwin.Core.Samples;

namespace EdgeTwin.IntegrationTests.Twin;

/// <summary>What a derived-series stage (the PUE stage) publishes back into the pipeline, collected for the tests.</summary>
internal static class PublishedSamples
{
    public static int Count(List<Sample> list)
    {
        lock (list)
        {
            return list.Count;
        }
    }

    /// <summary>Waits up to 10 s for <paramref name="condition"/>; the assertions after it say what was missing.</summary>
    public static async Task WaitForAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!condition() && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20, TestContext.Current.CancellationToken);
        }
    }

    public sealed class ListSink(List<Sample> into) : ISampleSink
    {
        public ValueTask WriteAsync(ReadOnlyMemory<Sample> samples, CancellationToken cancellationToken)
        {
            lock (into)
            {
                into.AddRange(samples.Span);
            }

            return ValueTask.CompletedTask;
        }
    }
}
