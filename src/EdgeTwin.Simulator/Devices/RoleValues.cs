using EdgeTwin.Simulator.Physics;

namespace EdgeTwin.Simulator.Devices;

/// <summary>
/// Answers "what would this device report for a metric with this role?" from the simulated site.
/// The role's prefix picks the simulated thing relative to the device (<c>rack.*</c> on a PDU means the
/// PDU's rack), the rest names the quantity; unit suffixes (<c>power_w</c>, <c>energy_wh</c>) are dropped
/// because the value is converted to the metric's unit anyway. Per-phase metrics are recognised by
/// <c>_l1</c>/<c>_l2</c>/<c>_l3</c> in the metric name. Table rows are 1-based (outlet 1, phase 1,
/// sensor 1). Unknown roles return false, so a profile the simulator cannot fill is reported, not faked.
/// </summary>
public static class RoleValues
{
    private static readonly string[] UnitSuffixes = ["_kw", "_w", "_wh", "_kwh", "_va", "_kva", "_kvar", "_var"];

    public static bool TryRead(SimulatedSite site, SimDeviceBinding device, string role, int? row, out SimValue value, string? metricName = null)
    {
        ArgumentNullException.ThrowIfNull(site);
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(role);
        var dot = role.IndexOf('.', StringComparison.Ordinal);
        var prefix = dot < 0 ? string.Empty : role[..dot].ToLowerInvariant();
        var quantity = (dot < 0 ? role : role[(dot + 1)..]).ToLowerInvariant();
        foreach (var suffix in UnitSuffixes)
        {
            if (quantity.EndsWith(suffix, StringComparison.Ordinal))
            {
                quantity = quantity[..^suffix.Length];
                break;
            }
        }

        var phase = Phase(metricName);
        value = default;
        return prefix switch
        {
            "rack" when device.Kind == SimEntityKind.RackProbe && site.Rack(device.EntityId).ProbeLost => TryLostProbe(quantity, out value),
            "rack" => RackOf(site, device) is { } rack && TryRack(rack, quantity, row, out value),
            "pdu" or "outlet" or "feed" => device.Kind == SimEntityKind.Pdu && TryPdu(site.Pdu(device.EntityId), quantity, row, phase, out value),
            "ups" or "battery" => device.Kind == SimEntityKind.Ups && TryUps(site.Ups(device.EntityId), quantity, out value),
            "crac" or "crah" or "cooling" or "cooling_unit" => device.Kind == SimEntityKind.CoolingUnit && TryCooling(site.CoolingUnit(device.EntityId), quantity, row, out value),
            "machine" when device.Kind == SimEntityKind.LineStation => site.Line is { } line && Line.SimLineRoles.TryRead(line, device.EntityId, quantity, out value),
            "machine" or "drive" or "motor" or "vfd" => device.Kind == SimEntityKind.Machine && TryMachine(site.Machine(device.EntityId), quantity, out value),
            "meter" => device.Kind switch
            {
                SimEntityKind.Meter => TryMeter(site.UtilityOn, site.FacilityKw, site.Upses.Sum(u => u.InputEnergyKwh), quantity, phase, Tariff(metricName), out value),
                SimEntityKind.RoomMeter => site.RoomById(device.EntityId) is var room
                    && TryMeter(site.UtilityOn, site.RoomInfrastructureKw(room.Id), room.InfrastructureEnergyKwh, quantity, phase, Tariff(metricName), out value),
                _ => false,
            },
            "room" => TryRoom(device.Kind == SimEntityKind.RoomMeter ? site.RoomById(device.EntityId) : site.Room, quantity, out value),
            "net" => device.Kind switch
            {
                SimEntityKind.RackProbe => TrySensor(site.Rack(device.EntityId), quantity, out value),
                SimEntityKind.Rack => TrySensor(null, quantity, out value),
                _ => false,
            },
            _ => false,
        };
    }

