using EdgeTwin.Snmp.Client;
using EdgeTwin.Snmp.Messages;
using EdgeTwin.Snmp.Security;
using EdgeTwin.Snmp.Tests.Peers;
using Microsoft.Extensions.Time.Testing;

namespace EdgeTwin.Snmp.Tests.Client;

/// <summary>
/// The client against a scripted misbehaving agent (Peers/snmp_bad_agent.py, the wire audit's peer): what a buggy PDU
/// or UPS firmware sends must end in a clear error naming the agent, the request and what was wrong, and the next
/// request must work once the agent behaves again.
/// </summary>
public sealed class HostileAgentTests : IAsyncLifetime
{
    private static readonly Oid Voltage = Oid.Parse(".1.3.6.1.4.1.99999.2.1.0");
    private static readonly Oid Humidity = Oid.Parse(".1.3.6.1.4.1.99999.2.2.0");

    private BadSnmpAgent? _agent;
    private SnmpClient? _client;
    // Only what the client remembers of an agent runs on it; request timeouts keep real timers.
    private readonly FakeTimeProvider _time = new();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private BadSnmpAgent Agent => _agent!;
    private SnmpClient Client => _client!;

    public async ValueTask InitializeAsync()
    {
        _agent = await BadSnmpAgent.StartAsync();
        _client = new SnmpClient(timeProvider: _time);
    }

    public async ValueTask DisposeAsync()
    {
        if (_client is not null)
        {
            await _client.DisposeAsync();
        }
        if (_agent is not null)
        {
            await _agent.DisposeAsync();
        }
    }

    private SnmpTarget Target(SnmpVersion version = SnmpVersion.V2c) =>
        new() { EndPoint = Agent.EndPoint, Version = version, Community = "public", Timeout = TimeSpan.FromMilliseconds(700), Retries = 0 };

    private async Task AnswersAgainAsync(SnmpVersion version = SnmpVersion.V2c)
    {
        await Agent.SetModeAsync("good");
        var vbs = await Client.GetAsync(Target(version) with { Retries = 2 }, [Voltage, Humidity], Ct);
        Assert.Equal([2301u, 17u], vbs.Select(v => v.Value.AsUInt32()));
        Assert.Equal(0, Client.InFlight);
    }

    [Theory]
    [InlineData(SnmpVersion.V2c)]
    [InlineData(SnmpVersion.V1)]
    public async Task Regression_an_snmpv3_message_bearing_a_v1_or_v2c_request_id_crashed_the_client_with_a_NullReferenceException(SnmpVersion version)
    {
        await Agent.SetModeAsync("cross_v3");

        var ex = await Assert.ThrowsAsync<SnmpTimeoutException>(() => Client.GetAsync(Target(version), [Voltage], Ct));

        Assert.Contains($"127.0.0.1:{Agent.Port}", ex.Message, StringComparison.Ordinal);
        Assert.Contains($"V3 message answering a {version} request", ex.Message, StringComparison.Ordinal);
        await AnswersAgainAsync(version);
    }

    [Fact]
    public async Task Regression_an_snmpv1_answer_to_a_v2c_request_was_taken_as_its_answer()
    {
        await Agent.SetModeAsync("wrong_version");

        var ex = await Assert.ThrowsAsync<SnmpTimeoutException>(() => Client.GetAsync(Target(), [Voltage], Ct));

        Assert.Contains("V1 message answering a V2c request", ex.Message, StringComparison.Ordinal);
        await AnswersAgainAsync();
    }

    [Fact]
    public async Task Regression_a_get_answered_under_another_oid_was_taken_as_the_value_of_the_asked_oid()
    {
        await Agent.SetModeAsync("other_oid");
        var errors = new SnmpErrorStatus[2];

        var each = await Assert.ThrowsAsync<SnmpException>(() => Client.GetEachAsync(Target(), [Voltage, Humidity], errors, Ct));
        var get = await Assert.ThrowsAsync<SnmpException>(() => Client.GetAsync(Target(), [Voltage], Ct));

        foreach (var ex in new[] { each, get })
        {
            Assert.Contains($"127.0.0.1:{Agent.Port}", ex.Message, StringComparison.Ordinal);
            Assert.Contains("GET of .1.3.6.1.4.1.99999.2.1.0 answered .1.3.6.1.4.1.99999.2.1.0.7 (varbind 1 of", ex.Message, StringComparison.Ordinal);
        }
        await AnswersAgainAsync();
    }

