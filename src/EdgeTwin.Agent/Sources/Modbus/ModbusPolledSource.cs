using System.Globalization;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Profiles;
using EdgeTwin.Core.Samples;
using EdgeTwin.Core.Sources;
using EdgeTwin.Modbus.Planning;
using EdgeTwin.Modbus.Protocol;
using EdgeTwin.Modbus.Transport;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Agent.Sources.Modbus;

/// <summary>
/// Reads one Modbus device per poll through its request plan. A point the device refuses (exception response)
/// becomes a DeviceError sample and the others are still reported; values outside the metric's min/max are
/// flagged OutOfRange; counters with <c>rate: true</c> report a per-second rate. When the device does not answer
/// at all the poll throws <see cref="DeviceException"/> and the scheduler marks it down and backs off.
/// </summary>
internal sealed partial class ModbusPolledSource : IPolledSource, ISampleReasons
{
    private readonly DeviceConfig _device;
    private readonly IReadOnlyList<ProfileMetric> _metrics;
    private readonly ModbusPollPlan _plan;
    private readonly BusLease _bus;
    private readonly ILogger _logger;
    private readonly SeriesId[] _series;
    private readonly double[] _lastCount;
    private readonly long[] _lastCountAt;
    private readonly Sample[] _samples;
    private readonly int _addressing;
    private bool _answered;

    // The last poll's readings, for `edgetwin poll` (ReasonOf, RawOf); the agent keeps only the reference.
    private ModbusPointReading[] _last = [];

    // Why each point failed in the last poll (0 = read; see FailureCode). The warning is repeated when this set changes,
    // not only its size (at most every FailureLogEvery while it keeps changing): comparing codes in place costs nothing
    // per poll, the text is built only when a line is written.
    private readonly int[] _failures;
    private readonly ChangeLogThrottle _failureLog;
    // A point was unreadable since the journal last said every point is readable: only then is a return to all readable news.
    private bool _failedSinceReadable;

    /// <summary>How often a device whose unreadable points keep changing is logged again.</summary>
    internal static readonly TimeSpan FailureLogEvery = TimeSpan.FromMinutes(5);

    public ModbusPolledSource(DeviceConfig device, IReadOnlyList<ProfileMetric> metrics, ModbusPollPlan plan, BusLease bus, ILoggerFactory loggerFactory, int addressing = 0, TimeProvider? time = null)
    {
        _addressing = addressing;
        _failureLog = new ChangeLogThrottle(time ?? TimeProvider.System, FailureLogEvery);
        _failures = new int[metrics.Count];
        _device = device;
        _metrics = metrics;
        _plan = plan;
        _bus = bus;
        _logger = loggerFactory.CreateLogger<ModbusPolledSource>();
        _series = new SeriesId[metrics.Count];
        _lastCount = new double[metrics.Count];
        _lastCountAt = new long[metrics.Count];
        Array.Fill(_lastCountAt, -1);
        _samples = new Sample[metrics.Count];
    }

    public string DeviceId => _device.Id;

    private byte Unit => _device.UnitId ?? 1;

    public void RegisterSeries(SeriesRegistry registry)
    {
        for (int i = 0; i < _metrics.Count; i++)
        {
            var m = _metrics[i];
            string unit = m.Rate ? m.Unit + "/s" : m.Unit;
            _series[i] = registry.GetOrAdd(new SeriesDescriptor(_device.Id, m.Name, unit, m.Kind, m.Role));
        }
    }

    public ValueTask PollAsync(ISampleSink sink, long acquiredAtUnixMs, CancellationToken cancellationToken) =>
        PollAsync(sink, acquiredAtUnixMs, null, cancellationToken);

