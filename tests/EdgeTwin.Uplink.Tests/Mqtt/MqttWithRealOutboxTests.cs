using EdgeTwin.Outbox;
using EdgeTwin.Uplink.Mqtt;
using EdgeTwin.Uplink.Tests.Support;
using static EdgeTwin.Uplink.Tests.Mqtt.MqttTestHelpers;

namespace EdgeTwin.Uplink.Tests.Mqtt;

/// <summary>The uplink on the project's own outboxes (not the test double): the contract as they implement it.</summary>
public sealed class MqttWithRealOutboxTests
{
    private static readonly TimeSpan Long = TimeSpan.FromSeconds(90);

    public static TheoryData<string> Outboxes => ["memory", "litedb"];

    [Theory]
    [MemberData(nameof(Outboxes))]
    public async Task Every_entry_arrives_across_a_broker_restart_and_the_outbox_drains(string kind)
    {
        var dir = Directory.CreateTempSubdirectory("edgetwin-uplink-outbox-").FullName;
        try
        {
            await using var broker = await Mosquitto.StartAsync();
            await using var sub = await TestSubscriber.StartAsync(broker.Port, "edgetwin/#", "centre-real");
            await using IOutbox outbox = kind == "memory"
                ? new InMemoryOutbox()
                : await LiteDbOutbox.OpenAsync(new LiteDbOutboxOptions { Path = Path.Combine(dir, "outbox.db") }, cancellationToken: TestContext.Current.CancellationToken);
            var b = await outbox.AppendAsync([], TestContext.Current.CancellationToken); // 0 in memory; a new LiteDB file starts from the clock
            var uplink = new MqttUplink(Options(broker.Port), outbox);
            using var cts = new CancellationTokenSource();
            var run = uplink.RunAsync(cts.Token);

            const int total = 2000;
            for (var i = 0; i < total; i += 20)
            {
                await outbox.AppendAsync([.. Enumerable.Range(i, 20).Select(j => Record($"dev{j % 4}", j))], TestContext.Current.CancellationToken);
                if (i == total / 2)
                {
                    await broker.StopAsync();
                    await broker.StartAsync();
                }

                await Task.Delay(2, TestContext.Current.CancellationToken);
            }

            await WaitForPositionAsync(() => outbox.GetAcknowledged("mqtt"), b + total, Long);
            await sub.WaitUntilAsync(m => Data(m).Select(e => e.Seq).Distinct().Count() == total, Long, $"all {total} sequences");
            var data = Data(sub.Messages);
            Assert.Equal(Enumerable.Range(1, total).Select(i => b + i), data.Select(e => e.Seq).Distinct().Order());
            AssertOrderedPerDevicePerLane(data);
            if (outbox is InMemoryOutbox memory)
            {
                // The only uplink acknowledged everything: nothing is held any more. (LiteDB removes on its
                // maintenance pass, so its depth is not checked here.)
                Assert.Equal(0, memory.GetStats().Depth);
            }

            await cts.CancelAsync();
            await run;
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
