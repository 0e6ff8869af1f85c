using System.Collections.Concurrent;
using EdgeTwin.Core.Samples;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.IntegrationTests.Snmp;

/// <summary>
/// The shipped rittal-cmc3 profile read by the agent's SNMP source from net-snmp's snmpd serving a recording of a CMC III
/// PU's cmcIIIDevTable and generic cmcIIIVarTable (Recordings/rittal-cmc3.snmprec): rows chosen by their name column,
/// each scaled by its own cmcIIIVarScale (-100 divides by 100, +10 multiplies by 10), a row in degree F skipped with one
/// warning, and every row tagged with its sensor unit's alias.
/// </summary>
public sealed class RittalCmc3SnmpdTests
{
    [Theory]
    [InlineData(true)]   // every column, the filter, the label, the scale and unit columns in one GETBULK per round trip
    [InlineData(false)]  // each walked alone, as over SNMPv1
    public async Task Cmc3_reads_rows_by_name_at_their_own_scale_tagged_with_the_device_alias_and_skips_a_row_in_another_unit(bool together)
    {
        await using var snmpd = new SnmpdRecordingProcess("rittal-cmc3", ".1.3.6.1.4.1.2606.7.4");
        await snmpd.InitializeAsync();
        Assert.SkipWhen(snmpd.SkipReason is not null, snmpd.SkipReason ?? "");
        var logs = new ConcurrentQueue<(LogLevel Level, string Message)>();

        var (got, registry) = await ShippedSnmpProfilesSnmpdTests.PollOnceAsync(snmpd, "a01-cmc", "rittal-cmc3",
            loggers: new SnmpDeviceErrorsTests.ListLoggerFactory(logs), walkColumnsTogether: together);

        // Temperature.Value rows: the PU's own at scale -100 (2350 -> 23.5), a CMCIII-HUM's at -10 (221 -> 22.1), one at
        // +10 (3 -> 30), as the rack's inlet; tagged with the device alias (cmcIIIDevTable) and device.variable.
        var pu = got["a01-cmc/temperature{device=CMC-PU A01,variable=1.2}"];
        Assert.Equal((23.5, SampleQuality.Good), (pu.Value, pu.Quality));
        Assert.Equal(("Cel", "rack.inlet_temperature"), (registry[pu.Series].Unit, registry[pu.Series].Role));
        Assert.Equal((22.1, SampleQuality.Good), (got["a01-cmc/temperature{device=A01 front,variable=2.2}"].Value, got["a01-cmc/temperature{device=A01 front,variable=2.2}"].Quality));
        Assert.Equal(30, got["a01-cmc/temperature{device=A01 rear,variable=5.2}"].Value);
        Assert.Equal(2, got["a01-cmc/temperature_quality{device=CMC-PU A01,variable=1.2}"].Value);   // ok

        // Humidity.Value at -100 (4150 -> 41.5 %), its quality warning.
        var humidity = got["a01-cmc/humidity{device=A01 front,variable=2.3}"];
        Assert.Equal((41.5, SampleQuality.Good), (humidity.Value, humidity.Quality));
        Assert.Equal(("%", "rack.inlet_humidity"), (registry[humidity.Series].Unit, registry[humidity.Series].Role));
        Assert.Equal(3, got["a01-cmc/humidity_quality{device=A01 front,variable=2.3}"].Value);

        // Access.Value: 1 open, as generic-door-contact.
        var door = got["a01-cmc/door_open{device=CMC-PU A01,variable=1.5}"];
        Assert.Equal((1.0, SampleQuality.Good, "rack.door_open"), (door.Value, door.Quality, registry[door.Series].Role));

        // Leakage.Status alarm(5): a leak (a CMCIII-LEAK serves no Leakage.Value), its code beside it, quality alarm.
        var leak = got["a01-cmc/leak{device=A01 floor,variable=3.3}"];
        Assert.Equal((1.0, SampleQuality.Good, "room.leak"), (leak.Value, leak.Quality, registry[leak.Series].Role));
        Assert.Equal(5, got["a01-cmc/leak_status{device=A01 floor,variable=3.3}"].Value);
        Assert.Equal(4, got["a01-cmc/leak_quality{device=A01 floor,variable=3.3}"].Value);

        // The sensor set to degree F is not published as °C (716 at -10 would read 71.6 "°C"): skipped, warned once
        // naming the row and its unit; its quality (no unit) is still read.
        Assert.DoesNotContain("a01-cmc/temperature{device=A02 front,variable=4.2}", got.Keys);
        Assert.Equal(2, got["a01-cmc/temperature_quality{device=A02 front,variable=4.2}"].Value);
        var warning = Assert.Single(logs, l => l.Level == LogLevel.Warning);
        Assert.Contains("row 4.2", warning.Message, StringComparison.Ordinal);
        Assert.Contains("'degree F'", warning.Message, StringComparison.Ordinal);

        // Nothing else: not DescName, Position or other Status rows; the unplugged A02 rear's temperature and humidity and
        // their qualities, and the closed door's (no reading: Regression_ below); the dew point and the PU's system
        // temperature (next test).
        Assert.Equal(3 + 4 + 1 + 1 + 2 + 2 + 1 + 1 + 4 + 4 + 1, got.Count);
    }