    /// <summary>
    /// As the scheduler polls: the transport tells <paramref name="deadline"/> when a read waits for the shared line
    /// (RTU) and when it has it, so this device's timeout is not spent queued behind another unit.
    /// </summary>
    public async ValueTask PollAsync(ISampleSink sink, long acquiredAtUnixMs, PollDeadline? deadline, CancellationToken cancellationToken)
    {
        ModbusPointReading[] readings;
        try
        {
            using (deadline is null ? default : BusWait.Observe(new DeadlineObserver(deadline)))
            {
                readings = await _plan.ReadAsync(_bus.Client, Unit, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (ModbusTimeoutException ex)
        {
            // The transport's text already names endpoint, unit, function and address.
            throw new DeviceException(_device.Id, ex.Message + Hint(ex.RequestSent), ex);
        }
        catch (ModbusCommunicationException ex)
        {
            throw new DeviceException(_device.Id, $"unit {Unit} on {_bus.Bus}: {ex.Message}", ex);
        }
        catch (ModbusRequestCanceledException ex) when (cancellationToken.IsCancellationRequested)
        {
            // The poll's deadline passed first (it is the request timeout too, so it often wins): keep what the
            // transport knew (unit, function, address, how far it got, who held the line) rather than a bare "no answer".
            throw new DeviceException(_device.Id, ex.Message + Hint(ex.RequestSent), ex);
        }

        // A gateway's 0x0A/0x0B is not the unit's answer: it keeps the "never answered" hint for later timeouts.
        _answered |= _plan.LastAnsweredCount > 0;
        _last = readings;

        int count = 0, failed = 0;
        bool changed = false;
        Exception? firstError = null;
        for (int i = 0; i < readings.Length; i++)
        {
            var r = readings[i];
            var metric = _metrics[i];
            int code = FailureCode(r.Error);
            changed |= code != _failures[i];
            _failures[i] = code;
            if (!r.Ok)
            {
                failed++;
                firstError ??= r.Error;
                _samples[count++] = new Sample(_series[i], acquiredAtUnixMs, double.NaN, SampleQuality.DeviceError);
                continue;
            }

            double value = metric.Convert(r.Value);
            if (metric.Rate)
            {
                // A rate needs two readings; a counter that went backwards was reset or wrapped: start again.
                long previousAt = _lastCountAt[i];
                double previous = _lastCount[i];
                _lastCount[i] = value;
                _lastCountAt[i] = acquiredAtUnixMs;
                if (previousAt < 0 || acquiredAtUnixMs <= previousAt || value < previous)
                {
                    continue;
                }

                value = (value - previous) * 1000.0 / (acquiredAtUnixMs - previousAt);
            }

            var quality = metric.IsOutOfRange(value) ? SampleQuality.OutOfRange : SampleQuality.Good;
            _samples[count++] = new Sample(_series[i], acquiredAtUnixMs, value, quality);
        }

        if (failed > 0 && failed == readings.Length)
        {
            throw new DeviceException(_device.Id, ModbusPollPlan.IsGatewayUnreachable(firstError)
                ? $"unit {Unit} on {_bus.Bus}: {firstError!.Message}; {GatewayHint((ModbusDeviceException)firstError)}"
                : $"unit {Unit} on {_bus.Bus}: every register read failed: {firstError?.Message}", firstError);
        }

        // Every change was a line: a device that refused a block every other poll (busy, or a firmware that garbles one
        // answer in two) logged a Warning every other poll, 900 an hour at a 2 s interval, and nothing when it read again.
        _failedSinceReadable |= failed > 0;
        if (_failureLog.ShouldLog(changed && _failedSinceReadable, out var flapping))
        {
            if (failed > 0)
            {
                LogPointsFailed(_device.Id, failed, readings.Length, DescribeFailures(readings), flapping);
            }
            else
            {
                LogPointsReadable(_device.Id, flapping);
                _failedSinceReadable = false;
            }
        }
        if (count > 0)
        {
            await sink.WriteAsync(_samples.AsMemory(0, count), cancellationToken).ConfigureAwait(false);
        }
    }

    public ValueTask DisposeAsync() => _bus.DisposeAsync();

    /// <summary>Forwards the transport's bus waits to the scheduler's deadline.</summary>
    private sealed class DeadlineObserver(PollDeadline deadline) : IBusWaitObserver
    {
        public void WaitingForBus(TimeSpan maxWait) => deadline.WaitingForLine(maxWait);

        public void OnBus() => deadline.OnLine();
    }

    /// <summary>
    /// What to check when a unit has never answered a request that went out: the connection works, so the unit id or
    /// the framing is wrong far more often than the device. Nothing once it has answered (then it is a real outage).
    /// </summary>
    private string Hint(bool requestSent)
    {
        // The unit answered part of this poll: it is there, only slower than the poll's budget (the device's timeout
        // covers every request of one poll). The unit_id hint would send the engineer after the wrong cause.
        int answered = _plan.LastAnsweredCount;
        if (answered > 0)
        {
            _answered = true;
            return $" (unit {Unit} answered {answered} of the poll's {_plan.Blocks.Count} requests before its timeout of {Durations.Format(_device.Timeout)} ran out: "
                + "the device timeout is the budget of one whole poll; raise timeout, and interval with it)";
        }

        if (_answered || !requestSent)
        {
            return "";
        }

        return _device.Address.Scheme switch
        {
            AddressScheme.Tcp => $" (TCP connected but unit {Unit} never answered: check unit_id, or rtutcp: for a serial gateway)",
            AddressScheme.RtuTcp => $" (the gateway is connected but unit {Unit} never answered: check unit_id and the gateway's serial settings)",
            // The settings in use, not "the serial settings": a meter at 9600 8N1 on a line left at the default 8E1 is
            // silent (it drops every frame at its parity check), and the log did not say what the line ran at.
            _ => $" (unit {Unit} never answered on the line: check unit_id, that the line's {_device.Serial ?? new SerialSettings()} on {_device.Address.Path} matches the device's baud rate, parity and stop bits, and the wiring)",
        };
    }

    /// <summary>
    /// The gateway answered for a unit it could not reach: say that the gateway is up and where to look, so the engineer
    /// neither restarts the gateway nor raises a timeout.
    /// </summary>
    private string GatewayHint(ModbusDeviceException error) => error.ExceptionCode == ModbusExceptionCode.GatewayPathUnavailable
        ? $"the gateway is up but has no path to unit {Unit}: check the gateway's routing of unit ids to its serial ports, and unit_id"
        : $"the gateway is up but unit {Unit} on its serial side did not answer it: check the unit's power, wiring, unit_id and the gateway's serial settings; the poll's other reads were not sent";

    /// <summary>0 for a value read, the exception code for a Modbus exception response, -1 for anything else.</summary>
    private static int FailureCode(Exception? error) => error switch
    {
        null => 0,
        ModbusDeviceException d => (int)d.ExceptionCode,
        _ => -1,
    };

    /// <summary>
    /// "thd_voltage_l1 (holding 30, exception 2 ILLEGAL DATA ADDRESS), …": which metrics, where in the profile's map and
    /// why, so the engineer can fix the profile from the log alone. At most <see cref="MaxListed"/> points.
    /// </summary>
    private string DescribeFailures(ModbusPointReading[] readings)
    {
        var text = new System.Text.StringBuilder();
        int listed = 0, more = 0;
        for (int i = 0; i < readings.Length; i++)
        {
            if (readings[i].Error is not { } error)
            {
                continue;
            }

            if (listed == MaxListed)
            {
                more++;
                continue;
            }

            if (listed++ > 0)
            {
                text.Append(", ");
            }

            text.Append(_metrics[i].Name).Append(" (").Append(Failure(i, error)).Append(')');
        }

        if (more > 0)
        {
            text.Append(", and ").Append(more.ToString(CultureInfo.InvariantCulture)).Append(" more");
        }

        return text.ToString();
    }

    /// <summary>"holding 30, exception 2 ILLEGAL DATA ADDRESS": where in the profile's map and why.</summary>
    private string Failure(int i, Exception error)
    {
        var text = new System.Text.StringBuilder();
        if (_metrics[i].Register is not null)
        {
            text.Append(Where(i)).Append(", ");
        }

        text.Append(error is ModbusDeviceException d
            ? $"exception {((byte)d.ExceptionCode).ToString(CultureInfo.InvariantCulture)} {ModbusExceptionNames.Name(d.ExceptionCode)}"
            : Shorten(error.Message));
        if (error is ModbusDeviceException { ExceptionCode: ModbusExceptionCode.IllegalDataAddress })
        {
            text.Append(ReferenceHint(i));
        }

        return text.ToString();
    }

    /// <summary>
    /// Vendor manuals often list 5-digit references (30001 = input register 1, 40001 = holding register 1) where the
    /// profile wants the address. Some devices (SMA) really use addresses that high, so this is said only when the
    /// device refused the address, never at check.
    /// </summary>
    private string ReferenceHint(int i)
    {
        var register = _metrics[i].Register!;
        int written = register.Address + _addressing;
        int prefix = register.Table switch
        {
            EdgeTwin.Core.Profiles.ModbusTable.Input => 30000,
            EdgeTwin.Core.Profiles.ModbusTable.Holding => 40000,
            EdgeTwin.Core.Profiles.ModbusTable.Discrete => 10000,
            _ => -1,
        };
        if (prefix < 0 || written <= prefix || written > prefix + 9999)
        {
            return "";
        }

        int number = written - prefix;
        return string.Create(CultureInfo.InvariantCulture,
            $"; {written} looks like a 5-digit reference ({TableName(register.Table)} register {number}): with addressing: {_addressing} write address: {number - 1 + _addressing}");
    }

    /// <summary>"input 30" (the address as in the profile), "holding 31 = wire address 30" for a 1-based map.</summary>
    private string Where(int i)
    {
        var register = _metrics[i].Register!;
        var where = TableName(register.Table) + " " + (register.Address + _addressing).ToString(CultureInfo.InvariantCulture);
        return _addressing == 0 ? where : where + " = wire address " + register.Address.ToString(CultureInfo.InvariantCulture);
    }

    public string? ReasonOf(SeriesId series)
    {
        int i = Array.IndexOf(_series, series);
        return i >= 0 && i < _last.Length && _last[i].Error is { } error ? Failure(i, error) : null;
    }

    public string? RawOf(SeriesId series)
    {
        int i = Array.IndexOf(_series, series);
        if (i < 0 || i >= _last.Length || _last[i].Registers.IsEmpty || _metrics[i].Register is not { } register)
        {
            return null;
        }

        var text = new System.Text.StringBuilder(Where(i)).Append(':');
        foreach (var word in _last[i].Registers.Span)
        {
            if (register.Table.IsBitTable())
            {
                text.Append(' ').Append(word.ToString(CultureInfo.InvariantCulture));
            }
            else
            {
                text.Append(" 0x").Append(word.ToString("X4", CultureInfo.InvariantCulture));
            }
        }

        return text.Append(OrderHint(i)).ToString();
    }

    /// <summary>
    /// A float decoded to 2.3e-41 or 4.6e+18 (or NaN) is nearly always a wrong word order: "; order CDAB reads 12.25"
    /// for each other order that gives a number of everyday size inside the metric's min/max. So is a float of everyday
    /// size outside those limits (0x4365 0xCCCD as CDAB is -107617064 V, out of range; as ABCD 229.8): before, that one got
    /// no hint, as its magnitude looked plausible. Integers are left alone: any bit pattern is plausible.
    /// </summary>
    private string OrderHint(int i)
    {
        var point = _plan.Points[i];
        var metric = _metrics[i];
        double value = _last[i].Value;
        if (point.Type is not (EdgeTwin.Modbus.Data.ModbusDataType.Float32 or EdgeTwin.Modbus.Data.ModbusDataType.Float64) || !_last[i].Ok
            || (Plausible(value) && !metric.IsOutOfRange(metric.Convert(value))))
        {
            return "";
        }

        var hint = new System.Text.StringBuilder();
        foreach (var order in Enum.GetValues<EdgeTwin.Modbus.Data.ModbusWordOrder>())
        {
            double other = order == point.Order ? double.NaN : (point with { Order = order }).Decode(_last[i].Registers.Span);
            if (Plausible(other) && !metric.IsOutOfRange(metric.Convert(other)))
            {
                hint.Append("; order ").Append(order.ToString()).Append(" reads ").Append(metric.Convert(other).ToString("G7", CultureInfo.InvariantCulture));
            }
        }

        return hint.ToString();

        static bool Plausible(double v) => v == 0 || (Math.Abs(v) >= 1e-6 && Math.Abs(v) < 1e12);
    }

    private const int MaxListed = 8;

    private static string Shorten(string message) => message.Length <= 120 ? message : string.Concat(message.AsSpan(0, 119), "…");

    private static string TableName(EdgeTwin.Core.Profiles.ModbusTable table) => table switch
    {
        EdgeTwin.Core.Profiles.ModbusTable.Coil => "coil",
        EdgeTwin.Core.Profiles.ModbusTable.Discrete => "discrete",
        EdgeTwin.Core.Profiles.ModbusTable.Input => "input",
        _ => "holding",
    };

    [LoggerMessage(EventId = 100, Level = LogLevel.Warning, Message = "Modbus device {Device}: {Failed} of {Total} points unreadable: {Points}{Flapping}")]
    private partial void LogPointsFailed(string device, int failed, int total, string points, string flapping);

    [LoggerMessage(EventId = 101, Level = LogLevel.Information, Message = "Modbus device {Device}: every point is readable again{Flapping}")]
    private partial void LogPointsReadable(string device, string flapping);
}