    [Theory]
    [InlineData("fewer", "answered 1 varbind(s) to a GET of 2")]
    [InlineData("more", "answered 3 varbind(s) to a GET of 2")]
    public async Task Regression_a_get_answered_with_fewer_or_more_varbinds_than_asked_was_returned_as_is(string mode, string expected)
    {
        await Agent.SetModeAsync(mode);

        var ex = await Assert.ThrowsAsync<SnmpException>(() => Client.GetAsync(Target(), [Voltage, Humidity], Ct));

        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
        Assert.Contains("(.1.3.6.1.4.1.99999.2.1.0 and 1 more)", ex.Message, StringComparison.Ordinal);
        await AnswersAgainAsync();
    }

    [Theory]
    [InlineData("garbage", "the last: malformed (")]
    [InlineData("truncated", "malformed (")]
    [InlineData("overlength", "malformed (length")]
    [InlineData("nested", "malformed (")]
    [InlineData("indefinite", "malformed (indefinite length")]
    [InlineData("wrong_id", "the last: request-id ")]
    [InlineData("other_port", "answered from 127.0.0.1:")]
    [InlineData("wrong_id", "is not in flight (a late answer, or a wrong request-id)")]
    public async Task Regression_a_timeout_said_no_response_while_the_agent_answered_something_unusable(string mode, string expected)
    {
        await Agent.SetModeAsync(mode);

        var ex = await Assert.ThrowsAsync<SnmpTimeoutException>(() => Client.GetAsync(Target(), [Voltage, Humidity], Ct));

        // Names the agent, the request and what came back instead of an answer.
        Assert.StartsWith($"127.0.0.1:{Agent.Port} (V2c): GET of .1.3.6.1.4.1.99999.2.1.0 and 1 more: no response after 1 attempt(s)", ex.Message, StringComparison.Ordinal);
        Assert.Contains("; ignored 1 datagram(s) meanwhile, the last: ", ex.Message, StringComparison.Ordinal);
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
        await AnswersAgainAsync();
    }

    [Fact]
    public async Task A_silent_agent_times_out_naming_the_request_and_nothing_ignored()
    {
        await Agent.SetModeAsync("silent");

        var ex = await Assert.ThrowsAsync<SnmpTimeoutException>(() => Client.GetAsync(Target(), [Voltage], Ct));

        Assert.Equal($"127.0.0.1:{Agent.Port} (V2c): GET of .1.3.6.1.4.1.99999.2.1.0: no response after 1 attempt(s) of 0.7 s", ex.Message);
        await AnswersAgainAsync();
    }

    [Fact]
    public async Task Regression_a_tooBig_on_a_walk_did_not_name_the_oid()
    {
        await Agent.SetModeAsync("toobig");

        var ex = await Assert.ThrowsAsync<SnmpErrorStatusException>(() => Client.BulkWalkAsync(Target(), Oid.Parse(".1.3.6.1.4.1.99999.1"), Ct));

        Assert.Equal(SnmpErrorStatus.TooBig, ex.Status);
        Assert.Contains("request for .1.3.6.1.4.1.99999.1:", ex.Message, StringComparison.Ordinal);
    }

    /// <summary>Requests and tooBig answers the peer saw during <paramref name="poll"/>, counted at the peer.</summary>
    private async Task<(int Requests, int TooBig)> CountAsync(string mode, Func<Task> poll)
    {
        var (requests, tooBig) = (Agent.Requests, Agent.TooBigAnswers);
        await poll();
        await Agent.SetModeAsync(mode); // a barrier: every REQ/TOOBIG line logged before is counted now
        return (Agent.Requests - requests, Agent.TooBigAnswers - tooBig);
    }

