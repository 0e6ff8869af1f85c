using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using EdgeTwin.Agent.Cli;
using EdgeTwin.Agent.Hosting;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Prometheus;
using EdgeTwin.Core.Sources;
using EdgeTwin.Core.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.IntegrationTests.Agent;

/// <summary>The whole agent scraped over HTTP on loopback: its real instruments, in a valid exposition.</summary>
public sealed class PrometheusScrapeTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private const string TwoPdus = """
          - { id: pdu-1, profile: apc-rpdu2, address: "udp:127.0.0.1:16100", credentials: pub, interval: 1s, timeout: 500ms }
          - { id: pdu-2, profile: apc-rpdu2, address: "udp:127.0.0.1:16101", credentials: pub, interval: 1s, timeout: 500ms }
        """;

    private static AgentHostOptions Options(ProfileFakeFactory factory, MetricsConfig? metrics) => new()
    {
        DiscoverSourceFactories = false,
        UseSystemd = false,
        StatusLogInterval = null,
        MinimumLogLevel = LogLevel.Warning,
        ConfigureServices = s => s.AddSourceFactory(factory),
        Metrics = metrics,
    };

    private static SiteConfig LoadWithOwners(string path)
    {
        var result = SiteConfigLoader.Load(path, new SiteConfigLoadOptions { SectionValidators = ConfigSectionValidators.Discover(typeof(AgentHostBuilder).Assembly) });
        Assert.True(result.IsValid, string.Join("\n", result.Problems));
        return result.Config!;
    }

    private static async Task WaitUntilAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("timed out waiting for " + what);
            }

            await Task.Delay(20, Ct);
        }
    }

    private static double Sum(IReadOnlyDictionary<string, PrometheusTextParser.Family> scrape, string family, string sample, string device) =>
        scrape[family].Samples.Where(s => s.Name == sample && s.Labels.GetValueOrDefault("device") == device).Sum(s => s.Value);

    [Fact]
    public async Task A_scrape_of_the_running_agent_parses_and_its_poll_counters_move()
    {
        var factory = new ProfileFakeFactory();
        var config = AgentFiles.Load(AgentFiles.WriteConfig(TwoPdus));
        using var host = AgentHostBuilder.Build(config, Options(factory, new MetricsConfig { Listen = new IPEndPoint(IPAddress.Loopback, 0) }));
        var runtime = host.Services.GetRequiredService<AgentRuntime>();
        await host.StartAsync(Ct);
        try
        {
            await runtime.Started.WaitAsync(TimeSpan.FromSeconds(30), Ct);
            var endpoint = host.Services.GetRequiredService<PrometheusEndpointService>().LocalEndpoint!;
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
            var url = new Uri($"http://{endpoint}/metrics");
            await WaitUntilAsync(() => factory.Polls.GetValueOrDefault("pdu-1") >= 1, "a poll of pdu-1");
            var first = PrometheusTextParser.Parse(await http.GetStringAsync(url, Ct));
            var polled = factory.Polls.GetValueOrDefault("pdu-1");
            await WaitUntilAsync(() => factory.Polls.GetValueOrDefault("pdu-1") >= polled + 2, "two more polls of pdu-1");
            var text = await http.GetStringAsync(url, Ct);
            var second = PrometheusTextParser.Parse(text);

            Assert.True(Sum(second, "edgetwin_samples_total", "edgetwin_samples_total", "pdu-1") > Sum(first, "edgetwin_samples_total", "edgetwin_samples_total", "pdu-1"), text);
            Assert.True(Sum(second, "edgetwin_poll_duration_seconds", "edgetwin_poll_duration_seconds_count", "pdu-1") >= Sum(first, "edgetwin_poll_duration_seconds", "edgetwin_poll_duration_seconds_count", "pdu-1") + 2, text);
            Assert.Equal(2, PrometheusTextParser.Value(second, "edgetwin_devices"));
            Assert.Equal(1, PrometheusTextParser.Value(second, "edgetwin_build_info", ("version", ProcessMetrics.Version)));
            Assert.True(PrometheusTextParser.Value(second, "edgetwin_process_uptime_seconds") > 0);
            Assert.True(PrometheusTextParser.Value(second, "edgetwin_process_working_set_bytes") > 1_000_000);
            Assert.True(PrometheusTextParser.Value(second, "edgetwin_process_gc_heap_bytes") > 0);
            Assert.Equal("counter", second["edgetwin_process_cpu_time_seconds_total"].Type);
            Assert.Equal("histogram", second["edgetwin_poll_duration_seconds"].Type);
        }
        finally
        {
            await host.StopAsync(Ct);
        }
    }

    [Fact]
    public async Task A_real_Prometheus_server_scrapes_the_agent_and_answers_queries_over_its_series()
    {
        var prometheus = Deployment.Tool.Find("prometheus");
        if (prometheus is null)
        {
            Assert.Skip("the Prometheus server is not installed (Debian package 'prometheus'; tests/run.sh installs it as root)");
        }

        var factory = new ProfileFakeFactory();
        var config = AgentFiles.Load(AgentFiles.WriteConfig(TwoPdus));
        using var host = AgentHostBuilder.Build(config, Options(factory, new MetricsConfig { Listen = new IPEndPoint(IPAddress.Loopback, 0) }));
        var runtime = host.Services.GetRequiredService<AgentRuntime>();
        var dir = Directory.CreateTempSubdirectory("edgetwin-prometheus-").FullName;
        Process? server = null;
        await host.StartAsync(Ct);
        try
        {
            await runtime.Started.WaitAsync(TimeSpan.FromSeconds(30), Ct);
            var endpoint = host.Services.GetRequiredService<PrometheusEndpointService>().LocalEndpoint!;
            await File.WriteAllTextAsync(Path.Combine(dir, "prometheus.yml"), $$"""
                global: { scrape_interval: 1s, scrape_timeout: 1s }
                scrape_configs:
                  - job_name: edgetwin
                    static_configs: [ { targets: [ "{{endpoint}}" ] } ]
                """, Ct);
            var port = TestPorts.FreeTcp();
            var psi = new ProcessStartInfo(prometheus)
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                WorkingDirectory = dir,
            };
            foreach (var a in new[] { "--config.file=" + Path.Combine(dir, "prometheus.yml"), "--storage.tsdb.path=" + Path.Combine(dir, "data"), $"--web.listen-address=127.0.0.1:{port}" })
            {
                psi.ArgumentList.Add(a);
            }

            server = Process.Start(psi)!;
            var log = new System.Text.StringBuilder();
            server.OutputDataReceived += (_, e) => { lock (log) { log.AppendLine(e.Data); } };
            server.ErrorDataReceived += (_, e) => { lock (log) { log.AppendLine(e.Data); } };
            server.BeginOutputReadLine();
            server.BeginErrorReadLine();

            // Prometheus' own verdict on each scrape (up, and the last error) and then a query over the stored series.
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
            var api = new Uri($"http://127.0.0.1:{port}/api/v1/");
            async Task<System.Text.Json.JsonElement?> QueryAsync(string promql)
            {
                try
                {
                    using var answer = System.Text.Json.JsonDocument.Parse(await http.GetStringAsync(new Uri(api, "query?query=" + Uri.EscapeDataString(promql)), Ct));
                    var result = answer.RootElement.GetProperty("data").GetProperty("result");
                    return result.GetArrayLength() == 0 ? null : result[0].Clone();
                }
                catch (HttpRequestException)
                {
                    return null; // not listening yet
                }
            }

            double? samples = null;
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
            while (samples is null)
            {
                Assert.False(server.HasExited, "prometheus exited: " + log);
                Assert.True(DateTime.UtcNow < deadline, "Prometheus stored no edgetwin_samples_total for pdu-1 within 60 s; its log:\n" + log);
                if (await QueryAsync("up{job=\"edgetwin\"}") is { } up)
                {
                    Assert.Equal("1", up.GetProperty("value")[1].GetString());
                    if (await QueryAsync("sum(edgetwin_samples_total{device=\"pdu-1\"})") is { } sum)
                    {
                        samples = double.Parse(sum.GetProperty("value")[1].GetString()!, System.Globalization.CultureInfo.InvariantCulture);
                    }
                }

                await Task.Delay(250, Ct);
            }

            Assert.True(samples > 0, $"edgetwin_samples_total for pdu-1 is {samples}");
            using var targets = System.Text.Json.JsonDocument.Parse(await http.GetStringAsync(new Uri(api, "targets"), Ct));
            var target = targets.RootElement.GetProperty("data").GetProperty("activeTargets")[0];
            Assert.Equal("up", target.GetProperty("health").GetString());
            Assert.Equal("", target.GetProperty("lastError").GetString());

            // The histogram works as one: a quantile over its buckets is a number, not NaN for want of le labels.
            var p99 = await QueryAsync("histogram_quantile(0.99, sum by (le) (edgetwin_poll_duration_seconds_bucket))");
            Assert.NotNull(p99);
            Assert.True(double.TryParse(p99.Value.GetProperty("value")[1].GetString(), System.Globalization.CultureInfo.InvariantCulture, out var seconds) && !double.IsNaN(seconds), p99.ToString());
        }
        finally
        {
            if (server is { HasExited: false })
            {
                server.Kill(entireProcessTree: true);
                await server.WaitForExitAsync(CancellationToken.None);
            }

            server?.Dispose();
            await host.StopAsync(Ct);
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task Promtool_accepts_the_agent_scrape()
    {
        var promtool = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Select(d => Path.Combine(d, "promtool")).FirstOrDefault(File.Exists);
        if (promtool is null)
        {
            Assert.Skip("promtool is not installed (Debian package 'prometheus'); the strict parser of the other tests checks the format");
        }

        var factory = new ProfileFakeFactory();
        var config = AgentFiles.Load(AgentFiles.WriteConfig(TwoPdus));
        using var host = AgentHostBuilder.Build(config, Options(factory, new MetricsConfig { Listen = new IPEndPoint(IPAddress.Loopback, 0) }));
        var runtime = host.Services.GetRequiredService<AgentRuntime>();
        await host.StartAsync(Ct);
        try
        {
            await runtime.Started.WaitAsync(TimeSpan.FromSeconds(30), Ct);
            await WaitUntilAsync(() => factory.Polls.GetValueOrDefault("pdu-2") >= 1, "a poll of pdu-2");
            var endpoint = host.Services.GetRequiredService<PrometheusEndpointService>().LocalEndpoint!;
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
            var text = await http.GetStringAsync(new Uri($"http://{endpoint}/metrics"), Ct);

            using var process = Process.Start(new ProcessStartInfo(promtool, ["check", "metrics"]) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true })!;
            try
            {
                await process.StandardInput.WriteAsync(text);
                process.StandardInput.Close();
                var output = await process.StandardOutput.ReadToEndAsync(Ct) + await process.StandardError.ReadToEndAsync(Ct);
                await process.WaitForExitAsync(Ct).WaitAsync(TimeSpan.FromSeconds(60), Ct);
                Assert.True(process.ExitCode == 0, output);
            }
            finally
            {
                if (!process.HasExited)
                {
                    process.Kill();
                }
            }
        }
        finally
        {
            await host.StopAsync(Ct);
        }
    }

    [Fact]
    public async Task A_port_in_use_fails_the_start_naming_the_key_the_address_and_the_file()
    {
        using var squatter = new TcpListener(IPAddress.Loopback, 0);
        squatter.Start();
        var port = ((IPEndPoint)squatter.LocalEndpoint).Port;
        var file = AgentFiles.WriteConfig(TwoPdus, $"metrics: {{ prometheus: {{ listen: \"127.0.0.1:{port}\" }} }}");
        var config = LoadWithOwners(file);
        var error = new StringWriter();

        var code = await RunCommand.RunAsync(config, Options(new ProfileFakeFactory(), metrics: null), error, Ct).WaitAsync(TimeSpan.FromSeconds(60), Ct);

        Assert.Equal(1, code);
        Assert.Equal(
            $"edgetwin: fatal: IOException: cannot listen on 127.0.0.1:{port} for the Prometheus endpoint (metrics.prometheus.listen in {Path.GetFullPath(file)}): the address is already in use (another agent or exporter? `ss -ltnp 'sport = :{port}'` names the process)" + Environment.NewLine,
            error.ToString());
    }

    [Fact]
    public async Task Without_a_metrics_section_nothing_listens()
    {
        var config = AgentFiles.Load(AgentFiles.WriteConfig(TwoPdus));
        using var host = AgentHostBuilder.Build(config, Options(new ProfileFakeFactory(), metrics: null));
        var runtime = host.Services.GetRequiredService<AgentRuntime>();
        await host.StartAsync(Ct);
        try
        {
            await runtime.Started.WaitAsync(TimeSpan.FromSeconds(30), Ct);
            Assert.Null(host.Services.GetRequiredService<PrometheusEndpointService>().LocalEndpoint);
        }
        finally
        {
            await host.StopAsync(Ct);
        }
    }
}
