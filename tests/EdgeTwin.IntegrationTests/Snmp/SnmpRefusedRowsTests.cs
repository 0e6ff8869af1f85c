using System.Collections.Concurrent;
using EdgeTwin.Agent.Sources.Snmp;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Profiles;
using EdgeTwin.Core.Samples;
using EdgeTwin.Core.Sources;
using EdgeTwin.Snmp;
using EdgeTwin.Snmp.Responder;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.IntegrationTests.Snmp;

/// <summary>Table rows refused at the device's max_series: what a poll costs for them, and that they get in once there is room.</summary>
public sealed class SnmpRefusedRowsTests : IAsyncDisposable
{
    private const string Entry = ".1.3.6.1.4.1.99997.1.1";
    private static readonly Oid EntryOid = Oid.Parse(Entry);
    private static readonly Oid PowerColumn = Oid.Parse(Entry + ".2");
    private readonly SnmpSourceFactory _factory = new();
    private readonly ConcurrentQueue<(LogLevel Level, string Message)> _logs = new();
    private SnmpResponder? _responder;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly DeviceProfile Profile = new(
        "refused-pdu", "Acme", "test", DeviceProtocol.Snmp, "ACME-REFUSED-MIB",
        [],
        [
            new ProfileTable("outlet", "outlet",
            [
                new ProfileMetric("outlet_power", "W", MetricKind.Gauge, "pdu.outlet_power") { Oid = Entry + ".2" },
            ]),
        ]);

    // The same table with a label column (.1) and a filter column (.3, rows with 1 kept).
    private static readonly DeviceProfile LabelledProfile = Profile with
    {
        Tables = [Profile.Tables[0] with { LabelOid = Entry + ".1", LabelTag = "outlet_name", Filter = new TableRowFilter(Entry + ".3", [1]) }],
    };

    private (SnmpSource Source, SeriesRegistry Registry) Build(string id, int port, int maxSeries, TimeSpan rowRetention, DeviceProfile? profile = null)
    {
        profile ??= Profile;
        var credentials = CredentialsConfig.V2c("v2", "public");
        var device = new DeviceConfig(id, Profile.Id, DeviceAddress.Udp("127.0.0.1", port))
        {
            Credentials = credentials.Name,
            Timeout = TimeSpan.FromSeconds(5),
            MaxSeries = maxSeries,
            RowRetention = rowRetention,
        };
        var loggers = new SnmpDeviceErrorsTests.ListLoggerFactory(_logs);
        var sources = _factory.Create(new SourceContext(device, profile, credentials, loggers, TimeProvider.System));
        var registry = new SeriesRegistry(loggers.CreateLogger<SeriesRegistry>());
        registry.LimitDevice(id, maxSeries); // as the agent does before any source registers
        sources.Polled!.RegisterSeries(registry);
        return ((SnmpSource)sources.Polled, registry); // the source owns nothing: the shared client is the factory's
    }