    [Fact]
    public async Task Regression_every_bulk_walk_paid_the_tooBig_round_trips_again_instead_of_keeping_the_size_that_fit()
    {
        // The peer answers tooBig to anything over 8 varbinds; its table column has 40 rows, walked with max-repetitions 25.
        const string mode = "toobig_over:8";
        await Agent.SetModeAsync(mode);
        var column = Oid.Parse(".1.3.6.1.4.1.99999.1.1.1.3");
        var polls = new List<(int Requests, int TooBig)>();

        for (var poll = 0; poll < 12; poll++)
        {
            polls.Add(await CountAsync(mode, async () =>
            {
                var rows = await Client.BulkWalkAsync(Target(), column, Ct);
                Assert.Equal(Enumerable.Range(201, 40), rows.Select(r => r.Value.AsInt32()));
            }));
        }

        // Steady state: 8 rows per GETBULK (the most the peer sends), 5 of them and one that finds the column's end,
        // and no tooBig. Before, every GETBULK of every walk started at 25 again: 21 round trips per walk, 14 tooBig.
        var text = string.Join(" ", polls.Select(p => $"{p.Requests}/{p.TooBig}"));
        TestContext.Current.TestOutputHelper?.WriteLine($"requests/tooBig per walk: {text}");
        Assert.True(polls.TakeLast(4).All(p => p == (6, 0)), $"requests/tooBig per walk: {text}");
        Assert.True(polls.Sum(p => p.TooBig) <= 6, $"requests/tooBig per walk: {text}");
    }

