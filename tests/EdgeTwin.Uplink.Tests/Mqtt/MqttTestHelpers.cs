using System.Text;
using System.Text.Json;
using EdgeTwin.Outbox;
using EdgeTwin.Uplink.Delivery;
using EdgeTwin.Uplink.Mqtt;
using EdgeTwin.Uplink.Tests.Support;

namespace EdgeTwin.Uplink.Tests.Mqtt;

internal sealed record Envelope(long Seq, string Device, string Kind, bool Historical, string Topic, JsonElement Body);

internal static class MqttTestHelpers
{
    public static MqttUplinkOptions Options(int port, MqttProtocol protocol = MqttProtocol.V500, DeliveryOptions? delivery = null) => new()
    {
        Host = "127.0.0.1",
        Port = port,
        Protocol = protocol,
        Site = "site1",
        Gateway = "gw1",
        ClientId = $"edgetwin-test-{Guid.NewGuid():N}",
        KeepAlive = TimeSpan.FromSeconds(5),
        Delivery = delivery ?? new DeliveryOptions
        {
            ReconnectInitialDelay = TimeSpan.FromMilliseconds(100),
            ReconnectMaxDelay = TimeSpan.FromSeconds(1),
            AckTimeout = TimeSpan.FromSeconds(10),
            BacklogRatePerSecond = 0,
        },
    };

    public static OutboxRecord Record(string device, int i, OutboxKind kind = OutboxKind.Summary) =>
        new(kind, device, 1_795_000_000_000 + i, Encoding.UTF8.GetBytes($"{{\"i\":{i},\"device\":\"{device}\"}}"));

    public static Envelope? Parse(Received m)
    {
        if (m.Topic.EndsWith("/status", StringComparison.Ordinal))
        {
            return null;
        }

        using var doc = JsonDocument.Parse(m.Payload);
        var r = doc.RootElement;
        return new Envelope(r.GetProperty("seq").GetInt64(), r.GetProperty("device").GetString()!, r.GetProperty("kind").GetString()!,
            r.GetProperty("historical").GetBoolean(), m.Topic, r.GetProperty("body").Clone());
    }

    public static IReadOnlyList<Envelope> Data(IReadOnlyList<Received> messages) => [.. messages.Select(Parse).OfType<Envelope>()];

    public static async Task WaitForPositionAsync(Func<long> position, long expected, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (position() < expected)
        {
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"Position {position()} did not reach {expected} within {timeout}");
            }

            await Task.Delay(50);
        }
    }

    /// <summary>
    /// What the centre may rely on: after dropping sequences already seen, each lane (live, historical) carries every
    /// device's messages in increasing sequence order.
    /// </summary>
    public static void AssertOrderedPerDevicePerLane(IReadOnlyList<Envelope> data)
    {
        var seen = new HashSet<long>();
        var last = new Dictionary<(string Device, bool Historical), long>();
        foreach (var e in data)
        {
            if (!seen.Add(e.Seq))
            {
                continue; // a QoS 1 duplicate, recognised by its sequence
            }

            var key = (e.Device, e.Historical);
            if (last.TryGetValue(key, out var prev))
            {
                Assert.True(e.Seq > prev, $"device {e.Device} ({(e.Historical ? "historical" : "live")}): seq {e.Seq} arrived after {prev}");
            }

            last[key] = e.Seq;
        }
    }
}
