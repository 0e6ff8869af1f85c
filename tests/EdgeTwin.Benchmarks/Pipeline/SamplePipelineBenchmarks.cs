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
    private const int Batches = 1000;
    private const int BatchSize = 50;
    private const double ExpectedBatchSum = BatchSize * (BatchSize - 1) / 2; // values 0..49
    private readonly Sample[] _batch = new Sample[BatchSize];

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

    [Benchmark(OperationsPerInvoke = Batches * BatchSize)]
    public async Task WriteThousandBatchesOfFifty()
    {
        // Per stage, written once per batch: one sum shared by the stages' consumers was written by all of them per sample
        // (cache-line ping-pong the real pipeline does not have), and could not tell a stage that saw nothing.
        var samples = new long[Stages];
        var sums = new double[Stages];
        await using var pipeline = new SamplePipeline();
        for (var s = 0; s < Stages; s++)
        {
            var stage = s;
            pipeline.AddStage(new DelegateSampleStage("s" + s, (m, _) =>
            {
                var sum = 0.0;
                foreach (var x in m.Span)
                {
                    sum += x.Value;
                }

                sums[stage] += sum;
                samples[stage] += m.Length;
                return ValueTask.CompletedTask;
            }), new StageOptions(64));
        }

        pipeline.Start();
        for (var n = 0; n < Batches; n++)
        {
            await pipeline.WriteAsync(_batch, CancellationToken.None);
        }

        await pipeline.CompleteAsync(CancellationToken.None);
        for (var s = 0; s < Stages; s++)
        {
            if (samples[s] != Batches * BatchSize || sums[s] != Batches * ExpectedBatchSum)
            {
                throw new InvalidOperationException($"SamplePipeline({Stages} stages): stage s{s} saw {samples[s]} samples summing to {sums[s]}, not {Batches * BatchSize} summing to {Batches * ExpectedBatchSum}");
            }
        }
    }
}
