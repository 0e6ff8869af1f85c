using System.Collections.Concurrent;
using System.Net;
using EdgeTwin.Snmp;
using EdgeTwin.Snmp.Client;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.IntegrationTests.Snmp;

/// <summary>
/// How the client's tooBig sizing (<c>FittingSize</c>) meets net-snmp's snmpd when its answers are capped at 1,472
/// octets: what a GETBULK and a GET cost, and what a tooBig at the size the client had learned (the answers grew) costs.
/// </summary>
public sealed class SnmpdTooBigTests(SnmpdSmallBufferProcess snmpd) : IClassFixture<SnmpdSmallBufferProcess>, IAsyncDisposable
{
    private readonly ConcurrentQueue<(LogLevel Level, string Message)> _logs = new();
    private SnmpClient? _client;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private SnmpClient Client => _client ??= new SnmpClient(new ListLogger<SnmpClient>(_logs));

    private SnmpTarget Target(int maxRepetitions = 25) =>
        new() { EndPoint = new IPEndPoint(IPAddress.Loopback, snmpd.Port), Timeout = TimeSpan.FromSeconds(2), Retries = 1, MaxRepetitions = maxRepetitions };

    private int TooBigs => _logs.Count(l => l.Message.Contains("answered tooBig", StringComparison.Ordinal));

    /// <summary>Requests snmpd received and tooBig answers the client got during <paramref name="request"/>.</summary>
    private async Task<(int Requests, int TooBig)> CountAsync(Func<Task> request)
    {
        var (requests, tooBig) = (snmpd.Requests, TooBigs);
        await request();
        return (snmpd.Requests - requests, TooBigs - tooBig);
    }

    private static string Text(IEnumerable<(int Requests, int TooBig)> polls) => string.Join(" ", polls.Select(p => $"{p.Requests}/{p.TooBig}"));

    [Fact]
    public async Task Snmpd_cuts_a_getbulk_answer_to_what_fits_instead_of_answering_tooBig_so_a_walk_never_shrinks()
    {
        Assert.SkipWhen(snmpd.SkipReason is not null, snmpd.SkipReason ?? "");
        snmpd.ValueLength = 200;
        var walks = new List<(int Requests, int TooBig)>();
        for (var walk = 0; walk < 3; walk++)
        {
            walks.Add(await CountAsync(async () =>
            {
                var rows = await Client.BulkWalkAsync(Target(maxRepetitions: 40), Oid.Parse(SnmpdSmallBufferProcess.Base), Ct);
                Assert.Equal(Enumerable.Range(1, SnmpdSmallBufferProcess.Objects).Select(snmpd.Value), rows.Select(r => System.Text.Encoding.ASCII.GetString(r.Value.AsBytes().Span)));
            }));
        }

        // RFC 3416 4.2.3: snmpd answers a GETBULK with as many repetitions as fit in its 1,472 octets (6 values of 200
        // characters), never tooBig; so max-repetitions never shrinks, and each walk is 7 answers of up to 6 rows.
        var text = "requests/tooBig per walk: " + Text(walks);
        TestContext.Current.TestOutputHelper?.WriteLine(text);
        Assert.True(walks.All(w => w == (7, 0)), text);
    }

    [Fact]
    public async Task A_tooBig_at_the_learned_get_size_after_the_values_grew_costs_one_round_trip_and_the_client_settles_on_the_new_largest_size()
    {
        Assert.SkipWhen(snmpd.SkipReason is not null, snmpd.SkipReason ?? "");
        var oids = Enumerable.Range(1, 10).Select(i => Oid.Parse($"{SnmpdSmallBufferProcess.Base}.{i}")).ToArray();
        async Task<List<(int Requests, int TooBig)>> GetsAsync(int valueLength, int count)
        {
            snmpd.ValueLength = valueLength;
            var polls = new List<(int Requests, int TooBig)>();
            for (var poll = 0; poll < count; poll++)
            {
                polls.Add(await CountAsync(async () =>
                {
                    var vbs = await Client.GetAsync(Target(), oids, Ct);
                    Assert.Equal(Enumerable.Range(1, 10).Select(snmpd.Value), vbs.Select(v => System.Text.Encoding.ASCII.GetString(v.Value.AsBytes().Span)));
                }));
            }
            return polls;
        }

        // 10 values of 200 characters: 6 fit in 1,472 octets, 7 do not. Then the values grow to 260 characters: 5 fit.
        var learning = await GetsAsync(200, 12);
        var grown = await GetsAsync(260, 12);

        // Learning: 10 draws tooBig, then 5 + 5; after 8 answers a probe of 7 (tooBig, then 5 + 2, and 3); 8 answers
        // later a probe of 6 fits: 6 + 4 from then on. Grown: the learned 6 draws one tooBig; nothing below 6 is known to
        // fit any more, so its 6 OIDs go as 3 + 3 and the other 4 in one request, which fits and is kept; the next GET
        // probes 5 (8 answers have passed since the last probe), which fits: 5 + 5 from then on. Stepping down by one
        // instead (5 + 1, then 4) costs the same 4 requests here, and one tooBig per step when the values grow by more
        // than a varbind's worth per answer; halving costs one tooBig unless they more than double.
        var text = $"requests/tooBig per GET: values of 200 {Text(learning)}; of 260 {Text(grown)}";
        TestContext.Current.TestOutputHelper?.WriteLine(text);
        Assert.True(learning.SequenceEqual([(3, 1), (2, 0), (2, 0), (2, 0), (4, 1), (2, 0), (2, 0), (2, 0), (2, 0), (2, 0), (2, 0), (2, 0)]), text);
        Assert.True(grown.SequenceEqual([(4, 1), .. Enumerable.Repeat((2, 0), 11)]), text);
    }

    public async ValueTask DisposeAsync()
    {
        if (_client is not null)
        {
            await _client.DisposeAsync();
        }
    }
}
