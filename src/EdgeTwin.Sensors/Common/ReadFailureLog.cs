using Microsoft.Extensions.Logging;

namespace EdgeTwin.Sensors.Common;

/// <summary>
/// Logs a sensor's read failures once per outage: the first failure (or bad sample) at Warning, the repeats at Debug,
/// and one Information line when it reads again. An unplugged sensor polled every 10 s wrote a Warning per poll
/// (8,640 a day per sensor) and nothing when it came back; the scheduler's down/up lines remain as they are.
/// </summary>
internal sealed class ReadFailureLog(ILogger logger, string deviceId, string driver)
{
    private long _failures;

    /// <summary>Consecutive failed or flagged reads since the last good one. Metrics stay with the caller.</summary>
    public long Failures => Interlocked.Read(ref _failures);

    public void Failed(string reason)
    {
        if (Interlocked.Increment(ref _failures) == 1)
        {
            Log.ReadFailed(logger, deviceId, driver, reason);
        }
        else
        {
            Log.ReadStillFailing(logger, deviceId, driver, Failures, reason);
        }
    }

    public void Succeeded()
    {
        var failures = Interlocked.Exchange(ref _failures, 0);
        if (failures > 0)
        {
            Log.ReadRecovered(logger, deviceId, driver, failures);
        }
    }
}
