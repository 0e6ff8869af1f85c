using System.Runtime.InteropServices;
using System.Text.Json;
using Confluent.Kafka;

namespace EdgeTwin.IntegrationTests.Deployment;

/// <summary>
/// The linux-x64 release on a minimal Debian 12 x64 gateway (the cached debootstrap minbase root: no libsasl2-2) with a
/// Kafka uplink: a simulated site and the agent run chrooted in that root, librdkafka's mock cluster runs outside it in
/// this process (the chroot shares the network namespace), and what the cluster received is read back here.
/// </summary>
public sealed class KafkaMinimalGatewayTests(ITestOutputHelper output)
{
    private const string App = "/opt/edgetwin";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>
    /// Regression: release.sh kept only the glibc librdkafka.so in the x64 tarball, which needs libsasl2.so.3 (cyrus
    /// SASL, for GSSAPI), and a minbase Debian has no libsasl2-2. librdkafka did not load, <c>check</c> passed, and the
    /// Kafka uplink retried "could not connect … Failed to load the librdkafka native library." for ever, so nothing
    /// reached Kafka. The tarball now also ships centos8-librdkafka.so (no libsasl2), which Confluent.Kafka falls back to.
    /// </summary>
    [Fact]
    public async Task Regression_a_kafka_uplink_on_a_minimal_x64_gateway_delivered_nothing_as_librdkafka_needed_libsasl2()
    {
        var root = await GatewayRootAsync();
        using var cluster = new MockCluster();

        var run = await RunSiteAsync(root.Path, cluster.BootstrapServers);
        Assert.Contains("check exit 0", run.StdOut, StringComparison.Ordinal);

        var records = cluster.ReadAll();
        var data = records.Where(r => !r.Topic.EndsWith(".status", StringComparison.Ordinal)).ToList();
        Assert.True(data.Count > 0, $"no data record reached the cluster (topics: {string.Join(", ", records.Select(r => r.Topic).Distinct())}):\n{run.All}");
        using var first = JsonDocument.Parse(data[0].Value);
        Assert.Equal("gw-sim", first.RootElement.GetProperty("gateway").GetString());
        Assert.Contains(records, r => r.Topic == "edgetwin.sim.status");
        // The build without libsasl2 is the one that runs here, and the agent says which it loaded.
        Assert.Contains("/opt/edgetwin/centos8-librdkafka.so) loaded", run.All, StringComparison.Ordinal);
        Assert.DoesNotContain("Failed to load the librdkafka native library", run.All, StringComparison.Ordinal);
        output.WriteLine($"{data.Count} data records on {string.Join(", ", data.Select(r => r.Topic).Distinct().Order(StringComparer.Ordinal))}");
    }

    /// <summary>
    /// No librdkafka build loads (the tarball's fallback removed, as on a gateway provisioned by hand from an older
    /// tarball): <c>check</c> fails at <c>uplinks.kafka</c> naming libsasl2.so.3 and the package libsasl2-2, and the
    /// agent logs that at start as one error while its other stages run on (devices polled, outbox filled).
    /// </summary>
    [Fact]
    public async Task A_librdkafka_that_cannot_load_is_named_with_its_missing_library_and_package_at_check_and_start()
    {
        var root = await GatewayRootAsync();
        File.Delete(Path.Combine(root.Path, "opt", "edgetwin", "centos8-librdkafka.so"));
        using var cluster = new MockCluster();

        var run = await RunSiteAsync(root.Path, cluster.BootstrapServers);
        Assert.Contains("check exit 1", run.StdOut, StringComparison.Ordinal);
        Assert.Matches(@"site\.yaml:\d+:\d+: uplinks\.kafka: librdkafka cannot be loaded: /opt/edgetwin/librdkafka\.so needs libsasl2\.so\.3, which this system does not have \(Debian package libsasl2-2\)", run.All);
        Assert.Contains("apt-get install libsasl2-2", run.All, StringComparison.Ordinal);
        Assert.Matches(@"fail: EdgeTwin\.Uplink\.Kafka\.KafkaUplink\[65\] Uplink kafka: the Kafka uplink cannot run: librdkafka cannot be loaded: /opt/edgetwin/librdkafka\.so needs libsasl2\.so\.3", run.All);
        // Once, not per connect attempt; and no connect attempt blamed on the cluster.
        Assert.Single(run.All.Split('\n'), l => l.Contains("KafkaUplink[65]", StringComparison.Ordinal));
        Assert.DoesNotContain("could not connect to kafka://", run.All, StringComparison.Ordinal);
        // The other stages run on.
        Assert.Matches(@"Every device polled once in [\d.]+s: 8 up", run.All);
        Assert.Matches(@"Outbox closed cleanly with [1-9]\d* entries waiting", run.All);
        Assert.Empty(cluster.ReadAll());
    }

