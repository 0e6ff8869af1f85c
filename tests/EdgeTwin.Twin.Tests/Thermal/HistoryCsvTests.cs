using EdgeTwin.Twin.Thermal;

namespace EdgeTwin.Twin.Tests.Thermal;

public sealed class HistoryCsvTests
{
    private static readonly IReadOnlyList<ThermalZone> Zones = [ThermalAnalyticTests.OneRackZone()];

    [Fact]
    public void Reads_frames_holds_missing_values_and_battery_state()
    {
        const string csv = """
            timestamp,series,value
            2026-01-05T12:00:00Z,rack/R01/inlet_temperature,22.5
            2026-01-05T12:00:00Z,rack/R01/power,8.2
            2026-01-05T12:00:00Z,cooling/crac1/fan_speed,60
            2026-01-05T12:00:00Z,cooling/crac1/supply_temperature,18
            2026-01-05T12:00:00Z,cooling/crac1/return_temperature,29
            2026-01-05T12:00:10Z,rack/R01/inlet_temperature,
            2026-01-05T12:00:10Z,rack/R01/power,8.4
            2026-01-05T12:00:10Z,cooling/crac1/running,0
            2026-01-05T12:00:10Z,ups/ups1/battery_charge,80
            2026-01-05T12:00:10Z,ups/ups1/runtime,25
            2026-01-05T12:00:10Z,pdu/pdu-a/phase_current/1,7.5
            2026-01-05T12:00:10Z,pdu/pdu-a/phase_current/2,6.5
            """;
        var h = HistoryCsv.Read(new StringReader(csv), Zones);
        var frames = h.Frames[0];
        Assert.Equal(2, frames.Count);
        Assert.Equal(0, frames[0].TimeSeconds);
        Assert.Equal(10, frames[1].TimeSeconds);
        Assert.Equal(0.6, frames[0].UnitFanSpeed[0], 9); // 60 % read as a fraction
        Assert.Equal(22.5, frames[1].RackInletC[0]); // empty value: held from the previous reading
        Assert.Equal(8.4, frames[1].RackPowerKw[0]);
        Assert.True(frames[0].UnitRunning[0]);
        Assert.False(frames[1].UnitRunning[0]);
        Assert.Equal(1, h.EmptyValues);
        Assert.Equal(80, h.Power.UpsBatteries["ups1"].ChargePercent);
        Assert.Equal(25, h.Power.UpsBatteries["ups1"].RuntimeMinutes);
        Assert.Equal([7.5, 6.5], h.Power.PduPhaseCurrentA["pdu-a"]);
    }

    [Fact]
    public void Malformed_rows_are_reported_with_line_and_column()
    {
        const string csv = """
            timestamp,series,value
            1767614400,rack/R01/inlet_temperature,22.5
            yesterday,rack/R01/power,8
            1767614410,rack/R99/power,8
            1767614410,rack/R01/humidity,40
            1767614410,rack/R01/power,eight
            1767614410,rack/R01/power
            1767614410,cooling,1
            """;
        var e = Assert.Throws<HistoryCsvException>(() => HistoryCsv.Read(new StringReader(csv), Zones, "h.csv"));
        Assert.Equal(6, e.Problems.Count);
        Assert.StartsWith("h.csv:3:1: timestamp 'yesterday'", e.Problems[0], StringComparison.Ordinal);
        Assert.StartsWith("h.csv:4:12: rack 'R99' is not in the site", e.Problems[1], StringComparison.Ordinal);
        Assert.StartsWith("h.csv:5:12: unknown role", e.Problems[2], StringComparison.Ordinal);
        Assert.StartsWith("h.csv:6:27: value 'eight' is not a number", e.Problems[3], StringComparison.Ordinal);
        Assert.StartsWith("h.csv:7:1: expected 3 columns", e.Problems[4], StringComparison.Ordinal);
        Assert.StartsWith("h.csv:8:12: series 'cooling' is not kind/id/quantity", e.Problems[5], StringComparison.Ordinal);
    }

    [Fact]
    public void A_file_without_readings_is_an_error()
    {
        var e = Assert.Throws<HistoryCsvException>(() => HistoryCsv.Read(new StringReader("timestamp,series,value\n"), Zones, "empty.csv"));
        Assert.Contains("empty.csv: no readings", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Regression_stale_rack_power_held_as_current_load()
    {
        // The meter's last row is at 12:00; the room is read until 13:00. Its 8.2 kW is held in the frames (for the
        // thermal model) but the power readings say how old it is, so the power twin does not take it as today's load.
        const string csv = """
            timestamp,series,value
            2026-01-05T12:00:00Z,rack/R01/power,8.2
            2026-01-05T12:00:00Z,rack/R01/inlet_temperature,22.5
            2026-01-05T13:00:00Z,rack/R01/inlet_temperature,22.6
            """;
        var h = HistoryCsv.Read(new StringReader(csv), Zones);
        Assert.Equal(3600, h.Power.RackReadingAgeS["R01"], 6);
        Assert.Equal(8.2, h.Frames[0][^1].RackPowerKw[0], 6);
    }
}