    [Fact]
    public async Task A_table_walked_with_its_columns_together_keeps_the_varbinds_that_fit_after_tooBig()
    {
        // Two columns (the peer's 40-row column twice) in each GETBULK, 25 repetitions asked: 50 varbinds against an agent
        // that answers tooBig above 8.
        const string mode = "toobig_over:8";
        await Agent.SetModeAsync(mode);
        Oid[] roots = [Oid.Parse(".1.3.6.1.4.1.99999.1.1.1.3"), Oid.Parse(".1.3.6.1.4.1.99999.1.1.1.3")];
        var polls = new List<(int Requests, int TooBig)>();

        for (var poll = 0; poll < 12; poll++)
        {
            polls.Add(await CountAsync(mode, async () =>
            {
                var columns = await Client.BulkWalkColumnsAsync(Target(), roots, [1000, 1000], Ct);
                Assert.All(columns, rows => Assert.Equal(Enumerable.Range(201, 40), rows.Select(r => r.Value.AsInt32())));
            }));
        }

        // Steady: 4 rows of both columns per GETBULK (8 varbinds), 10 of them and the one that finds the end; no tooBig.
        var text = string.Join(" ", polls.Select(p => $"{p.Requests}/{p.TooBig}"));
        TestContext.Current.TestOutputHelper?.WriteLine($"requests/tooBig per walk: {text}");
        Assert.True(polls.TakeLast(4).All(p => p == (11, 0)), $"requests/tooBig per walk: {text}");
        Assert.True(polls.Sum(p => p.TooBig) <= 6, $"requests/tooBig per walk: {text}");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Regression_every_get_of_many_oids_paid_the_tooBig_round_trip_again_instead_of_keeping_the_size_that_fit(bool each)
    {
        // The peer answers tooBig to anything over 2 varbinds.
        const string mode = "toobig_over:2";
        await Agent.SetModeAsync(mode);
        Oid[] oids = [Oid.Parse(".1.3.6.1.2.1.1.3.0"), Voltage, Humidity, Oid.Parse(".1.3.6.1.4.1.99999.1.1.1.3.1"), Oid.Parse(".1.3.6.1.4.1.99999.1.1.1.3.2")];
        var errors = new SnmpErrorStatus[oids.Length];
        var polls = new List<(int Requests, int TooBig)>();

        for (var poll = 0; poll < 10; poll++)
        {
            polls.Add(await CountAsync(mode, async () =>
            {
                IReadOnlyList<VarBind> vbs = each ? await Client.GetEachAsync(Target(), oids, errors, Ct) : await Client.GetAsync(Target(), oids, Ct);
                Assert.Equal(oids, vbs.Select(v => v.Oid));
                Assert.Equal([4242.0, 2301, 17, 201, 202], vbs.Select(v => v.Value.TryGetNumber(out var n) ? n : double.NaN));
            }));
        }

        // Before: 5 OIDs drew tooBig, then 2 + 3, the 3 drew tooBig again, then 1 + 2: 5 round trips and 2 tooBig every
        // poll. Now the first poll learns that 5 are too many and 2 fit, one later request tries 3 (tooBig), and from
        // then on every poll asks 2 + 2 + 1.
        var text = string.Join(" ", polls.Select(p => $"{p.Requests}/{p.TooBig}"));
        TestContext.Current.TestOutputHelper?.WriteLine($"requests/tooBig per GET: {text}");
        Assert.True(polls.TakeLast(6).All(p => p == (3, 0)), $"requests/tooBig per GET: {text}");
        Assert.True(polls.Sum(p => p.TooBig) <= 2, $"requests/tooBig per GET: {text}");
    }

    [Fact]
    public async Task Regression_every_getnext_of_many_oids_paid_the_tooBig_round_trips_again_instead_of_keeping_the_size_that_fit()
    {
        // The peer answers tooBig to anything over 2 varbinds; the 5 OIDs are rows 1-5 of a 40-row column.
        const string mode = "toobig_over:2";
        await Agent.SetModeAsync(mode);
        var oids = Enumerable.Range(1, 5).Select(row => Oid.Parse($".1.3.6.1.4.1.99999.1.1.1.3.{row}")).ToArray();
        var polls = new List<(int Requests, int TooBig)>();

        for (var poll = 0; poll < 10; poll++)
        {
            polls.Add(await CountAsync(mode, async () =>
            {
                var vbs = await Client.GetNextAsync(Target(), oids, Ct);
                Assert.Equal(Enumerable.Range(202, 5), vbs.Select(v => v.Value.AsInt32()));
            }));
        }

        // Before: 5 round trips and 2 tooBig every poll (halves: 5 refused, 2 + 3, 3 refused, 1 + 2). Now as GET: 2 + 2 + 1.
        var text = string.Join(" ", polls.Select(p => $"{p.Requests}/{p.TooBig}"));
        TestContext.Current.TestOutputHelper?.WriteLine($"requests/tooBig per GETNEXT: {text}");
        Assert.True(polls.TakeLast(6).All(p => p == (3, 0)), $"requests/tooBig per GETNEXT: {text}");
        Assert.True(polls.Sum(p => p.TooBig) <= 2, $"requests/tooBig per GETNEXT: {text}");
    }

    [Fact]
    public async Task Regression_an_agent_that_took_bigger_answers_later_was_held_to_the_size_learned_before_until_a_restart()
    {
        // The peer first takes 8 varbinds per answer, then (reconfigured) 20; the column has 40 rows, walked with 25.
        var column = Oid.Parse(".1.3.6.1.4.1.99999.1.1.1.3");
        async Task<List<(int Requests, int TooBig)>> WalksAsync(string mode, int count)
        {
            await Agent.SetModeAsync(mode);
            var polls = new List<(int Requests, int TooBig)>();
            for (var poll = 0; poll < count; poll++)
            {
                polls.Add(await CountAsync(mode, async () =>
                {
                    var rows = await Client.BulkWalkAsync(Target(), column, Ct);
                    Assert.Equal(Enumerable.Range(201, 40), rows.Select(r => r.Value.AsInt32()));
                }));
            }
            return polls;
        }

        var learned = await WalksAsync("toobig_over:8", 12);
        var sameHour = await WalksAsync("toobig_over:20", 3);
        _time.Advance(TimeSpan.FromHours(1));
        var nextHour = await WalksAsync("toobig_over:20", 24);

        // Within the hour the refused size (9) is believed: 8 per GETBULK, 6 round trips. An hour later one walk asks
        // for 9 again, it is answered, and probing goes on up to 20: 3 round trips (20 + 20 + the column's end).
        // Before, the client asked for 8 until it was restarted.
        var text = $"learning {Text(learned)}; reconfigured, same hour {Text(sameHour)}; an hour later {Text(nextHour)}";
        TestContext.Current.TestOutputHelper?.WriteLine($"requests/tooBig per walk: {text}");
        Assert.True(learned.TakeLast(4).All(p => p == (6, 0)), text);
        Assert.True(sameHour.All(p => p == (6, 0)), text);
        Assert.True(nextHour.TakeLast(4).All(p => p == (3, 0)), text);
        Assert.True(nextHour.Sum(p => p.TooBig) <= 4, text);
    }

    [Fact]
    public async Task Regression_a_single_transient_tooBig_pinned_the_get_size_down_until_a_restart()
    {
        // The peer takes 2 varbinds per answer, for one poll (busy) only 1, then 2 again.
        Oid[] oids = [Oid.Parse(".1.3.6.1.2.1.1.3.0"), Voltage, Humidity, Oid.Parse(".1.3.6.1.4.1.99999.1.1.1.3.1"), Oid.Parse(".1.3.6.1.4.1.99999.1.1.1.3.2")];
        async Task<List<(int Requests, int TooBig)>> GetsAsync(string mode, int count)
        {
            await Agent.SetModeAsync(mode);
            var polls = new List<(int Requests, int TooBig)>();
            for (var poll = 0; poll < count; poll++)
            {
                polls.Add(await CountAsync(mode, async () =>
                {
                    var vbs = await Client.GetAsync(Target(), oids, Ct);
                    Assert.Equal([4242.0, 2301, 17, 201, 202], vbs.Select(v => v.Value.TryGetNumber(out var n) ? n : double.NaN));
                }));
            }
            return polls;
        }

        var learned = await GetsAsync("toobig_over:2", 8);
        var busy = await GetsAsync("toobig_over:1", 1);
        var sameHour = await GetsAsync("toobig_over:2", 3);
        _time.Advance(TimeSpan.FromHours(1));
        var nextHour = await GetsAsync("toobig_over:2", 10);

        // The busy poll's tooBig at the kept 2 makes the client learn again from 1, and 2 is not tried again within the
        // hour (5 GETs of 1). An hour later 2 is asked again and answered, and the client is back at 2 + 2 + 1.
        // Before, it asked one OID per GET until it was restarted.
        var text = $"learning {Text(learned)}; busy {Text(busy)}; same hour {Text(sameHour)}; an hour later {Text(nextHour)}";
        TestContext.Current.TestOutputHelper?.WriteLine($"requests/tooBig per GET: {text}");
        Assert.True(learned.TakeLast(4).All(p => p == (3, 0)), text);
        Assert.True(sameHour.All(p => p == (5, 0)), text);
        Assert.True(nextHour.TakeLast(4).All(p => p == (3, 0)), text);
        Assert.True(nextHour.Sum(p => p.TooBig) <= 2, text);
    }

    private static string Text(IEnumerable<(int Requests, int TooBig)> polls) => string.Join(" ", polls.Select(p => $"{p.Requests}/{p.TooBig}"));

    private SnmpTarget V3Target() =>
        Target(SnmpVersion.V3) with { User = new SnmpV3User(BadSnmpAgent.V3User, SnmpAuthProtocol.Sha1, BadSnmpAgent.V3Password) };

    [Theory]
    [InlineData("v3_wrong_rid", "carries request-id ")]
    [InlineData("v3_wrong_msgid", "is not in flight (a late answer, or a wrong request-id)")]
    public async Task Regression_an_snmpv3_response_with_our_msgID_but_another_request_id_was_taken_as_the_answer(string mode, string expected)
    {
        await Agent.SetModeAsync(mode);

        var ex = await Assert.ThrowsAsync<SnmpTimeoutException>(() => Client.GetAsync(V3Target(), [Voltage], Ct));

        Assert.StartsWith($"127.0.0.1:{Agent.Port} (V3, user ops): GET of .1.3.6.1.4.1.99999.2.1.0: no response after 1 attempt(s)", ex.Message, StringComparison.Ordinal);
        Assert.Contains("; ignored 1 datagram(s) meanwhile, the last: ", ex.Message, StringComparison.Ordinal);
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
        await Agent.SetModeAsync("good");
        var vbs = await Client.GetAsync(V3Target() with { Retries = 2 }, [Voltage, Humidity], Ct);
        Assert.Equal([2301u, 17u], vbs.Select(v => v.Value.AsUInt32()));
    }

    [Theory]
    [InlineData("wrong_id", "the last: request-id ")]
    [InlineData("garbage", "the last: malformed (")]
    public async Task Regression_a_request_ended_by_the_callers_deadline_did_not_say_which_datagrams_it_had_ignored(string mode, string expected)
    {
        await Agent.SetModeAsync(mode);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        deadline.CancelAfter(TimeSpan.FromMilliseconds(500));

        // The request's own timeout (5 s) is far off: the caller's deadline ends it, as a poll's budget does.
        var ex = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Client.GetAsync(Target() with { Timeout = TimeSpan.FromSeconds(5) }, [Voltage], deadline.Token));

        Assert.Equal(deadline.Token, ex.CancellationToken);
        var why = Assert.IsType<SnmpTimeoutException>(ex.InnerException);
        Assert.StartsWith($"127.0.0.1:{Agent.Port} (V2c): GET of .1.3.6.1.4.1.99999.2.1.0: no response before the caller's deadline (attempt 1 of 1)", why.Message, StringComparison.Ordinal);
        Assert.Contains("; ignored 1 datagram(s) meanwhile, ", why.Message, StringComparison.Ordinal);
        Assert.Contains(expected, why.Message, StringComparison.Ordinal);
        Assert.InRange(why.Message.Length, 1, 400);
        await AnswersAgainAsync();
    }
}