    /// <summary>
    /// A CMCIII-HUM's "Dew Point.Value" (degree C at scale -100: 840 is 8.40 °C) is the inlet's dew point, the PU's
    /// "System.Temperature.Value" (3230 is 32.30 °C) its board temperature, not a rack reading; both were not read before
    /// (an operator saw humidity but no condensation risk, and nothing of the controller's own health).
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Cmc3_reads_the_dew_point_of_a_humidity_unit_and_the_system_temperature_of_the_pu(bool together)
    {
        await using var snmpd = new SnmpdRecordingProcess("rittal-cmc3", ".1.3.6.1.4.1.2606.7.4");
        await snmpd.InitializeAsync();
        Assert.SkipWhen(snmpd.SkipReason is not null, snmpd.SkipReason ?? "");

        var (got, registry) = await ShippedSnmpProfilesSnmpdTests.PollOnceAsync(snmpd, "a01-cmc", "rittal-cmc3", walkColumnsTogether: together);

        var dewPoint = got["a01-cmc/dew_point{device=A01 front,variable=2.5}"];
        Assert.Equal((8.4, SampleQuality.Good), (Math.Round(dewPoint.Value, 6), dewPoint.Quality));
        Assert.Equal(("Cel", "rack.inlet_dew_point"), (registry[dewPoint.Series].Unit, registry[dewPoint.Series].Role));
        Assert.Equal(2, got["a01-cmc/dew_point_quality{device=A01 front,variable=2.5}"].Value);   // ok
        var system = got["a01-cmc/system_temperature{device=CMC-PU A01,variable=1.7}"];
        Assert.Equal((32.3, SampleQuality.Good), (Math.Round(system.Value, 6), system.Quality));
        Assert.Equal(("Cel", "net.device_temperature"), (registry[system.Series].Unit, registry[system.Series].Role));
        Assert.Equal(2, got["a01-cmc/system_temperature_quality{device=CMC-PU A01,variable=1.7}"].Value);
        // One row each: the PU's System.Temperature is not a rack inlet temperature, the dew point not a temperature.
        Assert.Single(got.Keys, k => k.StartsWith("a01-cmc/dew_point{", StringComparison.Ordinal));
        Assert.Single(got.Keys, k => k.StartsWith("a01-cmc/system_temperature{", StringComparison.Ordinal));
        Assert.DoesNotContain(got.Keys, k => k.StartsWith("a01-cmc/temperature{", StringComparison.Ordinal) && k.Contains("variable=1.7", StringComparison.Ordinal));
    }