    [Fact]
    public void Regression_a_refused_row_allocated_its_key_tags_and_descriptor_on_every_poll()
    {
        // Before: every poll built, for each refused row, its index and key strings, its tag list, a SeriesDescriptor with
        // its key, and asked the registry, which refused it again: 806 bytes per refused row per poll (measured with this test, without
        // labels and filter, and the remembering switched off); the filter and label walks built a set and a map of strings.
        const int rows = 40;
        const int cap = 8;
        var (source, registry) = Build("refused-alloc", 161, cap, TimeSpan.FromDays(1), LabelledProfile);
        // Two-arc indices; every fifth row filtered out (8), so 32 rows pass the filter and 24 of them are refused.
        var walk = Enumerable.Range(1, rows)
            .Select(i => new VarBind(Oid.Parse($"{Entry}.2.{i}.{i * 7}"), SnmpValue.Gauge32((uint)i * 10)))
            .ToArray();
        var labels = Enumerable.Range(1, rows)
            .Select(i => new VarBind(Oid.Parse($"{Entry}.1.{i}.{i * 7}"), SnmpValue.OctetString($"outlet-{i:00}")))
            .ToArray();
        var filter = Enumerable.Range(1, rows)
            .Select(i => new VarBind(Oid.Parse($"{Entry}.3.{i}.{i * 7}"), SnmpValue.Integer(i % 5 == 0 ? 2 : 1)))
            .ToArray();
        var samples = new List<Sample>(rows);
        void Pass(long poll)
        {
            samples.Clear();
            source.AddColumnRows(0, 0, walk, walk.Length, filter, labels, registry, samples, 1_000 * poll, poll, poll);
        }

        Pass(1);
        Pass(2); // the refused rows are found by their key from now on; a few passes more let the JIT settle
        Pass(3);
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var poll = 4; poll < 1_004; poll++)
        {
            Pass(poll);
        }
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(0, allocated);
        // The rows that fit keep flowing; every refused row still counts as a dropped sample, on every poll.
        Assert.Equal(cap, samples.Count);
        Assert.Equal(cap, registry.Budget("refused-alloc").Count);
        Assert.Equal(24 * 1_003L, registry.Budget("refused-alloc").Dropped);
        Assert.Equal(24, source.RefusedRowCount);
        Assert.Equal(["01", "02", "03", "04", "06", "07", "08", "09"], samples.Select(x => registry[x.Series].Tags![1].Value[^2..]));
        var warning = Assert.Single(_logs, l => l.Level == LogLevel.Warning && l.Message.Contains("reached its cap", StringComparison.Ordinal)).Message;
        Assert.Contains("A dropped series: refused-alloc/outlet_power{outlet=11.77,outlet_name=outlet-11}", warning, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_refused_row_gets_its_series_once_retired_rows_free_the_device_cap()
    {
        var store = new SnmpMibStore();
        for (uint i = 1; i <= 6; i++)
        {
            store.SetCell(EntryOid, 2, [i], SnmpValue.Gauge32(i * 100));
        }
        _responder = new SnmpResponder(store);
        var (source, registry) = Build("refused-retire", _responder.LocalEndPoint.Port, maxSeries: 4, rowRetention: TimeSpan.Zero); // the three-poll rule alone decides
        var perPoll = new List<string>();
        for (var poll = 1; poll <= 7; poll++)
        {
            if (poll == 3)
            {
                // Outlets 1 and 2 leave (unplugged); after three complete polls without them their series are retired.
                store.Remove(PowerColumn.Append(1));
                store.Remove(PowerColumn.Append(2));
            }
            var sink = new RecordingSink();
            await source.PollAsync(sink, 1_000 * poll, Ct);
            perPoll.Add(string.Join(",", sink.Samples.Select(s => registry[s.Series].Tags![0].Value).Order(StringComparer.Ordinal)));
        }

        // Outlets 5 and 6 were refused while the device was at its cap of 4, and taken on the first poll after outlets 1 and
        // 2 were retired (at the end of the 5th poll).
        Assert.Equal(["1,2,3,4", "1,2,3,4", "3,4", "3,4", "3,4", "3,4,5,6", "3,4,5,6"], perPoll);
        var budget = registry.Budget("refused-retire");
        Assert.Equal((4, 2L, 10L), (budget.Count, budget.Retired, budget.Dropped)); // 2 refused samples in each of polls 1–5
        Assert.Equal(0, source.RefusedRowCount);
        Assert.Single(_logs, l => l.Level == LogLevel.Warning && l.Message.Contains("reached its cap", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_refused_row_that_leaves_its_table_is_forgotten_after_the_next_complete_poll()
    {
        var store = new SnmpMibStore();
        for (uint i = 1; i <= 5; i++)
        {
            store.SetCell(EntryOid, 2, [i], SnmpValue.Gauge32(i * 100));
        }
        _responder = new SnmpResponder(store);
        var (source, registry) = Build("refused-gone", _responder.LocalEndPoint.Port, maxSeries: 2, rowRetention: TimeSpan.FromDays(1));
        var remembered = new List<int>();
        for (var poll = 1; poll <= 4; poll++)
        {
            if (poll == 3)
            {
                store.Remove(PowerColumn.Append(4));
                store.Remove(PowerColumn.Append(5));
            }
            await source.PollAsync(new RecordingSink(), 1_000 * poll, Ct);
            remembered.Add(source.RefusedRowCount);
        }

        // A table whose refused indices churn must not grow the source's memory of them.
        Assert.Equal([3, 3, 1, 1], remembered);
        Assert.Equal(3 + 3 + 1 + 1, registry.Budget("refused-gone").Dropped);
    }

    [Fact]
    public async Task A_filtered_labelled_table_at_its_cap_keeps_rows_by_filter_and_labels_them_from_their_own_index()
    {
        // The filter and label walks are searched by index per row (no set or map per poll): outlet 3 is filtered out
        // (not refused, so not counted), outlet 2 has no label, 5 and 6 are past the cap of 3.
        var store = new SnmpMibStore();
        for (uint i = 1; i <= 6; i++)
        {
            if (i != 2)
            {
                store.SetCell(EntryOid, 1, [i], SnmpValue.OctetString($"outlet-{i:00}"));
            }
            store.SetCell(EntryOid, 2, [i], SnmpValue.Gauge32(i * 100));
            store.SetCell(EntryOid, 3, [i], SnmpValue.Integer(i == 3 ? 2 : 1));
        }
        _responder = new SnmpResponder(store);
        var (source, registry) = Build("refused-labelled", _responder.LocalEndPoint.Port, maxSeries: 3, rowRetention: TimeSpan.FromDays(1), LabelledProfile);
        var perPoll = new List<string[]>();
        for (var poll = 1; poll <= 3; poll++)
        {
            var sink = new RecordingSink();
            await source.PollAsync(sink, 1_000 * poll, Ct);
            perPoll.Add([.. sink.Samples.Select(x => $"{registry[x.Series].Key}={x.Value}").Order(StringComparer.Ordinal)]);
        }

        string[] expected =
        [
            "refused-labelled/outlet_power{outlet=1,outlet_name=outlet-01}=100",
            "refused-labelled/outlet_power{outlet=2}=200",
            "refused-labelled/outlet_power{outlet=4,outlet_name=outlet-04}=400",
        ];
        Assert.All(perPoll, keys => Assert.Equal(expected, keys));
        Assert.Equal(2 * 3, registry.Budget("refused-labelled").Dropped);
        Assert.Equal(2, source.RefusedRowCount);
    }

    public async ValueTask DisposeAsync()
    {
        await _factory.DisposeAsync();
        if (_responder is not null)
        {
            await _responder.DisposeAsync();
        }
    }
}
