using EdgeTwin.Simulator.Physics;

namespace EdgeTwin.Simulator.Devices;

/// <summary>
/// Answers "what would this device report for a metric with this role?" from the simulated site.
/// The role's prefix picks the simulated thing relative to the device (<c>rack.*</c> on a PDU means the
/// PDU's rack), the rest names the quantity. Table rows are 1-based (outlet 1, phase 1, sensor 1).
/// Unknown roles return false, so a profile the simulator cannot fill is reported rather than faked.
/// </summary>
public static class RoleValues
{
    public static bool TryRead(SimulatedSite site, SimDeviceBinding device, string role, int? row, out SimValue value)
    {
        ArgumentNullException.ThrowIfNull(site);
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(role);
        var dot = role.IndexOf('.', StringComparison.Ordinal);
        var prefix = dot < 0 ? string.Empty : role[..dot].ToLowerInvariant();
        var quantity = (dot < 0 ? role : role[(dot + 1)..]).ToLowerInvariant();
        value = default;
        return prefix switch
        {
            "rack" => RackOf(site, device) is { } rack && TryRack(rack, quantity, row, out value),
            "pdu" or "outlet" or "feed" => device.Kind == SimEntityKind.Pdu && TryPdu(site.Pdu(device.EntityId), quantity, row, out value),
            "ups" or "battery" => device.Kind == SimEntityKind.Ups && TryUps(site.Ups(device.EntityId), quantity, row, out value),
            "crac" or "crah" or "cooling" or "cooling_unit" => device.Kind == SimEntityKind.CoolingUnit && TryCooling(site.CoolingUnit(device.EntityId), quantity, out value),
            "machine" or "drive" or "motor" or "vfd" => device.Kind == SimEntityKind.Machine && TryMachine(site.Machine(device.EntityId), quantity, out value),
            "meter" or "site" or "room" or "power" => TryMeter(site, device, quantity, row, out value),
            _ => false,
        };
    }

    private static SimRack? RackOf(SimulatedSite site, SimDeviceBinding device) => device.Kind switch
    {
        SimEntityKind.Rack => site.Rack(device.EntityId),
        SimEntityKind.Pdu => site.Pdu(device.EntityId).Rack,
        _ => null,
    };

    private static bool TryRack(SimRack rack, string quantity, int? row, out SimValue value)
    {
        // A sensor table on a rack device: row 1 is the front (inlet) probe, row 2 the rear (outlet) probe.
        if (quantity is "temperature" or "sensor_temperature")
        {
            quantity = row == 2 ? "outlet_temperature" : "inlet_temperature";
        }

        value = quantity switch
        {
            "inlet_temperature" or "inlet_temp" or "temperature_inlet" => new SimValue(rack.InletSensor.Reading, "Cel"),
            "outlet_temperature" or "outlet_temp" or "exhaust_temperature" => new SimValue(rack.OutletSensor.Reading, "Cel"),
            "humidity" or "inlet_humidity" => new SimValue(Humidity(rack.InletC), "%"),
            "power" or "it_power" => new SimValue(rack.PowerKw, "kW"),
            "servers_running" => new SimValue(rack.ServersRunning, "1"),
            _ => default,
        };
        return value.Unit is not null;
    }

    private static bool TryPdu(SimPdu pdu, string quantity, int? row, out SimValue value)
    {
        var outlet = Math.Clamp((row ?? 1) - 1, 0, Math.Max(0, pdu.OutletCount - 1));
        var phase = Math.Clamp((row ?? 1) - 1, 0, pdu.PhaseCount - 1);
        var validOutlet = row is null || (row >= 1 && row <= pdu.OutletCount);
        var validPhase = row is null || (row >= 1 && row <= pdu.PhaseCount);
        value = quantity switch
        {
            "power" or "total_power" or "active_power" => new SimValue(pdu.PowerKw, "kW"),
            "apparent_power" or "total_apparent_power" => new SimValue(pdu.ApparentPowerKva, "kVA"),
            "current" or "total_current" => new SimValue(pdu.CurrentA, "A"),
            "voltage" => new SimValue(pdu.VoltageV, "V"),
            "energy" or "total_energy" => new SimValue(pdu.EnergyKwh, "kW.h"),
            "power_factor" => new SimValue(pdu.Powered ? pdu.Spec.PowerFactor : 0, "1"),
            "frequency" => new SimValue(pdu.Powered ? 50 : 0, "Hz"),
            "load_state" or "status" => new SimValue((int)pdu.LoadState, "1", pdu.LoadState switch
            {
                PduLoadState.Overload => "overload",
                PduLoadState.NearOverload => "near",
                _ => "normal",
            }),
            "outlet_current" when validOutlet => new SimValue(pdu.OutletCurrentA(outlet), "A"),
            "outlet_power" or "outlet_active_power" when validOutlet => new SimValue(pdu.OutletPowerW(outlet), "W"),
            "outlet_energy" when validOutlet => new SimValue(pdu.EnergyKwh / pdu.OutletCount, "kW.h"),
            "outlet_state" when validOutlet => SimValue.State(pdu.Powered, "on", "off"),
            "phase_current" or "phase_load" when validPhase => new SimValue(pdu.PhaseCurrentA(phase), "A"),
            "phase_power" when validPhase => new SimValue(pdu.PhasePowerW(phase), "W"),
            "phase_voltage" when validPhase => new SimValue(pdu.VoltageV, "V"),
            "phase_load_state" when validPhase => PhaseState(pdu, phase),
            "breaker_rating" or "phase_current_rating" => new SimValue(pdu.Spec.BreakerA, "A"),
            _ => default,
        };
        return value.Unit is not null;
    }

