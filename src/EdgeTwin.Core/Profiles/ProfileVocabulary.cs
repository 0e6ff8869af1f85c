using EdgeTwin.Core.Config;

namespace EdgeTwin.Core.Profiles;

/// <summary>
/// The units and roles a profile metric is expected to use: the one list the loader warns against (device-profiles/README.md
/// documents the same). Both stay free text — a file with another spelling still loads — but the twin, the simulator and
/// the centre understand only these, so anything else is named with a did-you-mean.
/// </summary>
public static class ProfileVocabulary
{
    /// <summary>The documented UCUM-style units (the value's unit after scale/offset).</summary>
    public static IReadOnlyList<string> Units { get; } =
    [
        "1", "%", "Cel", "K", "[degF]", "V", "kV", "mA", "A", "W", "kW", "MW", "VA", "kVA", "var", "kvar", "W.h", "kW.h", "MW.h",
        "Hz", "ms", "s", "min", "h", "d", "By", "bit/s", "Mbit/s", "Pa", "hPa", "kPa", "bar", "mm/s", "m/s", "/min", "m3/h", "m3/s",
    ];

    /// <summary>
    /// The roles of each known area: what the twin (thermal map, set-point control, maintenance model), the demo and the
    /// simulator look metrics up by, and what the shipped profiles use. A role in another area is a custom one and is
    /// not checked.
    /// </summary>
    public static IReadOnlyDictionary<string, IReadOnlyList<string>> Roles { get; } = BuildRoles();

    // Common spellings whose documented form is not a case or one-letter change away (°C → Cel, kWh → kW.h).
    private static readonly Dictionary<string, string> UnitAliases = new(StringComparer.OrdinalIgnoreCase)
    {
        ["°C"] = "Cel", ["℃"] = "Cel", ["C"] = "Cel", ["degC"] = "Cel", ["deg C"] = "Cel", ["celsius"] = "Cel",
        ["°F"] = "[degF]", ["degF"] = "[degF]", ["fahrenheit"] = "[degF]",
        ["Wh"] = "W.h", ["kWh"] = "kW.h", ["MWh"] = "MW.h",
        ["watt"] = "W", ["watts"] = "W", ["kilowatt"] = "kW", ["kilowatts"] = "kW",
        ["volt"] = "V", ["volts"] = "V", ["amp"] = "A", ["amps"] = "A", ["ampere"] = "A", ["hertz"] = "Hz",
        ["VAr"] = "var", ["kVAr"] = "kvar",
        ["sec"] = "s", ["secs"] = "s", ["seconds"] = "s", ["mins"] = "min", ["minutes"] = "min", ["hr"] = "h", ["hrs"] = "h", ["hours"] = "h",
        ["percent"] = "%", ["%RH"] = "%", ["RH"] = "%",
        ["byte"] = "By", ["bytes"] = "By", ["bps"] = "bit/s", ["Mbps"] = "Mbit/s", ["mbar"] = "hPa",
        ["rpm"] = "/min", ["{rpm}"] = "/min", ["1/min"] = "/min",
    };

    private static readonly HashSet<string> UnitSet = new(Units, StringComparer.Ordinal);

    /// <summary>True when <paramref name="unit"/> is one of <see cref="Units"/> (exact spelling).</summary>
    public static bool IsKnownUnit(string unit) => UnitSet.Contains(unit);

    /// <summary>The documented unit <paramref name="unit"/> probably means, or null when none is close.</summary>
    public static string? SuggestUnit(string unit)
    {
        ArgumentNullException.ThrowIfNull(unit);
        var trimmed = unit.Trim();
        if (UnitSet.Contains(trimmed))
        {
            return trimmed;
        }

        if (UnitAliases.TryGetValue(trimmed, out var alias))
        {
            return alias;
        }

        return Units.FirstOrDefault(u => string.Equals(u, trimmed, StringComparison.OrdinalIgnoreCase))
            ?? ConfigReader.Closest(trimmed, Units);
    }

    /// <summary>
    /// The warning for <paramref name="unit"/>, or null when it is documented:
    /// <c>unknown unit 'kWh' (did you mean 'kW.h'?); …</c>.
    /// </summary>
    public static string? UnitWarning(string unit)
    {
        ArgumentNullException.ThrowIfNull(unit);
        if (IsKnownUnit(unit))
        {
            return null;
        }

        var hint = SuggestUnit(unit) is { } s ? $"did you mean '{s}'?" : "documented units: " + string.Join(", ", Units);
        return $"unknown unit '{unit}' ({hint}); it is kept as written, but the twin and the centre understand only the units in device-profiles/README.md";
    }

