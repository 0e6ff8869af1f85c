using EdgeTwin.Core.Profiles;
using EdgeTwin.Modbus.Data;
using EdgeTwin.Simulator.Devices;
using EdgeTwin.Simulator.Line;
using EdgeTwin.Simulator.Physics;
using LibTable = EdgeTwin.Modbus.Protocol.ModbusTable;

namespace EdgeTwin.Simulator.Tests.Line;

/// <summary>The simulated production line: conservation, bottleneck by construction, drift-driven rejects, PLC registers.</summary>
public sealed class SimLineTests
{
    private static SimulatedSite Site(int stations = 4, int seed = 3, int machines = 0) =>
        new(SiteGenerator.Generate(new SiteGenerationOptions { Racks = 2, CoolingUnits = 1, Machines = machines, LineStations = stations, Seed = seed }));

    [Fact]
    public void Time_is_conserved_and_parts_flow_through_the_buffers()
    {
        var site = Site();
        var line = site.Line!;
        var start = line.Truth();
        site.Step(TimeSpan.FromHours(2));
        var end = line.Truth();
        Assert.Equal(2 * 3600, end.Seconds - start.Seconds, 3);
        for (var i = 0; i < end.Stations.Count; i++)
        {
            // Every station's states add up to the elapsed time.
            Assert.Equal(end.Seconds, end.Stations[i].Seconds.Sum(), 3);
        }

        // Parts in = parts out + what sits in buffers and stations (at most one held per station).
        long made(int i) => end.Stations[i].Good + end.Stations[i].Reject;
        for (var i = 0; i + 1 < end.Stations.Count; i++)
        {
            var wip = made(i) - made(i + 1) - line.BufferLevel(i);
            Assert.InRange(wip, -2, 2);
        }

        Assert.True(end.Stations[^1].Good > 1000, $"output {end.Stations[^1].Good}");
    }

    [Fact]
    public void Breakdowns_and_repairs_follow_the_stated_MTBF_and_MTTR()
    {
        var spec = SimLineSpec.Packaging(3, seed: 8);
        var line = new SimLine(spec, new SimRandom(8));
        for (var h = 0; h < 48; h++)
        {
            line.Step(3600);
        }

        // End between repairs (a repair's drawn time is counted when it starts, its seconds as they pass).
        for (var k = 0; k < 3600 && Enumerable.Range(0, spec.Stations.Count).Any(i => line.State(i) == SimStationState.Breakdown); k++)
        {
            line.Step(1);
        }

        var t = line.Truth();
        for (var i = 0; i < spec.Stations.Count; i++)
        {
            var s = spec.Stations[i];
            var st = t.Stations[i];
            // Operation-dependent failures: breakdowns per running hour ≈ 1/MTBF; repairs average MTTR (±25 % on 50–150 events).
            var mtbf = st.In(SimStationState.Running) / st.Breakdowns;
            Assert.InRange(mtbf, s.MtbfSeconds * 0.75, s.MtbfSeconds * 1.25);
            Assert.InRange(st.RepairSeconds / st.Breakdowns, s.MttrSeconds * 0.75, s.MttrSeconds * 1.25);
            // The time booked to breakdowns is the drawn repair times, up to one 50 ms sub-step per repair.
            Assert.InRange(st.In(SimStationState.Breakdown) - st.RepairSeconds, -0.001, (0.05 * st.Breakdowns) + 0.001);
        }
    }

    [Fact]
    public void The_constructed_bottleneck_is_active_most_and_sets_the_output_rate()
    {
        for (var seed = 1; seed <= 5; seed++)
        {
            var site = Site(stations: 5, seed: seed);
            var line = site.Line!;
            var a = line.Truth();
            site.Step(TimeSpan.FromHours(4));
            var b = line.Truth();
            var bottleneck = line.StationIndex(line.Spec.TrueBottleneck);
            // The bottleneck is the station least starved and blocked.
            double waiting(int i) => b.Stations[i].In(SimStationState.Starved) + b.Stations[i].In(SimStationState.Blocked) - a.Stations[i].In(SimStationState.Starved) - a.Stations[i].In(SimStationState.Blocked);
            var least = Enumerable.Range(0, b.Stations.Count).MinBy(waiting);
            Assert.Equal(bottleneck, least);
            // The line makes no more than the bottleneck's isolated rate, and (buffers of 20) at least 85 % of it.
            var rate = (b.Stations[^1].Good + b.Stations[^1].Reject - a.Stations[^1].Good - a.Stations[^1].Reject) / (b.Seconds - a.Seconds);
            var isolated = line.Spec.Stations[bottleneck].IsolatedRate(line.Spec.MicroStopLimitSeconds);
            Assert.InRange(rate / isolated, 0.85, 1.03);
        }
    }

