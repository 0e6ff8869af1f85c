using EdgeTwin.Modbus.Transport;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeTwin.Modbus.Client;

public sealed record ModbusSchedulerOptions
{
    /// <summary>Longest wait between attempts on a device that keeps failing.</summary>
    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>Upper bound on one device's poll (all its reads), on top of each request's own timeout.</summary>
    public TimeSpan PollTimeout { get; init; } = TimeSpan.FromSeconds(10);
}

/// <summary>What the scheduler knows about one device, for status output and tests.</summary>
public sealed record ModbusDeviceStatus(string Name, long Polls, long Failures, int ConsecutiveFailures, string? LastError, DateTimeOffset NextDue);

/// <summary>
/// One scheduler per physical bus (a serial line, or a gateway in front of one): polls its devices one at a time,
/// earliest due first, so they take turns. A device that fails is retried after an exponential backoff
/// (interval × 2^failures, capped), so a dead unit costs one timeout per backoff period and never starves the
/// others; a timeout never resets the queue.
/// </summary>
public sealed class ModbusBusScheduler : IDisposable
{
    private readonly string _bus;
    private readonly ModbusSchedulerOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly object _gate = new();
    private readonly List<Entry> _devices = [];
    private readonly SemaphoreSlim _changed = new(0);
    private long _sequence;

    public ModbusBusScheduler(string busName, ModbusSchedulerOptions? options = null, TimeProvider? time = null, ILogger? logger = null)
    {
        _bus = busName;
        _options = options ?? new ModbusSchedulerOptions();
        _time = time ?? TimeProvider.System;
        _logger = logger ?? NullLogger.Instance;
    }

    public string Bus => _bus;

    /// <summary>Adds a device; <paramref name="poll"/> does all its reads and throws on failure. Dispose the result to remove it.</summary>
    public IDisposable Add(string deviceName, TimeSpan interval, Func<CancellationToken, Task> poll)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(interval, TimeSpan.Zero);
        var entry = new Entry(this, deviceName, interval, poll) { NextDue = _time.GetUtcNow() };
        lock (_gate)
        {
            _devices.Add(entry);
        }

        _changed.Release();
        return entry;
    }

    public IReadOnlyList<ModbusDeviceStatus> Status()
    {
        lock (_gate)
        {
            return _devices.Select(d => new ModbusDeviceStatus(d.Name, d.Polls, d.Failures, d.ConsecutiveFailures, d.LastError, d.NextDue)).ToList();
        }
    }

    /// <summary>Runs until cancelled. Poll failures are counted and backed off, never thrown.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            Entry? next;
            lock (_gate)
            {
                // Earliest due first; on a tie the one polled longest ago, so equal devices alternate.
                next = _devices.OrderBy(d => d.NextDue).ThenBy(d => d.LastRun).FirstOrDefault();
            }

            if (next is null)
            {
                await _changed.WaitAsync(cancellationToken).ConfigureAwait(false);
                continue;
            }

            var wait = next.NextDue - _time.GetUtcNow();
            if (wait > TimeSpan.Zero)
            {
                // Wake early when a device is added, since it may be due sooner.
                using var wake = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                var delay = Task.Delay(wait, _time, wake.Token);
                var changed = _changed.WaitAsync(wake.Token);
                await Task.WhenAny(delay, changed).ConfigureAwait(false);
                await wake.CancelAsync().ConfigureAwait(false);
                await Task.WhenAll(delay, changed).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                continue;
            }

            await PollAsync(next, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task PollAsync(Entry device, CancellationToken cancellationToken)
    {
        var due = device.NextDue;
        device.LastRun = Interlocked.Increment(ref _sequence);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_options.PollTimeout);
        try
        {
            await device.Poll(timeout.Token).ConfigureAwait(false);
            device.Polls++;
            if (device.ConsecutiveFailures > 0)
            {
                Log.DeviceRecovered(_logger, _bus, device.Name);
            }

            device.ConsecutiveFailures = 0;
            device.LastError = null;
            var now = _time.GetUtcNow();
            // Keep the cadence; if we fell behind, the device is due now and waits its turn by due time.
            device.NextDue = due + device.Interval > now ? due + device.Interval : now;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception ex)
        {
            device.Polls++;
            device.Failures++;
            device.ConsecutiveFailures++;
            device.LastError = ex is OperationCanceledException ? $"poll took longer than {_options.PollTimeout}" : ex.Message;
            var backoff = Backoff(device.Interval, device.ConsecutiveFailures);
            device.NextDue = _time.GetUtcNow() + backoff;
            Log.DeviceBackoff(_logger, _bus, device.Name, device.ConsecutiveFailures, Log.Human(backoff), device.LastError);
        }
    }

    public void Dispose() => _changed.Dispose();

    private TimeSpan Backoff(TimeSpan interval, int failures)
    {
        double factor = Math.Pow(2, Math.Min(failures, 20));
        var backoff = TimeSpan.FromTicks((long)Math.Min(interval.Ticks * factor, _options.MaxBackoff.Ticks));
        return backoff < interval ? interval : backoff;
    }

    private sealed class Entry(ModbusBusScheduler owner, string name, TimeSpan interval, Func<CancellationToken, Task> poll) : IDisposable
    {
        public string Name { get; } = name;

        public TimeSpan Interval { get; } = interval;

        public Func<CancellationToken, Task> Poll { get; } = poll;

        public DateTimeOffset NextDue { get; set; }

        public long LastRun { get; set; }

        public long Polls { get; set; }

        public long Failures { get; set; }

        public int ConsecutiveFailures { get; set; }

        public string? LastError { get; set; }

        public void Dispose()
        {
            lock (owner._gate)
            {
                owner._devices.Remove(this);
            }
        }
    }
}