    /// <summary>
    /// A write from a client (SNMP SET, Modbus write) of a set point, <paramref name="value"/> in <paramref name="unit"/>:
    /// a cooling unit's supply set point (<c>crac.supply_setpoint</c>, or row 1 — the supply row — of
    /// <c>crac.temperature_setpoint</c>) or fan speed set point (<c>crac.fan_speed_setpoint</c>, 0 hands the fans back to the
    /// unit's own control). The caller holds <see cref="SimulatedSite.SyncRoot"/>. False when the role is not a set point
    /// the simulator models or the value is outside what the unit accepts (5–35 °C, 0–100 %), like a device refusing it.
    /// </summary>
    public static bool TryWrite(SimulatedSite site, SimDeviceBinding device, string role, int? row, double value, string unit)
    {
        ArgumentNullException.ThrowIfNull(site);
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(role);
        if (device.Kind != SimEntityKind.CoolingUnit || !double.IsFinite(value))
        {
            return false;
        }

        var cooling = site.CoolingUnit(device.EntityId);
        var quantity = role[(role.IndexOf('.', StringComparison.Ordinal) + 1)..].ToLowerInvariant();
        switch (quantity)
        {
            case "supply_setpoint" or "setpoint" or "supply_temperature_setpoint" or "temperature_setpoint" when row is null or 1:
                if (!Units.TryConvert(value, unit, "Cel", out var c) || c is < 5 or > 35)
                {
                    return false;
                }

                cooling.SupplySetpointC = c;
                return true;
            case "fan_speed_setpoint":
                if (!Units.TryConvert(value, unit, "%", out var pct) || pct is < 0 or > 100)
                {
                    return false;
                }

                cooling.FanSpeedOverride = pct <= 0 ? null : pct / 100;
                return true;
            default:
                return false;
        }
    }

    /// <summary>1..3 when the metric name says which phase (<c>current_l2</c>), else null.</summary>
    private static int? Phase(string? metricName)
    {
        if (metricName is null)
        {
            return null;
        }

        for (var p = 1; p <= 3; p++)
        {
            if (metricName.Contains($"_l{p}", StringComparison.OrdinalIgnoreCase) || metricName.Contains($"phase{p}", StringComparison.OrdinalIgnoreCase))
            {
                return p;
            }
        }

        return null;
    }

    /// <summary>
    /// The tariff register a metric name names (<c>_t2</c> at the end, or <c>tariff2</c>), else 1. A simulated site is
    /// single-tariff: tariff 1 counts everything and the others stay at 0, as the meter of a site without a tariff input.
    /// </summary>
    private static int Tariff(string? metricName)
    {
        if (metricName is null)
        {
            return 1;
        }

        for (var t = 2; t <= 4; t++)
        {
            if (metricName.EndsWith($"_t{t}", StringComparison.OrdinalIgnoreCase) || metricName.Contains($"tariff{t}", StringComparison.OrdinalIgnoreCase)
                || metricName.Contains($"tariff_{t}", StringComparison.OrdinalIgnoreCase))
            {
                return t;
            }
        }

        return 1;
    }

