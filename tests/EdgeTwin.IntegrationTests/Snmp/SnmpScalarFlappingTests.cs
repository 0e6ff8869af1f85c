using System.Collections.Concurrent;
using EdgeTwin.Agent.Sources.Snmp;
using EdgeTwin.Core.Samples;
using EdgeTwin.Core.Sources;
using EdgeTwin.IntegrationTests.Simulator;
using EdgeTwin.Simulator.Faults;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace EdgeTwin.IntegrationTests.Snmp;

/// <summary>
/// A PDU (the simulated site's, over real SNMP on loopback) whose answers are garbled now and then: what the journal
/// gets while its unreadable scalars keep changing.
/// </summary>
public sealed class SnmpScalarFlappingTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Regression_a_device_garbling_every_other_answer_logged_a_warning_or_an_all_readable_line_every_poll()
    {
        // Before: every change of the set of unreadable scalars was a line, so a PDU whose firmware garbled one answer
        // in three wrote a Warning and an "every scalar is readable again" nearly every poll (32 lines in 70 s at 2 s).
        await using var host = await SimPaths.StartAsync();
        var config = host.BuildConfig(TimeSpan.FromSeconds(10), SimPaths.Profiles, timeout: TimeSpan.FromSeconds(5));
        var device = config.FindDevice("pdu-a01-a")!;
        var profile = SimPaths.LoadProfiles()[device.Profile];
        var logs = new ConcurrentQueue<(LogLevel Level, string Message)>();
        var time = new FakeTimeProvider();
        await using var factory = new SnmpSourceFactory();
        var source = factory.Create(new SourceContext(device, profile, config.Credentials[device.Credentials!], new SnmpDeviceErrorsTests.ListLoggerFactory(logs), time)).Polled!;
        source.RegisterSeries(new SeriesRegistry());

        async Task PollAsync(bool garbled)
        {
            host.Site.Apply(FaultCommand.Parse(garbled ? "device-garble:pdu-a01-a:1" : "device-ok:pdu-a01-a"));
            host.Refresh();
            await source.PollAsync(new RecordingSink(), time.GetUtcNow().ToUnixTimeMilliseconds(), Ct);
            time.Advance(TimeSpan.FromSeconds(10));
        }

        string[] Lines() => [.. logs.Where(l => l.Level >= LogLevel.Information && l.Message.StartsWith("SNMP device pdu-a01-a:", StringComparison.Ordinal)).Select(l => l.Message)];

        await PollAsync(garbled: false);
        for (var i = 0; i < 10; i++)
        {
            await PollAsync(garbled: i % 2 == 0);
        }

        var first = Assert.Single(Lines());
        Assert.Matches(@"^SNMP device pdu-a01-a: \d+ of \d+ scalars unreadable: .*is not numeric", first);

        // Past the 5 minutes, the state it is in now is logged once, with what went unlogged, though it no longer changes.
        time.Advance(SnmpSource.ScalarLogEvery);
        await PollAsync(garbled: false);
        await PollAsync(garbled: false);

        var lines = Lines();
        Assert.Equal(2, lines.Length);
        Assert.Equal("SNMP device pdu-a01-a: every scalar is readable again (after 9 more changes in 6m 40s that were not logged: it keeps changing, and is logged at most every 5m 0s while it does)", lines[1]);
    }
}
