using System.Globalization;
using System.Text;
using EdgeTwin.Agent.Hosting;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Samples;
using EdgeTwin.Simulator.Physics;

namespace EdgeTwin.Agent.Demo;

/// <summary>
/// Renders the demo: a full-screen view redrawn every second on a terminal; on a pipe or file, one plain
/// status line at a time plus every new event, so a log of a headless run reads well.
/// </summary>
internal sealed class DemoView(TextWriter output, bool terminal)
{
    private static readonly string[] ShownRoles =
    [
        "site.pue", "rack.inlet_temperature", "pdu.power", "crac.running", "crac.fan_speed", "crac.air_temperature",
        "ups.load", "ups.runtime_remaining", "machine.motor_current", "machine.motor_temperature", "meter.power",
    ];

    private long _eventsShown;
    private int _outageNotesShown;
    private int _simEventsShown;

    public async Task RenderAsync(DemoContext context, CancellationToken cancellationToken)
    {
        var text = terminal ? Frame(context) : Lines(context);
        await output.WriteAsync(text.AsMemory(), cancellationToken).ConfigureAwait(false);
        await output.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    private string Frame(DemoContext c)
    {
        var (width, height) = TerminalSize();
        var top = new List<string>
        {
            Inv($"EdgeTwin demo — {c.Elapsed:mm\\:ss} elapsed — {c.FailureLine()} — Ctrl-C stops"),
            string.Empty,
            Inv($"SITE (simulated truth)  return air {c.Site.Room.TemperatureC:0.0} °C  IT {c.Site.TotalItKw:0.0} kW  cooling {c.Site.TotalCoolingKw:0.0} kW"),
        };
        lock (c.Site.SyncRoot)
        {
            top.Add("  inlets  " + string.Join("  ", c.Site.Racks.Select(r => Inv($"{r.Id} {r.InletC:0.0}"))));
            top.Add("  units   " + string.Join("  ", c.Site.CoolingUnits.Select(u => Inv($"{u.Id} {u.State} fan {u.FanSpeed * 100:0}% supply {u.SupplyC:0.0}"))));
        }

        if (LineLine(c) is { } lineText)
        {
            top.AddRange(lineText.Split(Environment.NewLine));
        }

        var status = c.Runtime.DeviceStatus().OrderBy(d => d.DeviceId, StringComparer.Ordinal).ToList();
        top.Add(string.Empty);
        top.Add(Inv($"AGENT  {status.Count(d => d.State.ToString() == "Up")} of {c.Runtime.Devices.Count(d => d.Sources.Polled is not null)} devices up, {c.State.Samples} samples"));
        top.Add(Inv($"{"device",-12} {"state",-8} {"polls",6} latest readings"));

        var middle = new List<string> { string.Empty, "THERMAL TWIN  " + c.ThermalLine(), string.Empty, "ANOMALIES / PREDICTIONS / ALERTS" };
        var twinEvents = c.State.Events.Where(e => !IsLineState(e)).Where(e => e.Kind is EdgeEventKind.Anomaly or EdgeEventKind.Prediction or EdgeEventKind.AlertRaised or EdgeEventKind.AlertCleared or EdgeEventKind.Recommendation).TakeLast(height < 40 ? 3 : 5).ToList();
        middle.Add(twinEvents.Count == 0 ? "  (none yet: no twin models or alert rules in this agent build)" : string.Join(Environment.NewLine, twinEvents.Select(Describe)));
        middle.Add("EVENTS");
        var events = c.State.Events.Where(e => !IsLineState(e)).TakeLast(6).Select(Describe)
            .Concat(c.Site.Events().TakeLast(3).Select(e => Inv($"  sim {e.Time:HH:mm:ss} {e.Source}: {e.Message}"))).ToList();
        var bottom = new List<string> { string.Empty, c.UplinkLine() };
        if (height >= 40)
        {
            bottom.Add("  watch what it sends: " + c.Broker.WatchCommand);
        }
        if (c.Outage?.Line(c.Elapsed) is { } outageLine)
        {
            bottom.Add(outageLine);
        }

        // The frame fits the terminal: 23 devices and 200-column events made ~90 rows on an 80×24 terminal, so the header,
        // the site and the countdown scrolled away every second and only the event tail stayed on screen. Devices that are
        // not up come first; the rest of the table and the oldest events give way to what does not.
        middle = [.. middle.SelectMany(l => l.Split(Environment.NewLine))];
        if (height < 40)
        {
            // Short terminals: rows for readings, not for spacing.
            top.RemoveAll(l => l.Length == 0);
            middle.RemoveAll(l => l.Length == 0);
            bottom.RemoveAll(l => l.Length == 0);
        }

        var room = Math.Max(0, height - 1 - top.Count - middle.Count - bottom.Count);
        var eventRows = Math.Min(events.Count, Math.Max(Math.Min(3, events.Count), room - status.Count));
        var deviceRows = Math.Max(0, room - eventRows);
        var shown = status.OrderBy(d => d.State.ToString() == "Up").ThenBy(d => d.DeviceId, StringComparer.Ordinal).ToList();
        var table = new List<string>();
        if (shown.Count <= deviceRows)
        {
            table.AddRange(status.Select(d => Inv($"{d.DeviceId,-12} {d.State,-8} {d.Polls,6} {Readings(c, d.DeviceId, 4)}")));
        }
        else if (deviceRows > 0)
        {
            table.AddRange(shown.Take(deviceRows - 1).OrderBy(d => d.DeviceId, StringComparer.Ordinal).Select(d => Inv($"{d.DeviceId,-12} {d.State,-8} {d.Polls,6} {Readings(c, d.DeviceId, 4)}")));
            var rest = shown.Skip(deviceRows - 1).ToList();
            table.Add(Inv($"… {rest.Count} more ({rest.Count(d => d.State.ToString() == "Up")} up): {string.Join(' ', rest.Select(d => d.DeviceId))}"));
        }

        var lines = top.Concat(table).Concat(middle).Concat(events.TakeLast(eventRows)).Concat(bottom).Take(Math.Max(1, height - 1));
        var b = new StringBuilder("\u001b[H\u001b[2J");
        foreach (var line in lines)
        {
            // One column short of the width: a full line would wrap on terminals that wrap at the last column.
            b.AppendLine(line.Length < width ? line : string.Concat(line.AsSpan(0, Math.Max(0, width - 2)), "…"));
        }

        return b.ToString();
    }

    /// <summary>The terminal's size, or 80×24 when it cannot be read.</summary>
    private static (int Width, int Height) TerminalSize()
    {
        try
        {
            return (Console.WindowWidth is > 20 and var w ? w : 80, Console.WindowHeight is > 10 and var h ? h : 24);
        }
        catch (Exception ex) when (ex is IOException or PlatformNotSupportedException)
        {
            return (80, 24);
        }
    }

    private string Lines(DemoContext c)
    {
        var b = new StringBuilder();
        if (c.Outage is { } outage)
        {
            // What happened since the last status (its own time), before the status line.
            var notes = outage.Notes;
            foreach (var (at, text) in notes.Skip(_outageNotesShown))
            {
                b.AppendLine(Inv($"[{at.TotalSeconds,4:0}s] {text}"));
            }

            _outageNotesShown = notes.Count;
        }

        var hottest = c.Site.Racks.MaxBy(r => r.InletC)!;
        b.AppendLine(Inv($"[{c.Elapsed.TotalSeconds,4:0}s] sim: return air {c.Site.Room.TemperatureC:0.0} °C, hottest inlet {hottest.Id} {hottest.InletC:0.0} °C, units {string.Join(' ', c.Site.CoolingUnits.Select(u => $"{u.Id}:{u.State}"))} ({c.FailureLine()}) | agent: {c.Runtime.DeviceStatus().Count(d => d.State.ToString() == "Up")}/{c.Runtime.Devices.Count(d => d.Sources.Polled is not null)} devices up, {c.State.Samples} samples | {c.UplinkLine()}{(c.Outage is { Scheduled: true } coming ? " | " + coming.Line(c.Elapsed) : string.Empty)}"));
        var readings = Readings(c, null, 8);
        b.AppendLine(Inv($"[{c.Elapsed.TotalSeconds,4:0}s] readings: {(readings.Length == 0 ? "none yet (the first polls are under way)" : readings)}"));
        b.AppendLine(Inv($"[{c.Elapsed.TotalSeconds,4:0}s] thermal twin: {c.ThermalLine()}"));
        if (c.Outage is { InProgress: true } down)
        {
            b.AppendLine(Inv($"[{c.Elapsed.TotalSeconds,4:0}s] {down.Line(c.Elapsed)}"));
        }

        // By the running count, not the kept list's length: the list keeps the last 200, and once it was full a headless
        // run printed no event again (the uplink-offline alert of a long run among them).
        var (events, total) = c.State.EventsAndTotal();
        foreach (var e in events.Skip(events.Count - (int)Math.Min(events.Count, total - _eventsShown)))
        {
            b.AppendLine(Inv($"[{c.Elapsed.TotalSeconds,4:0}s] event{Describe(e)}"));
        }

        _eventsShown = total;
        var simEvents = c.Site.Events();
        foreach (var e in simEvents.Skip(_simEventsShown))
        {
            b.AppendLine(Inv($"[{c.Elapsed.TotalSeconds,4:0}s] sim event {e.Source}: {e.Message}"));
        }

        _simEventsShown = simEvents.Count;
        return b.ToString();
    }

    private static bool IsLineState(EdgeEvent e) => e.Kind == EdgeEventKind.Prediction && e.Source.StartsWith("line/", StringComparison.Ordinal);

    /// <summary>The simulated line's stations and buffers, and the line twin's latest state (OEE, bottleneck, forecast).</summary>
    private static string? LineLine(DemoContext c)
    {
        if (c.Site.Line is not { } line)
        {
            return null;
        }

        string stations;
        lock (c.Site.SyncRoot)
        {
            stations = string.Join("  ", line.Spec.Stations.Select((s, i) => Inv($"{s.Id} {line.State(i)}{(i < line.Spec.BufferCapacities.Count ? Inv($" [{line.BufferLevel(i)}]") : string.Empty)}")));
        }

        var twin = c.State.Events.LastOrDefault(IsLineState);
        return Inv($"LINE (simulated truth)  {stations}  output {line.Good(line.Spec.Stations.Count - 1)}{Environment.NewLine}  line twin: {(twin is null ? "(no state yet: first after 10 s of PLC readings)" : twin.Message)}");
    }

    /// <summary>The latest values of a device's (or, with null, the site's most telling) series, with units.</summary>
    private static string Readings(DemoContext c, string? deviceId, int max)
    {
        var shown = new List<string>();
        foreach (var role in ShownRoles)
        {
            foreach (var (id, d) in c.Runtime.Registry.Snapshot())
            {
                if (d.Role != role || (deviceId is not null && d.DeviceId != deviceId) || !c.State.TryLatest(id, out var s))
                {
                    continue;
                }

                var who = deviceId is null ? d.DeviceId + "/" : string.Empty;
                var row = d.Tags is { Count: > 0 } ? "{" + string.Join(',', d.Tags.Select(t => t.Value)) + "}" : string.Empty;
                shown.Add(Inv($"{who}{d.Metric}{row}={s.Value:0.##}{(d.Unit is "1" or "" ? string.Empty : " " + d.Unit)}{(s.IsGood ? string.Empty : "(" + s.Quality + ")")}"));
                if (shown.Count >= max)
                {
                    return string.Join("  ", shown);
                }

                if (deviceId is null)
                {
                    break; // one series per role for the site-wide line
                }
            }
        }

        return string.Join("  ", shown);
    }

    private static string Describe(EdgeEvent e) => Inv($"  {e.Time:HH:mm:ss} {e.Kind.ToWireName()} {e.Severity} {e.Source}: {e.Message}");

    private static string Inv(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}

/// <summary>Everything the view reads.</summary>
/// <param name="FailureAfterFirstRead">The scripted failure's delay after the agent first reads the unit, or null for none.</param>
/// <param name="ScheduledFailure">The elapsed time the failure is scripted for, null until the agent has read the unit.</param>
/// <param name="Outage">The scripted uplink outage, or null for none.</param>
internal sealed record DemoContext(SimulatedSite Site, AgentRuntime Runtime, DemoState State, EmbeddedBroker Broker, DemoOutage? Outage, Func<TimeSpan> ElapsedClock, TimeSpan? FailureAfterFirstRead, Func<TimeSpan?> ScheduledFailure, string FailureUnit, Func<string> BufferState)
{
    public TimeSpan Elapsed => ElapsedClock();

    public string FailureLine() => FailureAfterFirstRead is not { } after ? "no scripted failure"
        : ScheduledFailure() is not { } at ? Inv($"{FailureUnit} fails {after.TotalSeconds:0} s after the agent first reads it")
        : Elapsed < at ? Inv($"{FailureUnit} fails in {(at - Elapsed).TotalSeconds:0} s")
        : Inv($"{FailureUnit} FAILED {(Elapsed - at).TotalSeconds:0} s ago");

    /// <summary>
    /// The live cooling_failure countdown: the latest prediction's times, less the time since it was made (it is refreshed
    /// every few seconds), next to the hottest measured inlet.
    /// </summary>
    public string ThermalLine()
    {
        var last = State.Events.LastOrDefault(e => e.Kind == EdgeEventKind.Prediction && e.Source.EndsWith("/cooling_failure", StringComparison.Ordinal));
        if (last?.Attributes is not { } a || a.GetValueOrDefault("state") != "active")
        {
            return last is null ? "no cooling failure" : "cooling restored";
        }

        var age = Math.Max(0, (DateTimeOffset.UtcNow - last.Time).TotalSeconds);
        // Once a level is reached it says so: the countdown stood at "27 °C in 0:00" for minutes with the inlets at 29 °C.
        string Left(string key, string label) => a.TryGetValue(key, out var v) && double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var s)
            ? (Math.Ceiling(s - age) is var left && left <= 0 ? label + " reached" : Inv($"{label} in {(int)(left / 60)}:{(int)(left % 60):00}"))
            : Inv($"{label} not within {double.Parse(a["horizon_s"], CultureInfo.InvariantCulture) / 60:0} min");
        var hottest = Site.Racks.MaxBy(r => r.InletC)!;
        return Inv($"{a["failed_units"]} down: {Left("time_to_27c_s", "27 °C")}, {Left("time_to_32c_s", "32 °C")}{(a.TryGetValue("first_rack_32c", out var r) ? " (" + r + ")" : string.Empty)}, {Left("time_to_thermal_shutdown_s", "shutdown")} | hottest inlet (sim) {hottest.Id} {hottest.InletC:0.0} °C | affected: {(a["affected_racks"] is { Length: > 0 } affected ? affected : "none")}");
    }

    public string UplinkLine() => Inv($"uplink: broker 127.0.0.1:{Broker.Port}{(Broker.IsUp ? string.Empty : " DOWN")}, {Broker.ConnectedClients} client(s), {Broker.Messages} message(s) received | {BufferState()}");

    private static string Inv(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
