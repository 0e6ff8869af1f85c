using System.Collections.Concurrent;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace EdgeTwin.Uplink.Tests.Support;

internal sealed record Received(string Topic, byte[] Payload, bool Retain);

/// <summary>
/// The centre's side in tests: an MQTTnet subscriber with a persistent session (QoS 1), reconnecting on its own
/// when the broker goes away, so queued messages reach it after a broker restart.
/// </summary>
internal sealed class TestSubscriber : IAsyncDisposable
{
    private readonly IMqttClient _client;
    private readonly MqttClientOptions _options;
    private readonly string _filter;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentQueue<Received> _received = new();
    private Task? _reconnectLoop;

    private TestSubscriber(int port, string filter, string clientId)
    {
        _filter = filter;
        _client = new MqttClientFactory().CreateMqttClient();
        _options = new MqttClientOptionsBuilder()
            .WithTcpServer("127.0.0.1", port)
            .WithProtocolVersion(MqttProtocolVersion.V500)
            .WithClientId(clientId)
            .WithCleanStart(false)
            .WithSessionExpiryInterval(3600)
            .WithTimeout(TimeSpan.FromSeconds(10))
            .Build();
        _client.ApplicationMessageReceivedAsync += e =>
        {
            var m = e.ApplicationMessage;
            _received.Enqueue(new Received(m.Topic, System.Buffers.BuffersExtensions.ToArray(m.Payload), m.Retain));
            return Task.CompletedTask;
        };
    }

    public IReadOnlyList<Received> Messages => [.. _received];

    public int Count => _received.Count;

    public static async Task<TestSubscriber> StartAsync(int port, string filter, string? clientId = null)
    {
        var s = new TestSubscriber(port, filter, clientId ?? $"test-sub-{Guid.NewGuid():N}");
        await s.ConnectAsync(CancellationToken.None);
        s._reconnectLoop = s.ReconnectLoopAsync();
        return s;
    }

    private async Task ConnectAsync(CancellationToken ct)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(TimeSpan.FromSeconds(10));
        var result = await _client.ConnectAsync(_options, cts.Token);
        if (!result.IsSessionPresent)
        {
            await _client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter(_filter, MqttQualityOfServiceLevel.AtLeastOnce).Build(), cts.Token);
        }
    }

    private async Task ReconnectLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(100, _stop.Token);
                if (!_client.IsConnected)
                {
                    await ConnectAsync(_stop.Token);
                }
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception)
            {
                // Broker still down: try again shortly.
            }
        }
    }

    /// <summary>Publishes with QoS 1 (e.g. a host's command or STATE to the uplink), waiting up to 10 s for the PUBACK.</summary>
    public async Task PublishAsync(string topic, byte[] payload, bool retain = false)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await _client.PublishAsync(new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload(payload).WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).WithRetainFlag(retain).Build(), cts.Token);
    }

    /// <summary>Polls until the predicate holds over what arrived, or fails after the timeout.</summary>
    public async Task WaitUntilAsync(Func<IReadOnlyList<Received>, bool> predicate, TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!predicate(Messages))
        {
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"Timed out after {timeout} waiting for {what}; {Count} messages arrived");
            }

            await Task.Delay(50);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        if (_reconnectLoop is not null)
        {
            await _reconnectLoop;
        }

        if (_client.IsConnected)
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            try
            {
                await _client.DisconnectAsync(new MqttClientDisconnectOptionsBuilder().Build(), cts.Token);
            }
            catch (Exception)
            {
            }
        }

        _client.Dispose();
        _stop.Dispose();
    }
}