    private static SimRack? RackOf(SimulatedSite site, SimDeviceBinding device) => device.Kind switch
    {
        SimEntityKind.Rack or SimEntityKind.RackProbe => site.Rack(device.EntityId),
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

    private static bool TryPdu(SimPdu pdu, string quantity, int? row, int? namedPhase, out SimValue value)
    {
        var outlet = Math.Clamp((row ?? 1) - 1, 0, Math.Max(0, pdu.OutletCount - 1));
        var phaseIndex = Math.Clamp((row ?? namedPhase ?? 1) - 1, 0, pdu.PhaseCount - 1);
        var validOutlet = row is null || (row >= 1 && row <= pdu.OutletCount);
        var validPhase = (row ?? namedPhase) is null || ((row ?? namedPhase) >= 1 && (row ?? namedPhase) <= pdu.PhaseCount);
        var perPhase = namedPhase is not null;
        value = quantity switch
        {
            "power" or "total_power" or "active_power" or "input_power" => perPhase
                ? new SimValue(validPhase ? pdu.PhasePowerW(phaseIndex) : 0, "W")
                : new SimValue(pdu.PowerKw, "kW"),
            "apparent_power" or "total_apparent_power" => new SimValue(pdu.ApparentPowerKva, "kVA"),
            "current" or "total_current" or "input_current" => perPhase
                ? new SimValue(validPhase ? pdu.PhaseCurrentA(phaseIndex) : 0, "A")
                : new SimValue(pdu.PhaseCount == 1 ? pdu.CurrentA : pdu.PhaseCurrentA(0), "A"),
            "voltage" or "input_voltage" => new SimValue(pdu.VoltageV, "V"),
            "energy" or "total_energy" or "input_energy" => new SimValue(pdu.EnergyKwh, "kW.h"),
            "power_factor" => new SimValue(pdu.Powered ? pdu.Spec.PowerFactor : 0, "1"),
            "frequency" or "input_frequency" => new SimValue(pdu.Powered ? 50 : 0, "Hz"),
            "load_state" or "status" => pdu.LoadState switch
            {
                PduLoadState.Overload => new SimValue(4, "1", "overload"),
                PduLoadState.NearOverload => new SimValue(3, "1", "nearOverload|near"),
                _ => pdu.MaxPhaseLoadFraction < 0.05 ? new SimValue(1, "1", "lowLoad|low|normal") : new SimValue(2, "1", "normal"),
            },
            "outlet_current" when validOutlet => new SimValue(pdu.OutletCurrentA(outlet), "A"),
            "outlet_power" or "outlet_active_power" when validOutlet => new SimValue(pdu.OutletPowerW(outlet), "W"),
            "outlet_energy" when validOutlet => new SimValue(pdu.EnergyKwh * pdu.OutletPowerW(outlet) / Math.Max(1, pdu.PowerKw * 1000), "kW.h"),
            "outlet_state" when validOutlet => SimValue.State(pdu.Powered),
            "phase_current" or "phase_load" or "breaker_current" when validPhase => new SimValue(pdu.PhaseCurrentA(phaseIndex), "A"),
            "phase_power" when validPhase => new SimValue(pdu.PhasePowerW(phaseIndex), "W"),
            "phase_voltage" when validPhase => new SimValue(pdu.VoltageV, "V"),
            "phase_load_state" when validPhase => PhaseState(pdu, phaseIndex),
            "breaker_rating" or "phase_current_rating" => new SimValue(pdu.Spec.BreakerA, "A"),
            _ => default,
        };
        return value.Unit is not null;
    }

    private static SimValue PhaseState(SimPdu pdu, int phase)
    {
        var fraction = pdu.PhaseCurrentA(phase) / pdu.Spec.BreakerA;
        return fraction > 1 ? new SimValue(4, "1", "overload") : fraction > 0.8 ? new SimValue(3, "1", "nearOverload|near") : new SimValue(2, "1", "normal");
    }

    private static bool TryUps(SimUps ups, string quantity, out SimValue value)
    {
        value = quantity switch
        {
            "load" or "output_load" or "output_percent_load" => new SimValue(ups.LoadPercent, "%"),
            "battery_charge" or "charge" or "battery_capacity" or "estimated_charge_remaining" => new SimValue(ups.BatteryChargePercent, "%"),
            "runtime" or "battery_runtime" or "estimated_minutes_remaining" or "runtime_remaining" => new SimValue(ups.RuntimeMinutes, "min"),
            "on_battery" => SimValue.State(ups.OnBattery, "battery|onBattery|on", "normal|onLine|off"),
            "seconds_on_battery" or "time_on_battery" => new SimValue(ups.SecondsOnBattery, "s"),
            "output_source" or "state" or "status" or "output_status" => ups.OutputSource switch
            {
                UpsOutputSource.Battery => new SimValue(5, "1", "battery|onBattery"),
                UpsOutputSource.None => new SimValue(2, "1", "none|off"),
                _ => new SimValue(3, "1", "normal|onLine|online"),
            },
            // UPS-MIB's status is the charge (normal/low/depleted), XUPS-MIB's (ABM) what the battery does
            // (charging/discharging/floating): the candidates name both, the RFC words first, so each profile gets its own
            // label; without one the RFC code would read as another state (2 = batteryDischarging on XUPS-MIB, on mains).
            "battery_status" => ups.BatteryChargePercent <= 0 ? new SimValue(4, "1", "batteryDepleted|depleted|batteryDischarging|discharging")
                : ups.BatteryChargePercent < 25 && ups.OnBattery ? new SimValue(3, "1", "batteryLow|low|batteryDischarging|discharging")
                : ups.OnBattery ? new SimValue(2, "1", "batteryNormal|normal|batteryDischarging|discharging")
                : ups.BatteryChargePercent < 100 ? new SimValue(2, "1", "batteryNormal|normal|batteryCharging|charging")
                : new SimValue(2, "1", "batteryNormal|normal|batteryFloating|floating"),
            "battery_replace" => SimValue.State(false, "batteryNeedsReplacing", "noBatteryNeedsReplacing|no"),
            "battery_temperature" or "temperature" => new SimValue(ups.BatteryTemperatureC, "Cel"),
            "battery_voltage" => new SimValue(ups.BatteryVoltageV, "V"),
            "battery_current" => new SimValue(ups.BatteryCurrentA, "A"),
            "input_voltage" => new SimValue(ups.InputVoltageV, "V"),
            "input_frequency" => new SimValue(ups.UtilityFailed ? 0 : 50, "Hz"),
            "input_current" => new SimValue(ups.InputVoltageV <= 0 ? 0 : ups.InputKw * 1000 / ups.InputVoltageV, "A"),
            "input_power" => new SimValue(ups.InputKw, "kW"),
            "input_line_bads" => new SimValue(ups.InputLineBads, "1"),
            "alarms" or "alarms_present" => new SimValue((ups.OnBattery ? 1 : 0) + (ups.OutputOn ? 0 : 1), "1"),
            "output_voltage" => new SimValue(ups.OutputVoltageV, "V"),
            "output_current" => new SimValue(ups.OutputCurrentA, "A"),
            "output_power" or "power" => new SimValue(ups.OutputKw, "kW"),
            "output_frequency" or "frequency" => new SimValue(ups.FrequencyHz, "Hz"),
            "efficiency" => new SimValue(ups.Efficiency * 100, "%"),
            _ => default,
        };
        return value.Unit is not null;
    }

    private static bool TryCooling(SimCoolingUnit unit, string quantity, int? row, out SimValue value)
    {
        // A sensor table on a cooling unit: row 1 measures the supply air, row 2 the return air.
        var returnRow = row == 2;
        value = quantity switch
        {
            "supply_temperature" or "supply_air_temperature" => new SimValue(unit.SupplySensor.Reading, "Cel"),
            "return_temperature" or "return_air_temperature" => new SimValue(unit.ReturnSensor.Reading, "Cel"),
            "air_temperature" or "temperature" => new SimValue(returnRow ? unit.ReturnSensor.Reading : unit.SupplySensor.Reading, "Cel"),
            "temperature_setpoint" => new SimValue(returnRow ? unit.Spec.InletTargetC + 1 : unit.SupplySetpointC, "Cel"),
            "supply_setpoint" or "setpoint" or "supply_temperature_setpoint" => new SimValue(unit.SupplySetpointC, "Cel"),
            "fan_speed_setpoint" => new SimValue((unit.FanSpeedOverride ?? 0) * 100, "%"),
            "fan_speed" => new SimValue(unit.FanSpeed * 100, "%"),
            "fan_running" => SimValue.State(unit.AirflowKgPerS > 0),
            "airflow" => new SimValue(unit.AirflowKgPerS / Air.Density, "m3/s"),
            "cooling_capacity" or "cooling_power" or "cooling_load" or "sensible_capacity" => new SimValue(unit.CoolingKw, "kW"),
            "cooling_capacity_used" or "capacity_utilisation" or "capacity_utilization" => new SimValue(Math.Min(100, unit.CoolingKw / unit.Spec.CapacityKw * 100), "%"),
            "cooling" => SimValue.State(unit.CoolingKw > 0.1),
            "fan_power" or "power" => new SimValue(unit.FanPowerKw, "kW"),
            "running" or "state" or "status" or "unit_state" or "operating_state" => SimValue.State(unit.State != CoolingUnitState.Stopped),
            "fan_alarm" or "fan_failure" => SimValue.State(unit.State == CoolingUnitState.FanFailed),
            "alarm" or "alarms" or "general_alarm" or "system_alarm" => SimValue.State(unit.State != CoolingUnitState.Running || unit.CapacityLimited),
            "humidity" or "return_humidity" => new SimValue(Humidity(returnRow ? unit.ReturnC : unit.ReturnC - 1), "%"),
            _ => default,
        };
        return value.Unit is not null;
    }

    private static bool TryMachine(SimMachine machine, string quantity, out SimValue value)
    {
        var running = machine.State == MachineState.Running;
        value = quantity switch
        {
            "speed" or "motor_speed" or "speed_rpm" => new SimValue(machine.SpeedRpm, "rpm"),
            "speed_ratio" => new SimValue(machine.SpeedRpm / machine.Spec.RatedSpeedRpm * 100, "%"),
            "frequency" or "output_frequency" => new SimValue(machine.FrequencyHz, "Hz"),
            "frequency_ratio" => new SimValue(machine.FrequencyHz / 50 * 100, "%"),
            "current" or "motor_current" => new SimValue(machine.CurrentA, "A"),
            "power" or "motor_power" or "output_power" => new SimValue(machine.PowerKw, "kW"),
            "torque" or "motor_torque" => new SimValue(machine.Load * 100, "%"),
            "vibration_rms" or "vibration" or "vibration_velocity" => new SimValue(machine.VibrationSensor.Reading, "mm/s"),
            "vibration_kurtosis" or "kurtosis" => new SimValue(machine.KurtosisSensor.Reading, "1"),
            "bearing_temperature" or "motor_temperature" or "temperature" => new SimValue(machine.BearingSensor.Reading, "Cel"),
            "drive_temperature_ratio" => new SimValue(running ? 35 + (30 * machine.Load) : 20, "%"),
            "dc_bus_voltage" or "dc_voltage" or "dc_link_voltage" => new SimValue(machine.DcBusVoltageV, "V"),
            "output_voltage" => new SimValue(running ? 400 * machine.FrequencyHz / 50 : 0, "V"),
            "run_hours" or "running_hours" or "operating_hours" => new SimValue(machine.RunHours, "h"),
            "fault_code" or "last_fault" => new SimValue(machine.FaultCode, "1"),
            "fault" or "tripped" => SimValue.State(machine.State == MachineState.Failed, "tripped|fault|on", "ok|none|off"),
            // ISO 10816 zone C (> 4.5 mm/s for a 15-75 kW machine) or a hot bearing raises the drive's warning.
            "warning" or "alarm" => SimValue.State(machine.VibrationRmsMmPerS > 4.5 || machine.BearingTemperatureC > 80, "alarm|on", "ok|off"),
            "running" or "run" => SimValue.State(running, "running|run|on", "stopped|stop|off"),
            "state" or "status" => machine.State switch
            {
                MachineState.Running => new SimValue(1, "1", "running"),
                MachineState.Failed => new SimValue(3, "1", "fault|tripped"),
                _ => new SimValue(0, "1", "stopped"),
            },
            "energy" => new SimValue(machine.RunHours * machine.Spec.RatedKw * machine.Spec.LoadFactor, "kW.h"),
            _ => default,
        };
        return value.Unit is not null;
    }

    /// <summary>
    /// A three-phase meter reading <paramref name="inputKw"/> balanced over its phases. The site's main meter measures
    /// what the UPS units, the cooling units (fans and compressors) and the rooms' lighting draw from the utility (the
    /// facility power of the PUE; its energy counter counts the UPS inputs); a room's infrastructure sub-meter its own
    /// cooling units and lighting (<see cref="SimulatedSite.RoomInfrastructureKw"/>, its energy counter the same loads).
    /// With the mains gone they measure nothing: the cooling units' fans run on whatever supply the simulation gives them,
    /// but not through these meters (the main meter read 0 V and still 150 W before).
    /// </summary>
    private static bool TryMeter(bool utility, double inputKw, double energyKwh, string quantity, int? phase, int tariff, out SimValue value)
    {
        const double Volts = 230;
        const double PowerFactor = 0.97;
        var phaseCurrent = utility ? inputKw * 1000 / 3 / (Volts * PowerFactor) : 0;
        var perPhase = phase is not null;
        value = quantity switch
        {
            "voltage" or "phase_voltage" => new SimValue(utility ? Volts : 0, "V"),
            "voltage_ll" => new SimValue(utility ? Volts * Math.Sqrt(3) : 0, "V"),
            "current" or "phase_current" or "current_avg" => new SimValue(phaseCurrent, "A"),
            "neutral_current" => new SimValue(phaseCurrent * 0.03, "A"),
            "power" => new SimValue(perPhase ? inputKw / 3 : inputKw, "kW"),
            "phase_power" => new SimValue(inputKw / 3, "kW"),
            "power_total" or "active_power" or "total_power" => new SimValue(inputKw, "kW"),
            "apparent_power" or "apparent_power_total" => new SimValue(inputKw / PowerFactor * (perPhase ? 1.0 / 3 : 1), "kVA"),
            "reactive_power" or "reactive_power_total" => new SimValue(inputKw * Math.Tan(Math.Acos(PowerFactor)) * (perPhase ? 1.0 / 3 : 1), "kvar"),
            "power_factor" or "power_factor_total" or "phase_power_factor" => new SimValue(utility ? PowerFactor : 0, "1"),
            "frequency" => new SimValue(utility ? 50 : 0, "Hz"),
            "energy" or "energy_import" or "import_energy" or "energy_total" or "active_energy" => new SimValue(tariff == 1 ? energyKwh : 0, "kW.h"),
            "energy_export" or "export_energy" => new SimValue(0, "kW.h"),
            _ => default,
        };
        return value.Unit is not null;
    }

    /// <summary>
    /// A sensor's own health (<c>net.sensor_status</c>), the same words for a comm status and an alarm status column: each
    /// column takes the first word that is one of its labels (PowerNet-MIB's uioSensorStatusCommStatus commsOK/commsLost,
    /// uioSensorStatusAlarmStatus uioNormal/uioWarning/uioCritical/sensorStatusNotApplicable), then one a label contains.
    /// A rack's inlet probe (<paramref name="probe"/>'s rack) reads lost after <c>probe-lost</c> (comms lost, alarm not
    /// applicable), else its card's alarm against its thresholds: warning above <see cref="SimRack.ProbeHighThresholdC"/>,
    /// critical <see cref="SimRack.ProbeCriticalMarginK"/> above it (compared with the probe's reading, as the card does). A
    /// rack device's sensors (null) always read ok.
    /// </summary>
    private static bool TrySensor(SimRack? probe, string quantity, out SimValue value)
    {
        if (quantity != "sensor_status")
        {
            value = default;
            return false;
        }

        var reading = probe?.InletSensor.Reading ?? double.NegativeInfinity;
        var high = probe?.ProbeHighThresholdC ?? double.PositiveInfinity;
        value = probe is { ProbeLost: true } ? new SimValue(4, "1", "commsLost|sensorStatusNotApplicable|lost|fault")
            : reading > high + SimRack.ProbeCriticalMarginK ? new SimValue(3, "1", "commsOK|uioCritical|critical|alarm")
            : reading > high ? new SimValue(2, "1", "commsOK|uioWarning|warning|alarm")
            : new SimValue(1, "1", "commsOK|uioNormal|ok|normal");
        return true;
    }

    /// <summary>
    /// A disconnected probe's readings: PowerNet-MIB's "no reading" convention, -1 for the temperature and the humidity
    /// (uioSensorStatusTemperatureDegC, uioSensorStatusHumidity: "-1 indicates an invalid reading due to lost
    /// communications"), which the apc-uio-probe profile publishes as no reading (its row_status: commsLost, as served beside
    /// them; its <c>min: 0</c> would flag the -1 out of range anyway).
    /// </summary>
    private static bool TryLostProbe(string quantity, out SimValue value)
    {
        value = quantity switch
        {
            "temperature" or "sensor_temperature" or "inlet_temperature" or "inlet_temp" or "temperature_inlet" => new SimValue(-1, "Cel"),
            "humidity" or "inlet_humidity" => new SimValue(-1, "%"),
            _ => default,
        };
        return value.Unit is not null;
    }

    private static bool TryRoom(SimRoom room, string quantity, out SimValue value)
    {
        value = quantity switch
        {
            "temperature" => new SimValue(room.TemperatureC, "Cel"),
            "humidity" => new SimValue(Humidity(room.TemperatureC), "%"),
            _ => default,
        };
        return value.Unit is not null;
    }

    // Absolute humidity stays put, so relative humidity falls as air warms (about 3 % RH per kelvin here).
    private static double Humidity(double temperatureC) => Math.Clamp(45 - (3 * (temperatureC - 22)), 5, 95);
}
