using System.Collections.Concurrent;
using EdgeTwin.Outbox;
using EdgeTwin.Uplink.Delivery;
using EdgeTwin.Uplink.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;
using static EdgeTwin.Uplink.Tests.Mqtt.MqttTestHelpers;

namespace EdgeTwin.Uplink.Tests.Delivery;

public sealed class ReplayClosingStatusTests
{
    /// <summary>
    /// A peer whose first status takes a while to be acknowledged (a Kafka status record waits for its delivery report),
    /// during which the backlog's acknowledgements all come in.
    /// </summary>
    private sealed class SlowStatusTransport : IUplinkTransport
    {
        public ConcurrentQueue<UplinkProgress> Statuses { get; } = new();

        public TaskCompletionSource FirstStatusStarted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public string Name => "slow-status";

        public string Peer => "scripted://slow-status";

        public Task<IUplinkSession> ConnectAsync(CancellationToken cancellationToken) => Task.FromResult<IUplinkSession>(new Session(this));

        private sealed class Session(SlowStatusTransport t) : IUplinkSession, IUplinkProgressSession
        {
            public int? PeerWindow => null;

            public bool ReportsProgress => true;

            // The backlog is answered only once the first status is under way: that status reports nothing acknowledged.
            public async Task<DeliveryOutcome> SendAsync(OutboxEntry entry, bool historical, CancellationToken cancellationToken)
            {
                await t.FirstStatusStarted.Task.WaitAsync(cancellationToken);
                return DeliveryOutcome.Delivered;
            }

            public async Task PublishProgressAsync(UplinkProgress progress, CancellationToken cancellationToken)
            {
                t.Statuses.Enqueue(progress);
                if (t.FirstStatusStarted.TrySetResult())
                {
                    await Task.Delay(500, cancellationToken); // the backlog is acknowledged meanwhile
                }
            }

            public ValueTask DisposeAsync() => ValueTask.CompletedTask;
        }
    }

    [Fact]
    public async Task Regression_the_closing_status_of_a_replay_was_skipped_when_the_backlog_was_acknowledged_during_the_first_status()
    {
        // The first status said "backlog 20"; by the time it was acknowledged the backlog was too, and the pump, looking at
        // the position then, published no closing status: the consumer could not close its books on the outage until the
        // next periodic status (60 s), never with ProgressInterval 0. Seen as a flaky Kafka status test under load.
        await using var outbox = new TestOutbox();
        await outbox.AppendAsync([.. Enumerable.Range(0, 20).Select(i => Record("d", i))], CancellationToken.None);
        var transport = new SlowStatusTransport();
        var options = new DeliveryOptions { BacklogRatePerSecond = 0, AckFlushInterval = TimeSpan.Zero, ProgressInterval = TimeSpan.Zero };
        var pump = new UplinkPump(outbox, transport, options, TimeProvider.System, NullLogger.Instance, new UplinkMetrics(), new EdgeTwin.Uplink.Payloads.UplinkIdentity("site1", "gw1"));
        using var cts = new CancellationTokenSource();
        var run = pump.RunAsync(cts.Token);
        try
        {
            await WaitForPositionAsync(() => outbox.GetAcknowledged("slow-status"), 20, TimeSpan.FromSeconds(30));
            var deadline = DateTime.UtcNow.AddSeconds(5);
            while (!transport.Statuses.Any(s => s.Backlog == 0 && s.AckedThroughSeq >= 20) && DateTime.UtcNow < deadline)
            {
                await Task.Delay(20, TestContext.Current.CancellationToken);
            }

            var statuses = transport.Statuses.ToList();
            Assert.Equal(new UplinkProgress(0, 20, 20), statuses[0]);
            Assert.Contains(new UplinkProgress(20, 20, 0), statuses);
        }
        finally
        {
            await cts.CancelAsync();
            await run;
        }
    }
}