    /// <summary>
    /// cmcIIIVarQuality 21-25 ("...NoValue") beside a value say it is no reading: a CMCIII-HUM unplugged from the CAN bus
    /// serves 0 at alarmNoValue(24) / undefinedNoValue(21), an access sensor without a value 0 at okNoValue(22). All three
    /// were published as Good readings (0 °C at a rack's inlet, 0 %, a closed door), and the quality only beside them.
    /// </summary>
    [Theory]
    [InlineData(true)]   // the quality column rides in the table's GETBULKs
    [InlineData(false)]  // walked alone, as over SNMPv1
    public async Task Regression_a_cmc3_sensor_with_no_value_was_published_as_a_good_reading(bool together)
    {
        await using var snmpd = new SnmpdRecordingProcess("rittal-cmc3", ".1.3.6.1.4.1.2606.7.4");
        await snmpd.InitializeAsync();
        Assert.SkipWhen(snmpd.SkipReason is not null, snmpd.SkipReason ?? "");

        var (got, _) = await ShippedSnmpProfilesSnmpdTests.PollOnceAsync(snmpd, "a01-cmc", "rittal-cmc3", walkColumnsTogether: together);

        foreach (var key in new[] { "a01-cmc/temperature{device=A02 rear,variable=6.2}", "a01-cmc/humidity{device=A02 rear,variable=6.3}", "a01-cmc/door_open{device=A01 rear,variable=5.3}" })
        {
            var sample = got[key];
            Assert.Equal(SampleQuality.DeviceError, sample.Quality);   // as any value the device cannot give: no rule, twin or summary takes it
            Assert.True(double.IsNaN(sample.Value), key);
        }
        // The qualities themselves are still published, as before (on the wire).
        Assert.Equal((24.0, SampleQuality.Good), (got["a01-cmc/temperature_quality{device=A02 rear,variable=6.2}"].Value, got["a01-cmc/temperature_quality{device=A02 rear,variable=6.2}"].Quality));
        Assert.Equal(21, got["a01-cmc/humidity_quality{device=A02 rear,variable=6.3}"].Value);
        Assert.Equal(22, got["a01-cmc/door_quality{device=A01 rear,variable=5.3}"].Value);
        // A reading beside a valid quality is untouched: ok(2), warning(3), alarm(4) all carry a value.
        Assert.Equal((23.5, SampleQuality.Good), (got["a01-cmc/temperature{device=CMC-PU A01,variable=1.2}"].Value, got["a01-cmc/temperature{device=CMC-PU A01,variable=1.2}"].Quality));
        Assert.Equal((41.5, SampleQuality.Good), (got["a01-cmc/humidity{device=A01 front,variable=2.3}"].Value, got["a01-cmc/humidity{device=A01 front,variable=2.3}"].Quality));
        Assert.Equal((1.0, SampleQuality.Good), (got["a01-cmc/leak{device=A01 floor,variable=3.3}"].Value, got["a01-cmc/leak{device=A01 floor,variable=3.3}"].Quality));
    }

