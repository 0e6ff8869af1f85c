using EdgeTwin.Outbox;
using EdgeTwin.Uplink.Delivery;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeTwin.Uplink.Kafka;

/// <summary>
/// Forwards the outbox to Kafka (acks=all, idempotent, compressed, device as key) with the JSON envelope as value,
/// advancing the outbox only over delivery reports that say Persisted, and the gateway's status (progress, offline at a
/// clean stop) on the <c>status</c> topic. Settings are validated in the constructor.
/// </summary>
public sealed class KafkaUplink
{
    // librdkafka that does not load (a shared library the system lacks) does not appear by retrying a connect: the
    // uplink says once why, checks again this often (an installed package is taken up without a restart) and repeats
    // the error every NativeReportEvery; the outbox keeps the entries meanwhile and the other stages run on.
    private static readonly TimeSpan NativeRetry = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan NativeReportEvery = TimeSpan.FromMinutes(5);
    private readonly UplinkPump _pump;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly string _name;

    public KafkaUplink(KafkaUplinkOptions options, IOutbox outbox, ILogger? logger = null, UplinkMetrics? metrics = null, TimeProvider? time = null)
    {
        var errors = options.Validate();
        if (errors.Count > 0)
        {
            throw new UplinkOptionsException(errors);
        }

        logger ??= NullLogger.Instance;
        time ??= TimeProvider.System;
        _logger = logger;
        _time = time;
        _name = options.Name;
        _pump = new UplinkPump(outbox, new KafkaTransport(options, logger, time), options.Delivery, time, logger, metrics ?? new UplinkMetrics(), options.Identity);
    }

    public long Position => _pump.Position;

    public int FailedSessions => _pump.FailedSessions;

    /// <summary>Entries the peer refused for good since start, and the last refusal (each named by a data_gap event).</summary>
    public UplinkRejections Rejections => _pump.Rejections;

    /// <summary>Bytes sent since start per kind and lane, and the byte budget (<c>max_rate</c>).</summary>
    public UplinkTrafficSnapshot Traffic => _pump.Traffic;

    public async Task RunAsync(CancellationToken stoppingToken)
    {
        if (!await WaitForNativeLibraryAsync(stoppingToken).ConfigureAwait(false))
        {
            return;
        }

        await _pump.RunAsync(stoppingToken).ConfigureAwait(false);
    }

    /// <summary>True once librdkafka is loaded; false when stopped before it could be.</summary>
    private async Task<bool> WaitForNativeLibraryAsync(CancellationToken stoppingToken)
    {
        string? reported = null;
        var reportedAt = 0L;
        var attempts = 0;
        while (true)
        {
            attempts++;
            var error = KafkaNativeLibrary.TryLoad(out var loaded);
            if (error is null)
            {
                Log.KafkaLibraryLoaded(_logger, _name, loaded!, attempts);
                return true;
            }

            if (!string.Equals(error, reported, StringComparison.Ordinal) || _time.GetElapsedTime(reportedAt) >= NativeReportEvery)
            {
                Log.KafkaLibraryMissing(_logger, _name, error, attempts, NativeRetry.TotalSeconds);
                reported = error;
                reportedAt = _time.GetTimestamp();
            }

            try
            {
                await Task.Delay(NativeRetry, _time, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return false;
            }
        }
    }

    /// <summary>
    /// Ends a reconnect backoff under way at once (no effect while connected): call it when the peer was seen reachable
    /// again, e.g. by the agent's connectivity probe of the same host and port.
    /// </summary>
    public void WakeReconnect() => _pump.WakeReconnect();
}