    [Fact]
    public void Tool_wear_drifts_the_process_temperature_and_raises_rejects()
    {
        var site = Site();
        var line = site.Line!;
        // S2 wears its tool (tool change every 400 parts); sample parts by the temperature at which they were made.
        long goodHot = 0, rejectHot = 0, goodCold = 0, rejectCold = 0;
        long lastGood = line.Good(1), lastReject = line.Reject(1);
        for (var t = 0; t < 6 * 3600; t++)
        {
            var temp = line.ProcessTemperature(1);
            site.Step(TimeSpan.FromSeconds(1));
            long g = line.Good(1) - lastGood, r = line.Reject(1) - lastReject;
            lastGood = line.Good(1);
            lastReject = line.Reject(1);
            if (temp > 194)
            {
                goodHot += g;
                rejectHot += r;
            }
            else if (temp < 186)
            {
                goodCold += g;
                rejectCold += r;
            }
        }

        var hot = (double)rejectHot / (goodHot + rejectHot);
        var cold = (double)rejectCold / (goodCold + rejectCold);
        Assert.True(goodHot + rejectHot > 100 && goodCold + rejectCold > 1000, $"hot {goodHot + rejectHot} cold {goodCold + rejectCold}");
        Assert.True(hot > 0.1 && cold < 0.03, $"reject rate hot {hot:P1}, cold {cold:P1}");
        Assert.True(line.Truth().Stations[1].In(SimStationState.Setup) > 0, "tool changes happened");
    }

    [Fact]
    public void A_failed_drive_stops_its_station()
    {
        var site = Site(machines: 2);
        var line = site.Line!;
        var station = line.Spec.Stations.First(s => s.Machine == "m1");
        var i = line.StationIndex(station.Id);
        Assert.NotEqual(SimStationState.DriveDown, line.State(i));
        site.Apply(EdgeTwin.Simulator.Faults.FaultCommand.Parse("machine-wear:m1:1"));
        site.Step(TimeSpan.FromSeconds(5));
        Assert.Equal(MachineState.Failed, site.Machine("m1").State);
        Assert.Equal(SimStationState.DriveDown, line.State(i));
        Assert.Equal(9, line.PackMlState(i));
        Assert.Equal(6, line.StopReason(i));
        var made = line.Good(i) + line.Reject(i);
        site.Step(TimeSpan.FromMinutes(2));
        Assert.Equal(made, line.Good(i) + line.Reject(i));
    }

    [Fact]
    public void The_PLC_serves_state_counters_and_process_values_per_the_generic_packml_profile()
    {
        var site = Site();
        site.Step(TimeSpan.FromMinutes(30));
        var profile = DeviceProfileLoader.LoadFileOrThrow(Path.Combine(RepoPaths.Profiles, "generic-packml-plc.yaml"));
        var device = SimDevicePlan.For(site.Spec).Single(d => d.DeviceId == "plc-s2");
        Assert.Equal(SimEntityKind.LineStation, device.Kind);
        var image = ModbusDeviceImage.Build(site, device, profile);
        Assert.Empty(image.Unsupported);
        var regs = new ushort[15];
        Assert.True(image.TryReadRegisters(LibTable.HoldingRegisters, 0, regs));
        var line = site.Line!;
        Assert.Equal(line.PackMlState(1), regs[0]);
        Assert.Equal(line.Good(1), ((long)regs[2] << 16) | regs[3]);
        Assert.Equal(line.Reject(1), ((long)regs[4] << 16) | regs[5]);
        Assert.Equal(line.LastCycleSeconds(1), regs[6] / 10.0, 1);
        Assert.Equal(line.StopReason(1), regs[7]);
        var temp = new ModbusPoint(LibTable.HoldingRegisters, 8, Modbus.Data.ModbusDataType.Float32).Decode(regs.AsSpan(8, 2));
        Assert.Equal(line.ProcessTemperature(1), temp, 2);
        Assert.Equal(line.BufferLevel(0), regs[14]); // S2's infeed is B1
    }

    [Fact]
    public void The_site_config_carries_the_line_section_with_the_PLC_devices()
    {
        var site = Site();
        var endpoints = SimDevicePlan.For(site.Spec).Select(d => (d, Core.Config.DeviceAddress.Tcp("127.0.0.1", 502)));
        var config = SimSiteConfig.Build(site.Spec, endpoints, TimeSpan.FromSeconds(1));
        var line = Assert.IsType<Core.Config.ConfigMapping>(config.Sections["line"]);
        Assert.NotNull(line["stations"]);
        Assert.Contains(config.Devices, d => d.Id == "plc-s4" && d.Profile == "generic-packml-plc");
        var yaml = SimLineConfig.Yaml(site.Spec.Line!, SimDevicePlan.LineStationDevice);
        Assert.Contains("device: plc-s1, metric: machine_state", yaml, StringComparison.Ordinal);
        Assert.Contains("{ id: B1, capacity: ", yaml, StringComparison.Ordinal);
        Assert.Contains("level: { device: plc-s2, metric: infeed_level } }", yaml, StringComparison.Ordinal);
    }
}
