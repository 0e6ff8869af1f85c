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
