using System.Collections.Concurrent;
using System.IO.Ports;
using EdgeTwin.Modbus.Client;
using EdgeTwin.Modbus.Protocol;
using EdgeTwin.Modbus.Tests.Peers;
using EdgeTwin.Modbus.Transport;

namespace EdgeTwin.Modbus.Tests.Client;

public sealed class BusSchedulerTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static async Task RunUntil(ModbusBusScheduler scheduler, Func<bool> done, TimeSpan limit)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var run = scheduler.RunAsync(cts.Token);
        var deadline = DateTime.UtcNow + limit;
        while (!done() && DateTime.UtcNow < deadline && !run.IsCompleted)
        {
            await Task.Delay(20, Ct);
        }

        await cts.CancelAsync();
        await run.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        Assert.True(done(), "the condition was not reached within " + limit);
    }

    [Fact]
    public async Task Dead_device_backs_off_and_never_starves_the_others()
    {
        using var scheduler = new ModbusBusScheduler("test-bus", new ModbusSchedulerOptions { MaxBackoff = TimeSpan.FromSeconds(30) });
        var order = new ConcurrentQueue<string>();
        int active = 0, maxActive = 0;
        int polls(string name) => order.Count(n => n == name);

        Func<CancellationToken, Task> Device(string name, bool dead) => async ct =>
        {
            int now = Interlocked.Increment(ref active);
            maxActive = Math.Max(maxActive, now);
            try
            {
                order.Enqueue(name);
                await Task.Delay(dead ? 100 : 5, ct); // a dead unit costs its timeout
                if (dead)
                {
                    throw new ModbusTimeoutException($"unit {name} did not answer");
                }
            }
            finally
            {
                Interlocked.Decrement(ref active);
            }
        };

        using var a = scheduler.Add("A", TimeSpan.FromMilliseconds(50), Device("A", false));
        using var dead = scheduler.Add("dead", TimeSpan.FromMilliseconds(50), Device("dead", true));
        using var b = scheduler.Add("B", TimeSpan.FromMilliseconds(50), Device("B", false));

        await RunUntil(scheduler, () => polls("A") >= 25 && polls("B") >= 25, TimeSpan.FromSeconds(60));

        Assert.Equal(1, maxActive); // one request on the bus at a time
        Assert.True(polls("dead") <= polls("A") / 2, $"dead unit polled {polls("dead")} times vs A {polls("A")}");
        var status = scheduler.Status().Single(s => s.Name == "dead");
        Assert.Equal(status.Polls, status.Failures);
        Assert.Contains("did not answer", status.LastError, StringComparison.Ordinal);

        // A and B take turns: neither is polled three times in a row.
        var ab = order.Where(n => n != "dead").ToArray();
        for (int i = 2; i < ab.Length; i++)
        {
            Assert.False(ab[i] == ab[i - 1] && ab[i] == ab[i - 2], $"{ab[i]} polled three times in a row at {i}");
        }
    }

    [Fact]
    public async Task Hung_poll_is_cut_by_the_poll_timeout_and_the_next_device_runs()
    {
        using var scheduler = new ModbusBusScheduler("test-bus", new ModbusSchedulerOptions { PollTimeout = TimeSpan.FromMilliseconds(200) });
        int good = 0;
        using var hung = scheduler.Add("hung", TimeSpan.FromMilliseconds(20), ct => Task.Delay(Timeout.Infinite, ct));
        using var ok = scheduler.Add("ok", TimeSpan.FromMilliseconds(20), _ => { Interlocked.Increment(ref good); return Task.CompletedTask; });
        await RunUntil(scheduler, () => Volatile.Read(ref good) >= 10, TimeSpan.FromSeconds(30));
        var status = scheduler.Status().Single(s => s.Name == "hung");
        Assert.True(status.Failures >= 1);
        Assert.Contains("longer than", status.LastError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Recovered_device_returns_to_its_interval()
    {
        using var scheduler = new ModbusBusScheduler("test-bus");
        int calls = 0;
        using var flaky = scheduler.Add("flaky", TimeSpan.FromMilliseconds(10), _ =>
            Interlocked.Increment(ref calls) <= 2 ? throw new ModbusCommunicationException("down") : Task.CompletedTask);
        await RunUntil(scheduler, () => Volatile.Read(ref calls) >= 6, TimeSpan.FromSeconds(30));
        var status = scheduler.Status().Single();
        Assert.Equal(0, status.ConsecutiveFailures);
        Assert.Equal(2, status.Failures);
        Assert.Null(status.LastError);
    }

    [Fact]
    public async Task Rs485_line_with_a_missing_unit_keeps_polling_the_live_units()
    {
        await using var pty = await SocatPtyPair.StartAsync();
        var units = PymodbusServer.Units((1, "hr", 0, [11]), (3, "hr", 0, [33]));
        await using var server = await PymodbusServer.StartSerialAsync(pty.A, 19200, units);
        await using var client = new ModbusClient(new ModbusRtuTransport(
            new SerialRtuChannel(new SerialLineOptions { PortName = pty.B, BaudRate = 19200, Parity = Parity.None }),
            new ModbusRtuOptions { RequestTimeout = TimeSpan.FromMilliseconds(300) }));
        using var scheduler = new ModbusBusScheduler(pty.B);
        var values = new ConcurrentDictionary<byte, int>();
        foreach (byte unit in new byte[] { 1, 7, 3 })
        {
            scheduler.Add($"unit {unit}", TimeSpan.FromMilliseconds(100), async ct =>
            {
                var regs = await client.ReadHoldingRegistersAsync(unit, 0, 1, ct);
                Assert.Equal(unit * 11, regs[0]);
                values.AddOrUpdate(unit, 1, (_, n) => n + 1);
            });
        }

        await RunUntil(scheduler, () => values.GetValueOrDefault((byte)1) >= 8 && values.GetValueOrDefault((byte)3) >= 8, TimeSpan.FromSeconds(60));
        var missing = scheduler.Status().Single(s => s.Name == "unit 7");
        Assert.True(missing.Failures >= 1);
        Assert.True(missing.Polls < values[1], $"missing unit tried {missing.Polls} times, unit 1 answered {values[1]}");
        Assert.Contains("unit 7", missing.LastError, StringComparison.Ordinal);
    }
}
