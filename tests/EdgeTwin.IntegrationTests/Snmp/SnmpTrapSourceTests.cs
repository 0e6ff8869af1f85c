using System.Net;
using System.Threading.Channels;
using EdgeTwin.Agent.Sources.Snmp;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Samples;

namespace EdgeTwin.IntegrationTests.Snmp;

public sealed class SnmpTrapSourceTests
{
    private sealed class Events : IEventSink
    {
        public Channel<EdgeEvent> Channel { get; } = System.Threading.Channels.Channel.CreateUnbounded<EdgeEvent>();

        public ValueTask PublishAsync(EdgeEvent edgeEvent, CancellationToken cancellationToken)
        {
            Channel.Writer.TryWrite(edgeEvent);
            return ValueTask.CompletedTask;
        }
    }

    private sealed class NoSamples : ISampleSink
    {
        public ValueTask WriteAsync(ReadOnlyMemory<Sample> samples, CancellationToken cancellationToken) => throw new InvalidOperationException("traps write no samples");
    }

    [Fact]
    public async Task Ups_on_battery_trap_from_snmptrap_becomes_a_critical_event_naming_the_device()
    {
        Assert.SkipWhen(SnmpdProcess.FindTool("snmptrap") is null, "snmptrap (Debian package 'snmp') is not installed");
        var ct = TestContext.Current.CancellationToken;
        var source = new SnmpTrapSource(new SnmpTrapSourceOptions
        {
            EndPoint = new IPEndPoint(IPAddress.Loopback, 0),
            Devices = new Dictionary<IPAddress, string> { [IPAddress.Loopback] = "ups-1" },
            CriticalTrapOids = [".1.3.6.1.4.1.318.0.5"],
        });
        var events = new Events();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var run = source.RunAsync(new NoSamples(), events, stop.Token);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (source.LocalEndPoint is null && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20, ct);
        }
        Assert.NotNull(source.LocalEndPoint);
        var (exit, _, err) = await SnmpdProcess.RunToolAsync("snmptrap",
            ["-v2c", "-c", "public", $"127.0.0.1:{source.LocalEndPoint!.Port}", "100", "1.3.6.1.4.1.318.0.5", "1.3.6.1.4.1.318.1.1.1.2.2.1.0", "i", "87"], ct);
        Assert.True(exit == 0, err);
        using var wait = CancellationTokenSource.CreateLinkedTokenSource(ct);
        wait.CancelAfter(TimeSpan.FromSeconds(30));
        var e = await events.Channel.Reader.ReadAsync(wait.Token);
        Assert.Equal(EdgeEventKind.Trap, e.Kind);
        Assert.Equal("ups-1", e.Source);
        Assert.Equal(EventSeverity.Critical, e.Severity);
        Assert.Equal(".1.3.6.1.4.1.318.0.5", e.Attributes!["trap_oid"]);
        Assert.Equal("INTEGER: 87", e.Attributes[".1.3.6.1.4.1.318.1.1.1.2.2.1.0"]);
        await stop.CancelAsync();
        await run;
    }
}
