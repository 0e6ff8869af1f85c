using Confluent.Kafka;
using EdgeTwin.Uplink.Kafka;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace EdgeTwin.Uplink.Tests.Kafka;

/// <summary>
/// The log of librdkafka's error callback while the cluster stays unreachable: the texts are those librdkafka 2.16 gave
/// against a refusing port in the agent (`edgetwin run` with `uplinks.kafka.bootstrap_servers` on a closed port), at
/// its pace (a refused reconnect about every 90 ms), on a fake clock over an hour.
/// </summary>
public sealed class KafkaErrorLogTests
{
    private const string Refused = "127.0.0.1:50565/bootstrap: Connect to ipv4#127.0.0.1:50565 failed: Connection refused (after 0ms in state CONNECT)";
    private const string RefusedSuppressed = "127.0.0.1:50565/bootstrap: Connect to ipv4#127.0.0.1:50565 failed: Connection refused (after 0ms in state CONNECT, 1 identical error(s) suppressed)";

    [Fact]
    public void Regression_librdkafkas_identical_errors_suppressed_suffix_made_a_refused_connect_a_new_error_every_5_min()
    {
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 12, 5, 9, 0, 0, TimeSpan.Zero));
        var logger = new ListLogger();
        var transport = new KafkaTransport(new KafkaUplinkOptions { BootstrapServers = "127.0.0.1:50565", Site = "s1", Gateway = "g1" }, logger, clock);
        for (var i = 0; i < 40_000; i++) // an hour
        {
            // librdkafka appends its own count to the same error now and then (seen after ~10 min in the agent).
            transport.OnError(new Error(ErrorCode.Local_Transport, i % 7 == 3 ? RefusedSuppressed : Refused, false));
            if (i % 150 == 0)
            {
                transport.OnError(new Error(ErrorCode.Local_AllBrokersDown, "1/1 brokers are down", false));
            }

            clock.Advance(TimeSpan.FromMilliseconds(90));
        }

        var transportLines = logger.At(LogLevel.Warning).Where(l => l.Contains("Local_Transport", StringComparison.Ordinal)).ToList();
        Assert.Equal(12, transportLines.Count); // the first and one every 5 min (24 before: the suffixed text counted as another error)
        Assert.DoesNotContain("more like it", transportLines[0], StringComparison.Ordinal);
        Assert.All(transportLines.Skip(1), l => Assert.Contains("more like it since the last one were not logged", l, StringComparison.Ordinal));
        Assert.Equal(12, logger.At(LogLevel.Warning).Count(l => l.Contains("Local_AllBrokersDown", StringComparison.Ordinal)));

        // Another reason is another error: logged at once.
        transport.OnError(new Error(ErrorCode.Local_Transport, "127.0.0.1:50565/bootstrap: SSL handshake failed: error:0A000086:SSL routines::certificate verify failed (after 3ms in state SSL_HANDSHAKE)", false));
        Assert.Contains("SSL handshake failed", logger.At(LogLevel.Warning).Last(), StringComparison.Ordinal);
    }
}