    private static SimValue PhaseState(SimPdu pdu, int phase)
    {
        var fraction = pdu.PhaseCurrentA(phase) / pdu.Spec.BreakerA;
        return fraction > 1 ? new SimValue(3, "1", "overload") : fraction > 0.8 ? new SimValue(2, "1", "near") : new SimValue(1, "1", "normal");
    }

    private static bool TryUps(SimUps ups, string quantity, int? row, out SimValue value)
    {
        value = quantity switch
        {
            "load" or "output_load" or "output_percent_load" => new SimValue(ups.LoadPercent, "%"),
            "battery_charge" or "charge" or "battery_capacity" or "estimated_charge_remaining" => new SimValue(ups.BatteryChargePercent, "%"),
            "runtime" or "battery_runtime" or "estimated_minutes_remaining" or "runtime_remaining" => new SimValue(ups.RuntimeMinutes, "min"),
            "on_battery" => SimValue.State(ups.OnBattery, "battery", "normal"),
            "seconds_on_battery" or "time_on_battery" => new SimValue(ups.OnBattery ? ups.BatteryChargePercent : 0, "s"),
            "output_source" or "state" or "status" or "basic_output_status" => ups.OutputSource switch
            {
                UpsOutputSource.Battery => new SimValue(5, "1", "battery"),
                UpsOutputSource.None => new SimValue(2, "1", "none"),
                _ => new SimValue(3, "1", "normal"),
            },
            "battery_status" => ups.BatteryChargePercent <= 0 ? new SimValue(4, "1", "depleted")
                : ups.BatteryChargePercent < 25 && ups.OnBattery ? new SimValue(3, "1", "low")
                : new SimValue(2, "1", "normal"),
            "battery_temperature" or "temperature" => new SimValue(ups.BatteryTemperatureC, "Cel"),
            "input_voltage" => new SimValue(ups.InputVoltageV, "V"),
            "input_frequency" => new SimValue(ups.UtilityFailed ? 0 : 50, "Hz"),
            "output_voltage" => new SimValue(ups.OutputVoltageV, "V"),
            "output_current" => new SimValue(row is null or 1 ? ups.OutputCurrentA : 0, "A"),
            "output_power" or "power" => new SimValue(ups.OutputKw, "kW"),
            "input_power" => new SimValue(ups.InputKw, "kW"),
            "output_frequency" or "frequency" => new SimValue(ups.FrequencyHz, "Hz"),
            "efficiency" => new SimValue(ups.Efficiency * 100, "%"),
            _ => default,
        };
        return value.Unit is not null;
    }

    private static bool TryCooling(SimCoolingUnit unit, string quantity, out SimValue value)
    {
        value = quantity switch
        {
            "supply_temperature" or "supply_air_temperature" => new SimValue(unit.SupplySensor.Reading, "Cel"),
            "return_temperature" or "return_air_temperature" => new SimValue(unit.ReturnSensor.Reading, "Cel"),
            "supply_setpoint" or "setpoint" or "supply_temperature_setpoint" or "temperature_setpoint" => new SimValue(unit.SupplySetpointC, "Cel"),
            "fan_speed" => new SimValue(unit.FanSpeed * 100, "%"),
            "airflow" => new SimValue(unit.AirflowKgPerS / Air.Density, "m3/s"),
            "cooling_capacity" or "cooling_power" or "cooling_load" or "sensible_capacity" => new SimValue(unit.CoolingKw, "kW"),
            "capacity_utilisation" or "capacity_utilization" or "cooling_capacity_utilisation" => new SimValue(unit.CoolingKw / unit.Spec.CapacityKw * 100, "%"),
            "fan_power" or "power" => new SimValue(unit.FanPowerKw, "kW"),
            "running" or "state" or "status" or "unit_state" or "operating_state" => SimValue.State(unit.IsRunning, "on", "off"),
            "fan_alarm" or "fan_failure" => SimValue.State(unit.State == CoolingUnitState.FanFailed, "alarm", "normal"),
            "alarm" or "alarms" or "alarm_count" or "system_alarm" => new SimValue(unit.State == CoolingUnitState.Running ? 0 : 1, "1", unit.State == CoolingUnitState.Running ? "normal" : "alarm"),
            "humidity" or "return_humidity" => new SimValue(Humidity(unit.ReturnC), "%"),
            _ => default,
        };
        return value.Unit is not null;
    }

