using EdgeTwin.Simulator.Devices;

namespace EdgeTwin.Simulator.Line;

/// <summary>
/// What a station's PLC (profile <c>generic-packml-plc</c>) reports for a <c>machine.*</c> role: PackML state, stop
/// reason, free-running good and reject counters, the last cycle time, the process values and the level of its infeed buffer.
/// </summary>
public static class SimLineRoles
{
    public static bool TryRead(SimLine line, string stationId, string quantity, out SimValue value)
    {
        ArgumentNullException.ThrowIfNull(line);
        var i = line.StationIndex(stationId);
        value = quantity switch
        {
            "packml_state" or "state" => new SimValue(line.PackMlState(i), "1"),
            "stop_reason" => new SimValue(line.StopReason(i), "1"),
            "good_count" or "good_parts" => new SimValue(line.Good(i), "1"),
            "reject_count" or "reject_parts" => new SimValue(line.Reject(i), "1"),
            "cycle_time" => new SimValue(line.LastCycleSeconds(i), "s"),
            "process_temperature" => new SimValue(line.ProcessTemperature(i), "Cel"),
            "process_pressure" => new SimValue(line.ProcessPressure(i), "bar"),
            "spindle_load" => new SimValue(line.SpindleLoad(i), "%"),
            "infeed_buffer_level" => new SimValue(i == 0 ? 0 : line.BufferLevel(i - 1), "1"),
            _ => default,
        };
        return value.Unit is not null;
    }
}