    /// <summary>
    /// A CMCIII-LEAK serves no "Leakage.Value" row (its rows, as Checkmk's cmciii_leakage check reads them: DescName,
    /// Position, Delay, Status, Category); the profile selected Leakage.Value, so a real leakage sensor was never read,
    /// whatever it said. Its state is Leakage.Status, a cmcIIIMsgStatus code: alarm(5) is a leak (1), ok(4) dry (0), and
    /// any other code (probeopen(24): "sensor cable broken", notAvail(1)) no reading (out of range), its code beside it.
    /// </summary>
    [Theory]
    [InlineData(5, "Alarm", 1.0, SampleQuality.Good)]
    [InlineData(4, "OK", 0.0, SampleQuality.Good)]
    [InlineData(24, "ProbeOpen", 20.0, SampleQuality.OutOfRange)]
    [InlineData(1, "n.a.", -3.0, SampleQuality.OutOfRange)]
    public async Task Regression_a_cmc3_leakage_sensor_was_read_from_a_leakage_value_row_it_does_not_serve(int code, string text, double leak, SampleQuality quality)
    {
        var dir = Directory.CreateTempSubdirectory("cmc3-leak-");
        try
        {
            const string Var = "1.3.6.1.4.1.2606.7.4.2.2.1.";
            var status = new Dictionary<string, string>
            {
                [Var + "10.3.3"] = text,                                                             // cmcIIIVarValueStr
                [Var + "11.3.3"] = code.ToString(System.Globalization.CultureInfo.InvariantCulture),  // cmcIIIVarValueInt
            };
            var lines = File.ReadAllLines(SnmpdRecordingProcess.RecordingPath("rittal-cmc3"))
                .Select(l => l.Split('|') is [var oid, var type, _] && status.TryGetValue(oid, out var value) ? $"{oid}|{type}|{value}" : l).ToArray();
            Assert.Single(lines, l => l == Var + "3.3.3|4|Leakage.Status");
            Assert.DoesNotContain(lines, l => l.EndsWith("|Leakage.Value", StringComparison.Ordinal));
            var recording = Path.Combine(dir.FullName, "rittal-cmc3-leak");
            File.WriteAllLines(recording + ".snmprec", lines);
            await using var snmpd = new SnmpdRecordingProcess(recording, ".1.3.6.1.4.1.2606.7.4");
            await snmpd.InitializeAsync();
            Assert.SkipWhen(snmpd.SkipReason is not null, snmpd.SkipReason ?? "");

            foreach (var together in new[] { true, false })
            {
                var (got, registry) = await ShippedSnmpProfilesSnmpdTests.PollOnceAsync(snmpd, "a01-cmc", "rittal-cmc3", walkColumnsTogether: together);

                var sample = got["a01-cmc/leak{device=A01 floor,variable=3.3}"];
                Assert.Equal((leak, quality, "room.leak"), (sample.Value, sample.Quality, registry[sample.Series].Role));
                var raw = got["a01-cmc/leak_status{device=A01 floor,variable=3.3}"];
                Assert.Equal((code, SampleQuality.Good, "net.sensor_status"), (raw.Value, raw.Quality, registry[raw.Series].Role));
                // One leakage row: not its Position (0, "Zone 1") nor another unit's Status.
                Assert.Single(got.Keys, k => k.StartsWith("a01-cmc/leak{", StringComparison.Ordinal));
            }
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    /// <summary>
    /// The four tables of rittal-cmc3 (temperature, humidity, access, leakage) each select rows of the same cmcIIIVarTable
    /// by name: each walked the name, value, quality, scale and unit columns and the device aliases on its own, so a poll
    /// read the whole variable table four times (about 200 rows on a real PU). Now each column OID is walked once per poll
    /// and its rows serve every table that reads it (the filter of each still its own).
    /// </summary>
    [Theory]
    [InlineData(Walk.Together, 3, 12_000)]   // before: 8 GETBULKs, 22,870 B
    [InlineData(Walk.Alone, 8, 12_000)]      // each OID walked alone (GETBULK): before 24, 18,044 B
    [InlineData(Walk.V1, 160, 20_000)]       // SNMPv1, GETNEXT: before 488, 50,924 B
    public async Task Regression_a_cmc3_poll_walked_its_variable_table_once_per_sensor_kind(Walk walk, int maxRequests, int maxBytes)
    {
        await using var snmpd = new SnmpdRecordingProcess("rittal-cmc3", ".1.3.6.1.4.1.2606.7.4");
        await snmpd.InitializeAsync();
        Assert.SkipWhen(snmpd.SkipReason is not null, snmpd.SkipReason ?? "");

        var (requests, bytes, got) = await MeasureSteadyPollAsync(snmpd.Port, ShippedSnmpProfilesSnmpdTests.Shipped("rittal-cmc3"), walk);

        // The same samples as before (the first test of this class names them) and leak_status. No scalar (no GET).
        Assert.Equal(24, got.Count);
        Assert.InRange(requests, 1, maxRequests);
        Assert.InRange(bytes, 1, maxBytes);
    }

    /// <summary>
    /// A steady poll of <paramref name="profileId"/> (after one that primes rates) through a counting relay: its requests,
    /// bytes both ways and samples; the figures and the time are printed as a MEASURE line (Snmp README, what a poll requests).
    /// </summary>
    /// <summary>How a poll walks its tables: columns together (v2c GETBULK), each alone (v2c GETBULK), or over SNMPv1 (GETNEXT).</summary>
    public enum Walk
    {
        Together,
        Alone,
        V1,
    }

    internal static async Task<(long Requests, long Bytes, Dictionary<string, Sample> Samples)> MeasureSteadyPollAsync(int agentPort, EdgeTwin.Core.Profiles.DeviceProfile profile,
        Walk walk = Walk.Together, ILoggerFactory? loggers = null)
    {
        await using var relay = new CountingUdpRelay(agentPort);
        var profileId = profile.Id;
        var credentials = walk == Walk.V1 ? new EdgeTwin.Core.Config.CredentialsConfig("v1", EdgeTwin.Core.Config.SnmpVersion.V1) { Community = "public" }
            : EdgeTwin.Core.Config.CredentialsConfig.V2c("ro", "public");
        var device = new EdgeTwin.Core.Config.DeviceConfig("dev-1", profileId, EdgeTwin.Core.Config.DeviceAddress.Udp("127.0.0.1", relay.Port)) { Credentials = credentials.Name, Timeout = TimeSpan.FromSeconds(5) };
        await using var source = new EdgeTwin.Agent.Sources.Snmp.SnmpSourceFactory().Create(new EdgeTwin.Core.Sources.SourceContext(device, profile, credentials,
            loggers ?? Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance, TimeProvider.System)).Polled!;
        ((EdgeTwin.Agent.Sources.Snmp.SnmpSource)source).WalkColumnsTogether = walk == Walk.Together;
        var registry = new SeriesRegistry();
        source.RegisterSeries(registry);
        var at = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        await source.PollAsync(new RecordingSink(), at, TestContext.Current.CancellationToken);
        var (requests, bytes) = (relay.Requests, relay.Bytes);
        var sink = new RecordingSink();
        var watch = System.Diagnostics.Stopwatch.StartNew();
        await source.PollAsync(sink, at + 10_000, TestContext.Current.CancellationToken);
        var elapsed = watch.Elapsed;
        (requests, bytes) = (relay.Requests - requests, relay.Bytes - bytes);
        // What a steady poll allocates, the client's walks included: the mean of 20 more polls, every thread of the
        // process counted (run this method alone for a figure; the relay's forwarding is in it too).
        var allocated = GC.GetTotalAllocatedBytes(precise: true);
        for (var i = 0; i < 20; i++)
        {
            await source.PollAsync(new RecordingSink(), at + 20_000 + (i * 10_000), TestContext.Current.CancellationToken);
        }
        allocated = (GC.GetTotalAllocatedBytes(precise: true) - allocated) / 20;
        Console.WriteLine($"MEASURE {profileId} {walk.ToString().ToLowerInvariant()} requests={requests} bytes={bytes} ms={elapsed.TotalMilliseconds:0.0} samples={sink.Samples.Count} allocated={allocated}");
        return (requests, bytes, sink.Samples.ToDictionary(s => registry[s.Series].Key));
    }

    // The figures of the Snmp README (what a poll requests): each shipped profile with a recording, a steady poll.
    [Theory]
    [InlineData("rittal-cmc3", ".1.3.6.1.4.1.2606.7.4", "rittal-cmc3")]
    [InlineData("servertech-sentry4", ".1.3.6.1.4.1.1718.4", "servertech-sentry4")]
    [InlineData("rittal-cmc3", ".1.3.6.1.4.1.2606.7.4", "apc-rpdu2")]   // no recording: its tables are empty, each still walked once
    [InlineData("apc-uio-probe", ".1.3.6.1.4.1.318.1.1.25", "apc-uio-probe")]
    [InlineData("entity-sensor-temperature", ".1.3.6.1.2.1", "entity-sensor-temperature")]
    [InlineData("apc-netbotz", ".1.3.6.1.4.1.5528.100.4", "apc-netbotz")]
    public async Task Measure_a_steady_poll(string recording, string subtree, string profileId)
    {
        await using var snmpd = new SnmpdRecordingProcess(recording, subtree);
        await snmpd.InitializeAsync();
        Assert.SkipWhen(snmpd.SkipReason is not null, snmpd.SkipReason ?? "");
        foreach (var walk in Enum.GetValues<Walk>())
        {
            var (requests, bytes, _) = await MeasureSteadyPollAsync(snmpd.Port, ShippedSnmpProfilesSnmpdTests.Shipped(profileId), walk);
            Assert.True(requests > 0 && bytes > 0, $"{requests} requests, {bytes} B");
        }
    }

    /// <summary>
    /// A PU with about 200 variable rows (the recording's 6 devices copied under 8 more device indices, as a PU with a
    /// dozen sensor units serves them). cmcIIIVarQuality is both a column of each table (temperature_quality ...) and its
    /// values' row_status: every GETBULK carried it twice (13 requests, 34,046 B a steady poll), and walked alone (v1)
    /// each table walked it twice and its name column as filter too (1,249 requests). Now once: the row_status reads the
    /// column's walk cut to max_rows, and a walk that ended serves the other parts of the same table.
    /// </summary>
    [Theory]
    [InlineData(Walk.Together, 11, 31_000)]   // before: 13 requests, 34,046 B
    [InlineData(Walk.Alone, 43, 33_000)]      // before: 51, 36,506 B
    [InlineData(Walk.V1, 1_060, 115_000)]     // before: 1,249, 129,899 B
    public async Task Regression_a_cmc3_quality_column_was_walked_twice_as_a_column_and_as_a_row_status(Walk walk, int maxRequests, int maxBytes)
    {
        var dir = Directory.CreateTempSubdirectory("cmc3-200-");
        try
        {
            var lines = File.ReadAllLines(SnmpdRecordingProcess.RecordingPath("rittal-cmc3")).Where(l => !l.StartsWith('#')).ToList();
            const string Var = "1.3.6.1.4.1.2606.7.4.2.2.1.", Dev = "1.3.6.1.4.1.2606.7.4.1.2.1.";
            var copies = lines.Where(l => l.StartsWith(Var, StringComparison.Ordinal) || l.StartsWith(Dev, StringComparison.Ordinal))
                .SelectMany(l => Enumerable.Range(1, 8).Select(k =>
                {
                    var prefix = l.StartsWith(Var, StringComparison.Ordinal) ? Var : Dev;
                    var rest = l[prefix.Length..].Split('.', 2);          // column, then device[.variable]|type|value
                    var device = rest[1].Split(['.', '|'], 2);
                    return $"{prefix}{rest[0]}.{(int.Parse(device[0], System.Globalization.CultureInfo.InvariantCulture) + (10 * k)).ToString(System.Globalization.CultureInfo.InvariantCulture)}{rest[1][device[0].Length..]}";
                }));
            var recording = Path.Combine(dir.FullName, "rittal-cmc3-200");
            File.WriteAllLines(recording + ".snmprec", lines.Concat(copies));
            Assert.InRange(lines.Concat(copies).Count(l => l.StartsWith(Var + "3.", StringComparison.Ordinal)), 190, 220);
            await using var snmpd = new SnmpdRecordingProcess(recording, ".1.3.6.1.4.1.2606.7.4");
            await snmpd.InitializeAsync();
            Assert.SkipWhen(snmpd.SkipReason is not null, snmpd.SkipReason ?? "");
            var (requests, bytes, got) = await MeasureSteadyPollAsync(snmpd.Port, ShippedSnmpProfilesSnmpdTests.Shipped("rittal-cmc3"), walk);
            Assert.Equal(9 * 24, got.Count);   // the same samples: 24 per copy of the recording's devices
            Assert.InRange(requests, 1, maxRequests);
            Assert.InRange(bytes, 1, maxBytes);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    /// <summary>
    /// A table that reads a column an earlier table walked at a larger max_rows takes that walk's first rows, as its own
    /// walk at its own cap would: its rows, its cut warning and its samples are those of walking each column alone (as
    /// over SNMPv1), and no request is added for it. The recording here has no values for the PU's own 7 variables (a
    /// sparse value column): humidity's first 3 value rows are 2.1-2.3, while its name filter at 3 rows reads 1.1-1.3,
    /// so 2.3 (Humidity.Value) is not selected by a walk at its own cap, and would be by temperature's whole walk.
    /// </summary>
    [Fact]
    public async Task A_table_sharing_a_walk_read_at_a_larger_max_rows_keeps_its_own_cap()
    {
        var recording = "rittal-cmc3-sparse-" + Guid.NewGuid().ToString("N");
        var path = SnmpdRecordingProcess.RecordingPath(recording);
        File.WriteAllLines(path, File.ReadAllLines(SnmpdRecordingProcess.RecordingPath("rittal-cmc3"))
            .Where(l => !l.StartsWith("1.3.6.1.4.1.2606.7.4.2.2.1.11.1.", StringComparison.Ordinal)));
        try
        {
            await SharingAtALargerCapAsync(recording);
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static async Task SharingAtALargerCapAsync(string recording)
    {
        await using var snmpd = new SnmpdRecordingProcess(recording, ".1.3.6.1.4.1.2606.7.4");
        await snmpd.InitializeAsync();
        Assert.SkipWhen(snmpd.SkipReason is not null, snmpd.SkipReason ?? "");
        var shipped = ShippedSnmpProfilesSnmpdTests.Shipped("rittal-cmc3");
        var profile = shipped with { Tables = [.. shipped.Tables.Select(t => t.Name == "humidity" ? t with { MaxRows = 3 } : t)] };

        var logs = new Dictionary<bool, ConcurrentQueue<(LogLevel Level, string Message)>>();
        var got = new Dictionary<bool, Dictionary<string, Sample>>();
        var requests = new Dictionary<bool, long>();
        foreach (var together in new[] { true, false })
        {
            logs[together] = new();
            (requests[together], _, got[together]) = await MeasureSteadyPollAsync(snmpd.Port, profile, together ? Walk.Together : Walk.Alone, new SnmpDeviceErrorsTests.ListLoggerFactory(logs[together]));
        }

        Assert.Equal(2, requests[true]);   // humidity's walk is temperature's, cut at its cap
        Assert.Equal(got[false].Keys.Order(StringComparer.Ordinal), got[true].Keys.Order(StringComparer.Ordinal));
        Assert.All(got[false], s => Assert.Equal(s.Value.Value, got[true][s.Key].Value));
        Assert.DoesNotContain(got[true].Keys, k => k.StartsWith("dev-1/humidity{", StringComparison.Ordinal));   // 2.3 is not among the filter's 3 rows
        Assert.Contains(got[true].Keys, k => k.StartsWith("dev-1/temperature{", StringComparison.Ordinal));
        var cut = Assert.Single(logs[true], l => l.Message.Contains("max_rows", StringComparison.Ordinal));
        Assert.Contains("table humidity: the walk stopped at max_rows 3", cut.Message, StringComparison.Ordinal);
        Assert.Equal(logs[false].Select(l => l.Message), logs[true].Select(l => l.Message));
    }
}