    private static bool TryMachine(SimMachine machine, string quantity, out SimValue value)
    {
        value = quantity switch
        {
            "speed" or "motor_speed" or "speed_rpm" => new SimValue(machine.SpeedRpm, "rpm"),
            "frequency" or "output_frequency" => new SimValue(machine.FrequencyHz, "Hz"),
            "current" or "motor_current" => new SimValue(machine.CurrentA, "A"),
            "power" or "motor_power" or "output_power" => new SimValue(machine.PowerKw, "kW"),
            "torque" or "motor_torque" => new SimValue(machine.Load * 100, "%"),
            "vibration_rms" or "vibration" => new SimValue(machine.VibrationSensor.Reading, "mm/s"),
            "bearing_temperature" or "motor_temperature" or "temperature" => new SimValue(machine.BearingSensor.Reading, "Cel"),
            "dc_bus_voltage" or "dc_voltage" => new SimValue(machine.DcBusVoltageV, "V"),
            "output_voltage" => new SimValue(machine.State == MachineState.Running ? 400 * machine.FrequencyHz / 50 : 0, "V"),
            "run_hours" or "running_hours" or "operating_hours" => new SimValue(machine.RunHours, "h"),
            "fault_code" or "fault" or "last_fault" => new SimValue(machine.FaultCode, "1", machine.FaultCode == 0 ? "none" : "fault"),
            "running" or "run" => SimValue.State(machine.State == MachineState.Running, "running", "stopped"),
            "state" or "status" => machine.State switch
            {
                MachineState.Running => new SimValue(1, "1", "running"),
                MachineState.Failed => new SimValue(3, "1", "fault"),
                _ => new SimValue(0, "1", "stopped"),
            },
            "energy" => new SimValue(machine.RunHours * machine.Spec.RatedKw * machine.Spec.LoadFactor, "kW.h"),
            _ => default,
        };
        return value.Unit is not null;
    }

    private static bool TryMeter(SimulatedSite site, SimDeviceBinding device, string quantity, int? row, out SimValue value)
    {
        // The site's main meter measures what the UPS units draw from the utility, split over three phases.
        var inputKw = site.Upses.Sum(u => u.InputKw) + site.CoolingUnits.Sum(u => u.FanPowerKw);
        var utility = site.Upses.All(u => !u.UtilityFailed) || site.Upses.Count == 0;
        const double Volts = 230;
        var phaseCurrent = inputKw * 1000 / 3 / (Volts * 0.97);
        value = quantity switch
        {
            "voltage" or "voltage_l1" or "voltage_l2" or "voltage_l3" or "phase_voltage" => new SimValue(utility ? Volts : 0, "V"),
            "current" or "current_l1" or "current_l2" or "current_l3" or "phase_current" => new SimValue(phaseCurrent, "A"),
            "power" or "active_power" or "total_power" => new SimValue(inputKw, "kW"),
            "power_l1" or "power_l2" or "power_l3" or "phase_power" => new SimValue(inputKw / 3, "kW"),
            "apparent_power" => new SimValue(inputKw / 0.97, "kVA"),
            "power_factor" => new SimValue(0.97, "1"),
            "frequency" => new SimValue(utility ? 50 : 0, "Hz"),
            "energy" or "import_energy" or "active_energy" => new SimValue(site.Pdus.Sum(p => p.EnergyKwh) * 1.06, "kW.h"),
            "temperature" or "room_temperature" => new SimValue(site.Room.TemperatureC, "Cel"),
            _ => default,
        };
        _ = device;
        _ = row;
        return value.Unit is not null;
    }

    // Absolute humidity stays put, so relative humidity falls as air warms (about 3 % RH per kelvin here).
    private static double Humidity(double temperatureC) => Math.Clamp(45 - (3 * (temperatureC - 22)), 5, 95);
}
