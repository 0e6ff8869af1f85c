using EdgeTwin.Snmp.Client;
using EdgeTwin.Snmp.Messages;
using EdgeTwin.Snmp.Responder;

namespace EdgeTwin.Snmp.Tests.Client;

/// <summary>
/// <see cref="SnmpClient.BulkWalkColumnsAsync"/> (every column of a table in one GETBULK per round trip) against our
/// responder: each column must read exactly what walking it alone reads, whatever the table's holes, the end of the MIB,
/// the row caps, and how many repetitions the agent's answers hold.
/// </summary>
public sealed class ColumnWalkTests : IAsyncDisposable
{
    private static readonly Oid Entry = Oid.Parse("1.3.6.1.4.1.99999.5.1");
    private readonly SnmpMibStore _store = new();
    private readonly SnmpClient _client = new();
    private readonly List<SnmpResponder> _responders = [];

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public ColumnWalkTests()
    {
        // A sparse table, the last thing in the MIB (so its last column ends at endOfMibView): column 1 has every row of
        // 30, column 2 lacks rows 5 and 17 (an ifName absent for some ifIndex), column 3 has rows 1-3 only, column 4
        // holds long strings (an answer fills up on them first); two-arc indices under column 5.
        _store.Set("1.3.6.1.2.1.1.3.0", SnmpValue.TimeTicks(42));
        for (uint i = 1; i <= 30; i++)
        {
            _store.SetCell(Entry, 1, [i], SnmpValue.Integer((int)i));
            if (i is not (5 or 17))
            {
                _store.SetCell(Entry, 2, [i], SnmpValue.OctetString($"port {i}"));
            }
            if (i <= 3)
            {
                _store.SetCell(Entry, 3, [i], SnmpValue.Gauge32(i * 10));
            }
            _store.SetCell(Entry, 4, [i], SnmpValue.OctetString(new string((char)('a' + (i % 26)), 120)));
            _store.SetCell(Entry, 5, [i, i % 3], SnmpValue.Counter64(i * 1000UL));
        }
    }

    private SnmpTarget Start(int maxResponseSize, int maxRepetitions)
    {
        var responder = new SnmpResponder(_store, new SnmpResponderOptions { MaxResponseSize = maxResponseSize });
        _responders.Add(responder);
        return new SnmpTarget { EndPoint = responder.LocalEndPoint, Timeout = TimeSpan.FromSeconds(2), MaxRepetitions = maxRepetitions };
    }

    private static Oid Column(uint c) => Entry.Append(c);

    [Theory]
    [InlineData(65_507, 25)]
    [InlineData(65_507, 1)]
    [InlineData(65_507, 3)]
    [InlineData(1_400, 25)] // answers cut to the repetitions that fit (about 2 rows of the 6 columns)
    [InlineData(700, 10)]   // about 2 rows of every column fit
    [InlineData(330, 10)]   // one row of every column does not fit (tooBig): each column goes on alone
    public async Task Each_column_reads_what_walking_it_alone_reads(int maxResponseSize, int maxRepetitions)
    {
        var target = Start(maxResponseSize, maxRepetitions);
        // Column 9 does not exist (its walk meets the end of the MIB at once); column 0 sorts before column 1 (empty);
        // column 1 capped at 7 rows, column 2 twice (once capped at 1).
        Oid[] roots = [Column(1), Column(2), Column(3), Column(4), Column(5), Column(9), Column(0), Column(2)];
        int[] caps = [7, 100, 100, 100, 100, 100, 100, 1];

        var together = await _client.BulkWalkColumnsAsync(target, roots, caps, Ct);

        for (var i = 0; i < roots.Length; i++)
        {
            var alone = await _client.BulkWalkAsync(target, roots[i], Ct, caps[i]);
            Assert.Equal(alone.Select(v => (v.Oid, v.Value)), together[i].Select(v => (v.Oid, v.Value)));
        }
        Assert.Equal([7, 28, 3, 30, 30, 0, 0, 1], together.Select(r => r.Count));
        Assert.Equal(Enumerable.Range(1, 30).Where(i => i is not (5 or 17)).Select(i => $"port {i}"), together[1].Select(v => System.Text.Encoding.UTF8.GetString(v.Value.AsBytes().Span)));
    }

    [Fact]
    public async Task Over_snmpv1_each_column_is_walked_alone_with_getnext()
    {
        var target = Start(65_507, 25) with { Version = SnmpVersion.V1 };

        var together = await _client.BulkWalkColumnsAsync(target, [Column(1), Column(2), Column(3)], [100, 100, 100], Ct);

        Assert.Equal([30, 28, 3], together.Select(r => r.Count));
    }

    [Fact]
    public async Task A_table_walk_asks_every_column_in_each_getbulk()
    {
        var target = Start(65_507, 10);
        // Counted by this test's own responder: the client meter is process-wide and other tests' clients run in parallel.
        var responder = _responders[^1];
        var before = responder.RequestsServed;

        await _client.BulkWalkColumnsAsync(target, [Column(1), Column(2), Column(3), Column(4)], [100, 100, 100, 100], Ct);

        // 30 rows at 10 per answer, and the answer where the last columns leave the table; alone: 4 + 3 + 1 + 4 = 12.
        Assert.Equal(4, responder.RequestsServed - before);
    }

    [Fact]
    public async Task Rejects_caps_that_do_not_match_the_roots()
    {
        var target = Start(65_507, 25);

        await Assert.ThrowsAsync<ArgumentException>(() => _client.BulkWalkColumnsAsync(target, [Column(1), Column(2)], [10], Ct));
    }

    public async ValueTask DisposeAsync()
    {
        await _client.DisposeAsync();
        foreach (var r in _responders)
        {
            await r.DisposeAsync();
        }
    }
}
