using System.Collections.Concurrent;
using EdgeTwin.Modbus.Client;
using EdgeTwin.Modbus.Protocol;
using EdgeTwin.Modbus.Tests.Peers;
using EdgeTwin.Modbus.Transport;
using Microsoft.Extensions.Logging;

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
}