    /// <summary>
    /// The warning for <paramref name="role"/> (<c>area.quantity</c>), or null when it is known or in an area of its own:
    /// <c>unknown role 'meter.frequncy' (did you mean 'meter.frequency'?); …</c>.
    /// </summary>
    public static string? RoleWarning(string role)
    {
        ArgumentNullException.ThrowIfNull(role);
        var dot = role.IndexOf('.', StringComparison.Ordinal);
        if (dot <= 0 || !Roles.TryGetValue(role[..dot], out var quantities))
        {
            return null;
        }

        var area = role[..dot];
        var quantity = role[(dot + 1)..];
        if (quantities.Contains(quantity, StringComparer.Ordinal))
        {
            return null;
        }

        var hint = ConfigReader.Closest(quantity, quantities) is { } s
            ? $"did you mean '{area}.{s}'?"
            : $"known {area}. roles: {string.Join(", ", quantities)}";
        return $"unknown role '{role}' ({hint}); the twin and the simulator look metrics up by role, so this metric feeds none of them";
    }

    private static Dictionary<string, IReadOnlyList<string>> BuildRoles()
    {
        // What the thermal twin (Agent/Twin/Thermal/ThermalSeriesMap) and set-point control (Agent/Twin/Setpoints) read
        // of a cooling unit, under any of the areas the thermal map accepts for one.
        string[] coolingUnit =
        [
            "running", "state", "unit_state", "fan_running", "fan_speed", "supply_temperature", "supply_air_temperature",
            "return_temperature", "return_air_temperature", "air_temperature", "supply_setpoint", "supply_temperature_setpoint",
            "temperature_setpoint", "setpoint", "fan_speed_setpoint", "fan_setpoint",
        ];
        return new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal)
        {
            ["rack"] = ["inlet_temperature", "inlet_humidity", "inlet_dew_point", "outlet_temperature", "door_open", "door_changes", "power", "it_power"],
            ["pdu"] =
            [
                "power", "apparent_power", "power_factor", "energy", "current", "voltage", "frequency", "load_state", "phase_current",
                "phase_voltage", "phase_power", "breaker_current", "outlet_current", "outlet_power", "outlet_energy",
            ],
            ["ups"] =
            [
                "battery_status", "battery_charge", "battery_voltage", "battery_current", "battery_temperature", "battery_replace",
                "runtime_remaining", "seconds_on_battery", "input_voltage", "input_current", "input_frequency", "input_power",
                "input_line_bads", "output_source", "output_voltage", "output_current", "output_power", "output_frequency", "load", "alarms",
            ],
            ["crac"] = [.. coolingUnit, "cooling", "alarm", "capacity_utilization", "humidity"],
            ["crah"] = coolingUnit,
            ["cooling"] = coolingUnit,
            ["machine"] =
            [
                "running", "fault", "warning", "fault_code", "speed_ratio", "frequency_ratio", "motor_current", "torque", "power",
                "dc_voltage", "drive_temperature_ratio", "motor_temperature", "packml_state", "good_count", "reject_count", "cycle_time",
                "stop_reason", "process_temperature", "process_pressure", "spindle_load", "infeed_buffer_level", "stack_light_lamp",
                "stack_light_changes",

                // The maintenance model's bearing features (Agent/Twin/Models/MaintenanceStage).
                "vibration_rms", "vibration", "vibration_velocity", "vibration_kurtosis", "kurtosis", "bearing_temperature",
            ],
            ["meter"] =
            [
                "voltage", "voltage_ll", "current", "current_avg", "neutral_current", "power", "power_factor", "power_total",
                "apparent_power_total", "reactive_power_total", "power_factor_total", "frequency", "energy_import", "energy_export",
                "energy_total", "pulses", "power_from_pulses",
            ],
            ["net"] =
            [
                "in_bytes", "out_bytes", "in_utilization", "out_utilization", "in_errors", "out_errors", "in_discards", "admin_status", "oper_status", "speed", "uptime", "device_temperature",
                "sensor_status", "sensor_precision",
            ],
            ["room"] = ["temperature", "humidity", "pressure", "leak", "leak_changes"],
            ["gateway"] =
            [
                "cpu_temperature", "clock_synchronized", "clock_max_error", "disk_free", "disk_free_percent", "inodes_free",
                "inodes_free_percent", "memory_available", "memory_available_percent", "load_1m", "load_5m", "cpus", "uptime",
            ],
        };
    }
}
