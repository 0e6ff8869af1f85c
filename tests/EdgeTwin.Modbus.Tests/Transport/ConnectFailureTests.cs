using System.Collections.Concurrent;
using EdgeTwin.Modbus.Client;
using System.Net;
using EdgeTwin.Modbus.Protocol;
using EdgeTwin.Modbus.Server;
using EdgeTwin.Modbus.Tests.Peers;
using EdgeTwin.Modbus.Transport;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace EdgeTwin.Modbus.Tests.Transport;

/// <summary>What an engineer reads when a connection is refused.</summary>
public sealed class ConnectFailureTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Regression_a_refused_connection_logged_its_stack_trace_at_warning_on_every_retry()
    {
        var logs = new ConcurrentQueue<(LogLevel Level, string Message, Exception? Exception)>();
        int port = ExternalTools.FreeTcpPort();
        await using var client = new ModbusClient(new ModbusTcpTransport(
            new ModbusTcpOptions { Host = "127.0.0.1", Port = port, ReconnectBackoffMin = TimeSpan.FromMilliseconds(200) },
            new ListLogger(logs)));
        await Assert.ThrowsAsync<ModbusCommunicationException>(() => client.ReadHoldingRegistersAsync(1, 0, 1, Ct));

        var warning = Assert.Single(logs, l => l.Level == LogLevel.Warning);
        Assert.Null(warning.Exception);
        Assert.Matches(@"^Modbus connect to tcp://127\.0\.0\.1:\d+ failed; next attempt in 0\.[12] s: Connection refused$", warning.Message);
        var detail = Assert.Single(logs, l => l.Level == LogLevel.Debug);
        Assert.IsType<System.Net.Sockets.SocketException>(detail.Exception);
    }

    [Fact]
    public async Task Regression_a_device_that_stayed_unreachable_logged_a_warning_on_every_reconnect_attempt()
    {
        // A drive powered off for the weekend: a Warning every 30 s (the backoff's cap), 2,880 a day per device, in the
        // journal beside the scheduler's one "device is down". Now: one Warning, the repeats at Debug, a Warning an hour
        // while it lasts, and one Information line when it connects again.
        var logs = new ConcurrentQueue<(LogLevel Level, string Message, Exception? Exception)>();
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2026-12-04T03:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        int port = ExternalTools.FreeTcpPort();
        await using var client = new ModbusClient(new ModbusTcpTransport(
            new ModbusTcpOptions { Host = "127.0.0.1", Port = port, ReconnectBackoffMin = TimeSpan.FromMilliseconds(200), RequestTimeout = TimeSpan.FromSeconds(5) },
            new ListLogger(logs),
            time));

        for (var i = 0; i < 6; i++)
        {
            await Assert.ThrowsAsync<ModbusCommunicationException>(() => client.ReadHoldingRegistersAsync(1, 0, 1, Ct));
            time.Advance(TimeSpan.FromSeconds(31));
        }

        var warnings = logs.Where(l => l.Level == LogLevel.Warning).Select(l => l.Message).ToList();
        Assert.Single(warnings);
        Assert.Equal(5, logs.Count(l => l.Level == LogLevel.Debug && l.Message.Contains("failed again", StringComparison.Ordinal)));
        Assert.Contains(logs, l => l.Message.Contains("failed again (6 times since 2026-12-04 03:00:00Z): Connection refused", StringComparison.Ordinal));

        time.Advance(TimeSpan.FromHours(1));
        await Assert.ThrowsAsync<ModbusCommunicationException>(() => client.ReadHoldingRegistersAsync(1, 0, 1, Ct));
        var hourly = Assert.Single(logs, l => l.Level == LogLevel.Warning && l.Message.Contains("still fails", StringComparison.Ordinal));
        Assert.StartsWith($"Modbus connect to tcp://127.0.0.1:{port} still fails: 7 failed attempts since 2026-12-04 03:00:00Z, the last: Connection refused; next attempt in", hourly.Message, StringComparison.Ordinal);

        var units = new ModbusServerUnits();
        units.Add(1, new ModbusRegisterMap().AddRange(ModbusTable.HoldingRegisters, 0, 4), new Dictionary<byte, string>());
        await using var server = new ModbusTcpServer(units, new ModbusTcpServerOptions { Endpoint = new IPEndPoint(IPAddress.Loopback, port) });
        await server.StartAsync(Ct);
        time.Advance(TimeSpan.FromSeconds(31));
        Assert.Equal(new ushort[] { 0 }, await client.ReadHoldingRegistersAsync(1, 0, 1, Ct));

        var back = Assert.Single(logs, l => l.Level == LogLevel.Information);
        Assert.Equal($"Modbus connected to tcp://127.0.0.1:{port} again after 7 failed attempts since 2026-12-04 03:00:00Z", back.Message);
        Assert.Equal(2, logs.Count(l => l.Level == LogLevel.Warning));
    }
}