    private async Task<TempDir> GatewayRootAsync()
    {
        if (RuntimeInformation.OSArchitecture != Architecture.X64)
        {
            Assert.Skip("the x64 release runs natively on an x64 machine only");
        }

        var rootTar = await DeployCache.DebianRootAsync("amd64", output.WriteLine, Ct);
        var release = await DeployCache.ReleaseAsync("linux-x64", output.WriteLine, Ct);
        var work = new TempDir();
        var root = work.Path;
        await DeployCache.ExtractAsync(rootTar, root, Ct);
        await DeployCache.ExtractAsync(release, Path.Combine(root, "opt", "edgetwin"), Ct, stripComponents: 1);
        // The premise: the gateway is minimal, without cyrus SASL.
        var sasl = Directory.EnumerateFiles(Path.Combine(root, "usr", "lib"), "libsasl2.so*", SearchOption.AllDirectories).ToList();
        Assert.True(sasl.Count == 0, $"the minbase root has {string.Join(", ", sasl)}");
        return work;
    }

    /// <summary>
    /// In the root: a simulated site (SNMP and Modbus on loopback) writes its config, a Kafka uplink to
    /// <paramref name="bootstrap"/> is added, then <c>edgetwin check</c> and 25 s of <c>edgetwin run</c>.
    /// </summary>
    private async Task<Tool.Result> RunSiteAsync(string root, string bootstrap)
    {
        var script = $$"""
            set -u
            mkdir -p /etc/edgetwin /var/lib/edgetwin
            {{App}}/edgetwin sim --racks 2 --cooling-units 1 --machines 0 --interval 2s --duration 90 --config-out /etc/edgetwin/site.yaml > /tmp/sim.log 2>&1 &
            sim=$!
            i=0
            until grep -q 'site config written' /tmp/sim.log; do
              i=$((i + 1)); [ $i -lt 600 ] || { echo 'sim wrote no config'; cat /tmp/sim.log; kill $sim; exit 3; }; sleep 0.1
            done
            printf 'uplinks:\n  kafka: { bootstrap_servers: "%s" }\n' "$1" >> /etc/edgetwin/site.yaml
            {{App}}/edgetwin check --config /etc/edgetwin/site.yaml
            echo "check exit $?"
            timeout --preserve-status -s INT -k 10 25 {{App}}/edgetwin run --config /etc/edgetwin/site.yaml
            echo "run exit $?"
            kill $sim; wait $sim
            """;
        var unshare = Tool.Find("unshare") ?? throw new FileNotFoundException("unshare (util-linux)");
        var args = new List<string>
        {
            "-m", "--propagation", "private", "--", "/bin/sh", "-c",
            Tool.MountIntoRootScript(cpuInfo: false) + " && exec chroot \"$0\" /usr/bin/env HOME=/root /bin/sh -c \"$1\" script \"$2\"",
            root, script, bootstrap,
        };
        var started = DateTime.UtcNow;
        var result = await Tool.RunAsync(unshare, args, TimeSpan.FromMinutes(3), Ct, root);
        output.WriteLine($"---- [minbase x64 chroot] sim, check, run (exit {result.ExitCode}, {(DateTime.UtcNow - started).TotalSeconds:0.0} s)");
        output.WriteLine(result.All);
        Assert.Contains("run exit 0", result.StdOut, StringComparison.Ordinal);
        return result;
    }

    /// <summary>librdkafka's mock cluster, outside the chroot (in this process), and a reader of everything it holds.</summary>
    private sealed class MockCluster : IDisposable
    {
        private readonly IAdminClient _admin;

        public MockCluster()
        {
            var config = new AdminClientConfig();
            config.Set("test.mock.num.brokers", "1");
            _admin = new AdminClientBuilder(config).Build();
            BootstrapServers = string.Join(",", _admin.GetMetadata(TimeSpan.FromSeconds(30)).Brokers.Select(b => $"{b.Host}:{b.Port}"));
        }

        public string BootstrapServers { get; }

        /// <summary>Every record of every <c>edgetwin.*</c> topic, read from the beginning.</summary>
        public List<(string Topic, byte[] Value)> ReadAll()
        {
            var partitions = _admin.GetMetadata(TimeSpan.FromSeconds(30)).Topics
                .Where(t => t.Topic.StartsWith("edgetwin.", StringComparison.Ordinal) && t.Error.Code == ErrorCode.NoError)
                .SelectMany(t => t.Partitions.Select(p => new TopicPartitionOffset(t.Topic, p.PartitionId, Offset.Beginning)))
                .ToList();
            var records = new List<(string, byte[])>();
            if (partitions.Count == 0)
            {
                return records;
            }

            using var consumer = new ConsumerBuilder<Ignore, byte[]>(new ConsumerConfig
            {
                BootstrapServers = BootstrapServers,
                GroupId = "edgetwin-test-" + Guid.NewGuid().ToString("N"),
                EnableAutoCommit = false,
                EnablePartitionEof = true,
            }).Build();
            consumer.Assign(partitions);
            var open = partitions.Count;
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            while (open > 0 && DateTime.UtcNow < deadline)
            {
                var result = consumer.Consume(TimeSpan.FromSeconds(1));
                if (result is null)
                {
                    continue;
                }

                if (result.IsPartitionEOF)
                {
                    open--;
                    continue;
                }

                records.Add((result.Topic, result.Message.Value));
            }

            return records;
        }

        public void Dispose() => _admin.Dispose();
    }
}
