using System.Text.Json;
using EdgeTwin.Agent.StoreAndForward;
using EdgeTwin.Outbox;
using Microsoft.Extensions.Time.Testing;

namespace EdgeTwin.IntegrationTests.StoreAndForward;

/// <summary>
/// <c>edgetwin status</c> (the outbox part) names the broker each MQTT uplink is on, so a site engineer with a
/// <c>hosts:</c> list sees which one of the pair took over; null while the uplink has no session. Additive member.
/// </summary>
public sealed class UplinkServerStatusTests
{
    private static JsonElement Mqtt(string? server, bool hasMqtt = true)
    {
        var stats = new OutboxStats(10, 1, 10, null, 4096, new Dictionary<string, long> { ["mqtt"] = 7 }, 10, 0, 0);
        var status = new OutboxStatus(() => stats, 1 << 20, TimeSpan.FromDays(7), new FakeTimeProvider(DateTimeOffset.UnixEpoch.AddDays(20_000)),
            servers: () => hasMqtt ? new Dictionary<string, string?> { ["mqtt"] = server } : new Dictionary<string, string?>());
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            status.Write(writer, new List<string>());
            writer.WriteEndObject();
        }

        return JsonDocument.Parse(buffer.WrittenMemory).RootElement.GetProperty("outbox").GetProperty("uplinks").GetProperty("mqtt").Clone();
    }

    [Fact]
    public void The_status_names_the_server_the_mqtt_uplink_is_on()
    {
        Assert.Equal("broker-b:8883", Mqtt("broker-b:8883").GetProperty("server").GetString());
        Assert.Equal(JsonValueKind.Null, Mqtt(null).GetProperty("server").ValueKind);
        Assert.False(Mqtt(null, hasMqtt: false).TryGetProperty("server", out _)); // no running MQTT uplink: no member
        Assert.Equal(7, Mqtt("broker-b:8883").GetProperty("acked").GetInt64());
    }
}
