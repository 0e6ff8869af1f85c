using System.Text;
using EdgeTwin.Tests.Shared;
using EdgeTwin.Twin.Anomaly;
using EdgeTwin.Twin.Models;
using EdgeTwin.Twin.State;
using Xunit;

namespace EdgeTwin.Twin.Tests.Fuzz;

/// <summary>
/// Mutation fuzzing of the files a damaged disk or another build hands the twin: a model manifest.json (only
/// <see cref="ModelLoadException"/> naming file and field may escape), and a detector's saved learned state with its
/// layout description (only <see cref="InvalidDataException"/> or <see cref="EndOfStreamException"/>, which the anomaly
/// stage turns into "learning anew"). The state file's checksum is bypassed on purpose: these are the bytes behind it,
/// as a bug in another build or a checksum collision would present them. No input may allocate past a bound (a saved
/// length claiming 2 GB is not believed) or hang. EDGETWIN_FUZZ_ITERATIONS sets the long campaign.
/// </summary>
public sealed class FileFuzzTests(ITestOutputHelper output)
{
    [Fact]
    public void Model_manifest_parsing_only_throws_the_model_load_exception()
    {
        var manifest = File.ReadAllBytes(RepoFile("models/manifest.json"));
        byte[][] seeds = [manifest, Encoding.UTF8.GetBytes("""{"schemaVersion":1,"models":[]}""")];
        var report = MutationFuzzer.Run("model manifest", seeds, MutationFuzzer.Iterations(20_000), 41, json =>
        {
            var m = ModelManifest.Parse(json, "/etc/edgetwin/models/manifest.json");
            return m.Models.Count > 0;
        }, ex => ex is ModelLoadException, maxAllocatedBytes: 4 * 1024 * 1024);
        output.WriteLine(report.ToString());
    }

    [Fact]
    public void Detector_state_reading_only_throws_the_documented_exceptions()
    {
        var options = AnomalyDetectorOptions.Default;
        var seeds = new List<byte[]>();
        foreach (var samples in new[] { 50, 3_000 })
        {
            var d = new StreamingAnomalyDetector(options);
            for (var i = 0; i < samples; i++)
            {
                d.Update(i * 60_000L, 20 + (5 * Math.Sin(i / 30.0)) + (i % 17 == 0 ? 9 : 0));
            }

            using var stream = new MemoryStream();
            using (var w = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true))
            {
                DetectorStateCodec.Write(w, d);
            }

            seeds.Add(stream.ToArray());
        }

        var report = MutationFuzzer.Run("detector state", seeds, MutationFuzzer.Iterations(20_000), 42, bytes =>
        {
            using var r = new BinaryReader(new MemoryStream(bytes), Encoding.UTF8);
            _ = DetectorStateCodec.Read(r, options);
            return true;
        }, ex => ex is InvalidDataException or EndOfStreamException, maxAllocatedBytes: 16 * 1024 * 1024);
        output.WriteLine(report.ToString());
    }

    [Fact]
    public void Saved_layout_descriptions_only_throw_the_documented_exceptions()
    {
        // Another build's layout description, then the state read by it: fields skipped and kept by a damaged description.
        var options = AnomalyDetectorOptions.Default;
        var d = new StreamingAnomalyDetector(options);
        for (var i = 0; i < 500; i++)
        {
            d.Update(i * 60_000L, 20 + Math.Sin(i / 10.0));
        }

        using var stream = new MemoryStream();
        using (var w = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true))
        {
            DetectorStateCodec.Write(w, d);
        }

        var state = stream.ToArray();
        byte[][] seeds = [DetectorStateCodec.LayoutDescription.ToArray()];
        var report = MutationFuzzer.Run("saved layout", seeds, MutationFuzzer.Iterations(20_000), 43, description =>
        {
            var layout = FieldStateCodec.SavedLayout.Parse(description);
            _ = DetectorStateCodec.Differences(layout);
            using var r = new BinaryReader(new MemoryStream(state), Encoding.UTF8);
            _ = DetectorStateCodec.Read(r, options, layout);
            return true;
        }, ex => ex is InvalidDataException or EndOfStreamException, maxAllocatedBytes: 16 * 1024 * 1024);
        output.WriteLine(report.ToString());
    }

    private static string RepoFile(string relative)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, relative);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new FileNotFoundException($"{relative} not found above {AppContext.BaseDirectory}");
    }
}
