using BenchmarkDotNet.Attributes;
using EdgeTwin.Core.Pipeline;
using EdgeTwin.Core.Samples;

namespace EdgeTwin.Benchmarks.Pipeline;

/// <summary>
/// Throughput and allocations of the sample fan-out: 1000 batches of 50 samples through three stages.
/// Allocated bytes per operation should stay flat as the sample count grows (no per-sample allocation).
/// <c>dotnet run -c Release --project tests/EdgeTwin.Benchmarks -- --filter '*SamplePipeline*'</c>
/// </summary>
[MemoryDiagnoser]
public class SamplePipelineBenchmarks
{
    private readonly Sample[] _batch = new Sample[50];

    [Params(1, 3)]
    public int Stages { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        for (var i = 0; i < _batch.Length; i++)
        {
            _batch[i] = new Sample(new SeriesId(i), 1_700_000_000_000, i);
        }
    }

    [Benchmark(OperationsPerInvoke = 1000 * 50)]
    public async Task WriteThousandBatchesOfFifty()
    {
        double sum = 0;
        await using var pipeline = new SamplePipeline();
        for (var s = 0; s < Stages; s++)
        {
            pipeline.AddStage(new DelegateSampleStage("s" + s, (m, _) =>
            {
                foreach (var x in m.Span)
                {
                    sum += x.Value;
                }

                return ValueTask.CompletedTask;
            }), new StageOptions(64));
        }

        pipeline.Start();
        for (var n = 0; n < 1000; n++)
        {
            await pipeline.WriteAsync(_batch, CancellationToken.None);
        }

        await pipeline.CompleteAsync(CancellationToken.None);
        GC.KeepAlive(sum);
    }
}
