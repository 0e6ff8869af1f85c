using EdgeTwin.Tests.Shared;
using System.Diagnostics.Metrics;
using EdgeTwin.Core.Prometheus;
using EdgeTwin.Core.Tests.Support;

namespace EdgeTwin.Core.Tests.Prometheus;

/// <summary>The text exposition of real instruments through <see cref="PrometheusCollector"/>, as fixed text.</summary>
public sealed class PrometheusExpositionTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>A meter of this test alone (tests run in parallel; the collector listens to nothing else).</summary>
    private static (Meter Meter, PrometheusCollector Collector) Isolated(int maxLabelSets = 1000)
    {
        var meter = new Meter("EdgeTwin.Test." + Guid.NewGuid().ToString("N"));
        var collector = new PrometheusCollector(new PrometheusCollectorOptions { MeterFilter = m => ReferenceEquals(m, meter), MaxLabelSets = maxLabelSets });
        return (meter, collector);
    }

    private const string Footer = """
        # HELP edgetwin_metrics_label_sets_dropped_total Measurements dropped because their metric already had metrics.prometheus.max_label_sets label sets, by metric.
        # TYPE edgetwin_metrics_label_sets_dropped_total counter
        # HELP edgetwin_metrics_callback_errors_total Scrapes in which an observable instrument's callback threw.
        # TYPE edgetwin_metrics_callback_errors_total counter
        edgetwin_metrics_callback_errors_total 0

        """;

    [Fact]
    public async Task Counters_gauges_and_histograms_render_as_fixed_text()
    {
        var (meter, collector) = Isolated();
        using var _ = meter;
        using var __ = collector;
        var requests = meter.CreateCounter<long>("test.requests", "{request}", "Requests sent, by outcome");
        var queue = meter.CreateUpDownCounter<int>("edgetwin.test.queue", "{batch}", "Batches waiting");
        var latency = meter.CreateHistogram<double>("edgetwin.test.latency", "ms", "From send to answer");
        meter.CreateObservableGauge("edgetwin.test.temperature", () => new Measurement<double>(300.5, new KeyValuePair<string, object?>("room", "r1")), "K", "Room temperature");
        requests.Add(2, new KeyValuePair<string, object?>("outcome", "ok"));
        requests.Add(3, new KeyValuePair<string, object?>("outcome", "ok"));
        requests.Add(1, new KeyValuePair<string, object?>("outcome", "timeout"));
        queue.Add(5);
        queue.Add(-2);
        latency.Record(250);
        latency.Record(2000);

        var text = await collector.ScrapeAsync(Ct);

        Assert.Equal("""
            # HELP edgetwin_test_latency_seconds From send to answer
            # TYPE edgetwin_test_latency_seconds histogram
            edgetwin_test_latency_seconds_bucket{le="0.0005"} 0
            edgetwin_test_latency_seconds_bucket{le="0.001"} 0
            edgetwin_test_latency_seconds_bucket{le="0.0025"} 0
            edgetwin_test_latency_seconds_bucket{le="0.005"} 0
            edgetwin_test_latency_seconds_bucket{le="0.01"} 0
            edgetwin_test_latency_seconds_bucket{le="0.025"} 0
            edgetwin_test_latency_seconds_bucket{le="0.05"} 0
            edgetwin_test_latency_seconds_bucket{le="0.1"} 0
            edgetwin_test_latency_seconds_bucket{le="0.25"} 1
            edgetwin_test_latency_seconds_bucket{le="0.5"} 1
            edgetwin_test_latency_seconds_bucket{le="1"} 1
            edgetwin_test_latency_seconds_bucket{le="2.5"} 2
            edgetwin_test_latency_seconds_bucket{le="5"} 2
            edgetwin_test_latency_seconds_bucket{le="10"} 2
            edgetwin_test_latency_seconds_bucket{le="30"} 2
            edgetwin_test_latency_seconds_bucket{le="60"} 2
            edgetwin_test_latency_seconds_bucket{le="+Inf"} 2
            edgetwin_test_latency_seconds_sum 2.25
            edgetwin_test_latency_seconds_count 2
            # HELP edgetwin_test_queue Batches waiting
            # TYPE edgetwin_test_queue gauge
            edgetwin_test_queue 3
            # HELP edgetwin_test_requests_total Requests sent, by outcome
            # TYPE edgetwin_test_requests_total counter
            edgetwin_test_requests_total{outcome="ok"} 5
            edgetwin_test_requests_total{outcome="timeout"} 1
            # HELP edgetwin_test_temperature_kelvin Room temperature
            # TYPE edgetwin_test_temperature_kelvin gauge
            edgetwin_test_temperature_kelvin{room="r1"} 300.5

            """ + Footer, text);
        PrometheusTextParser.Parse(text);
    }

    [Fact]
    public async Task Label_values_with_quotes_backslashes_and_newlines_are_escaped_and_read_back_as_written()
    {
        var (meter, collector) = Isolated();
        using var _ = meter;
        using var __ = collector;
        var errors = meter.CreateCounter<long>("edgetwin.test.errors", description: "Errors \\ by reason\nsecond line");
        const string Reason = "say \"hi\" at C:\\temp\nthen stop";
        errors.Add(1, new KeyValuePair<string, object?>("reason", Reason), new KeyValuePair<string, object?>("error.type", 42));

        var text = await collector.ScrapeAsync(Ct);

        Assert.Contains("# HELP edgetwin_test_errors_total Errors \\\\ by reason\\nsecond line\n", text, StringComparison.Ordinal);
        Assert.Contains("edgetwin_test_errors_total{error_type=\"42\",reason=\"say \\\"hi\\\" at C:\\\\temp\\nthen stop\"} 1\n", text, StringComparison.Ordinal);
        var parsed = PrometheusTextParser.Parse(text);
        Assert.Equal(1, PrometheusTextParser.Value(parsed, "edgetwin_test_errors_total", ("error_type", "42"), ("reason", Reason)));
    }

    [Theory]
    [InlineData("modbus.client.requests", "{request}", true, "edgetwin_modbus_client_requests_total")]
    [InlineData("edgetwin.poll.duration", "s", false, "edgetwin_poll_duration_seconds")]
    [InlineData("edgetwin.poll.lateness", "ms", false, "edgetwin_poll_lateness_seconds")]
    [InlineData("edgetwin.outbox.bytes", "By", false, "edgetwin_outbox_bytes")]
    [InlineData("edgetwin.outbox.checkpoint.bytes", "By", true, "edgetwin_outbox_checkpoint_bytes_total")]
    [InlineData("edgetwin.uptime", "s", true, "edgetwin_uptime_seconds_total")]
    [InlineData("edgetwin.samples.rate", "{sample}/s", false, "edgetwin_samples_rate_per_second")]
    [InlineData("edgetwin.twin.thermal.inlet_fit_rmse", "K", false, "edgetwin_twin_thermal_inlet_fit_rmse_kelvin")]
    [InlineData("edgetwin.requests_total", null, true, "edgetwin_requests_total")]
    [InlineData("9lives-é.x", null, false, "edgetwin__9lives___x")]
    public void Instrument_names_become_legal_prometheus_names_with_unit_and_total(string instrument, string? unit, bool counter, string expected) =>
        Assert.Equal(expected, PrometheusNames.Metric(instrument, unit, counter));

    [Fact]
    public void Tag_names_become_legal_label_names()
    {
        string[] tags = ["error.type", "1st", "a-b c"];
        Assert.Equal(["error_type", "_1st", "a_b_c"], tags.Select(PrometheusNames.SanitizeLabel));
    }

    [Fact]
    public async Task Observable_label_sets_no_longer_reported_leave_the_scrape()
    {
        var (meter, collector) = Isolated();
        using var _ = meter;
        using var __ = collector;
        var devices = new List<string> { "sw-1", "sw-2" };
        meter.CreateObservableGauge("edgetwin.test.series", () => devices.Select(d => new Measurement<int>(7, new KeyValuePair<string, object?>("device", d))), "{series}", "Series by device");

        var first = PrometheusTextParser.Parse(await collector.ScrapeAsync(Ct));
        devices.RemoveAt(0);
        var second = PrometheusTextParser.Parse(await collector.ScrapeAsync(Ct));

        Assert.Equal(7, PrometheusTextParser.Value(first, "edgetwin_test_series", ("device", "sw-1")));
        Assert.Null(PrometheusTextParser.Value(second, "edgetwin_test_series", ("device", "sw-1")));
        Assert.Equal(7, PrometheusTextParser.Value(second, "edgetwin_test_series", ("device", "sw-2")));
    }

    [Fact]
    public async Task Label_sets_past_the_cap_are_dropped_and_counted_per_metric()
    {
        var (meter, collector) = Isolated(maxLabelSets: 3);
        using var _ = meter;
        using var __ = collector;
        var reads = meter.CreateCounter<long>("edgetwin.test.reads", "{read}", "Reads by series");
        for (var i = 0; i < 10; i++)
        {
            reads.Add(1, new KeyValuePair<string, object?>("series", "s" + i));
        }

        reads.Add(1, new KeyValuePair<string, object?>("series", "s0"));

        var parsed = PrometheusTextParser.Parse(await collector.ScrapeAsync(Ct));

        Assert.Equal(3, parsed["edgetwin_test_reads_total"].Samples.Count);
        Assert.Equal(2, PrometheusTextParser.Value(parsed, "edgetwin_test_reads_total", ("series", "s0")));
        Assert.Equal(7, PrometheusTextParser.Value(parsed, "edgetwin_metrics_label_sets_dropped_total", ("metric", "edgetwin_test_reads_total")));
    }

    [Fact]
    public async Task Tags_in_another_order_are_the_same_label_set()
    {
        var (meter, collector) = Isolated();
        using var _ = meter;
        using var __ = collector;
        var polls = meter.CreateCounter<long>("edgetwin.test.polls", "{poll}", "Polls");
        polls.Add(1, new KeyValuePair<string, object?>("device", "d1"), new KeyValuePair<string, object?>("reason", "timeout"));
        polls.Add(1, new KeyValuePair<string, object?>("reason", "timeout"), new KeyValuePair<string, object?>("device", "d1"));

        var parsed = PrometheusTextParser.Parse(await collector.ScrapeAsync(Ct));

        Assert.Equal(2, PrometheusTextParser.Value(parsed, "edgetwin_test_polls_total", ("device", "d1"), ("reason", "timeout")));
    }

    [Fact]
    public async Task An_observable_callback_that_throws_is_counted_and_the_rest_still_scraped()
    {
        var errors = new List<Exception>();
        var meter = new Meter("EdgeTwin.Test." + Guid.NewGuid().ToString("N"));
        using var _ = meter;
        using var collector = new PrometheusCollector(new PrometheusCollectorOptions { MeterFilter = m => ReferenceEquals(m, meter), OnCallbackError = errors.Add });
        meter.CreateObservableGauge("edgetwin.test.broken", (Func<int>)(() => throw new ObjectDisposedException("stage")));
        meter.CreateCounter<long>("edgetwin.test.fine").Add(4);

        var parsed = PrometheusTextParser.Parse(await collector.ScrapeAsync(Ct));

        Assert.Equal(4, PrometheusTextParser.Value(parsed, "edgetwin_test_fine_total"));
        Assert.Equal(1, PrometheusTextParser.Value(parsed, "edgetwin_metrics_callback_errors_total"));
        Assert.Single(errors);
    }

    [Fact]
    public void Measurements_of_known_label_sets_allocate_nothing()
    {
        // The listener's callbacks run on every poll and sample batch: a known label set must cost no garbage.
        var (meter, collector) = Isolated();
        using var _ = meter;
        using var __ = collector;
        var samples = meter.CreateCounter<long>("edgetwin.test.samples", "{sample}");
        var duration = meter.CreateHistogram<double>("edgetwin.test.duration", "ms");
        var device = new KeyValuePair<string, object?>("device", "pdu-1");
        var quality = new KeyValuePair<string, object?>("quality", "good");
        samples.Add(1, device, quality);
        duration.Record(3.5, device);

        Allocations.AssertSomeRoundAllocatesNothing(
            () =>
            {
                for (var i = 0; i < 10_000; i++)
                {
                    samples.Add(1, device, quality);
                    duration.Record(i % 100, device);
                }
            },
            "10,000 counter adds and histogram records");
    }
}
