using System.Buffers;
using System.Globalization;
using System.Text.Json;
using EdgeTwin.Agent.Line;
using EdgeTwin.Agent.Twin.Thermal;
using EdgeTwin.Twin.Line;
using EdgeTwin.Twin.Line.Scenarios;
using EdgeTwin.Twin.Optimisation;
using EdgeTwin.Twin.Scenarios;
using EdgeTwin.Twin.Thermal;

namespace EdgeTwin.Agent.Twin.Requests;

/// <summary>Error codes of a twin request's error response (README.md lists them).</summary>
internal static class TwinRequestErrors
{
    public const string UnknownScenario = "unknown_scenario";
    public const string MalformedRequest = "malformed_request";
    public const string InvalidField = "invalid_field";
    public const string NotCalibrated = "not_calibrated";
    public const string NoTwin = "no_twin";
    public const string UnknownElement = "unknown_element";
    public const string Busy = "busy";
    public const string Timeout = "timeout";
    public const string Internal = "internal";
}

/// <summary>A request that cannot be answered with a result: an error code, the message and the field it concerns.</summary>
internal sealed class TwinRequestException(string code, string message, string? field = null) : Exception(message)
{
    public string Code { get; } = code;

    public string? Field { get; } = field;
}

/// <summary>The answer to one request: the result's JSON (as the CLI's <c>--json</c> prints it) or an error.</summary>
internal sealed record TwinReply(string Scenario, string Json, string? Code = null, string? Error = null)
{
    public bool Ok => Code is null;

    public static TwinReply Failure(string scenario, string code, string message, string? field = null) =>
        new(scenario, TwinScenarios.Json(new ErrorBody(scenario, code, message, field)), code, message);

    private sealed record ErrorBody(
        [property: System.Text.Json.Serialization.JsonPropertyName("scenario")] string Scenario,
        [property: System.Text.Json.Serialization.JsonPropertyName("code")] string Code,
        [property: System.Text.Json.Serialization.JsonPropertyName("error")] string Error,
        [property: System.Text.Json.Serialization.JsonPropertyName("field")] string? Field)
    {
        [System.Text.Json.Serialization.JsonPropertyName("status")]
        public string Status => "error";
    }
}

/// <summary>
/// Parses a request payload (JSON object with the CLI's options as snake_case fields) and runs the scenario on the live
/// calibrated twin. Synchronous and CPU-bound: the server runs it off the MQTT receive thread. Never throws for a bad
/// request; every problem becomes an error reply naming the field.
/// </summary>
internal static class TwinRequestHandler
{
    public const string CoolingFailure = "cooling_failure";
    public const string CoolingWindow = "cooling_maintenance_window";
    public const string AddRack = "add_rack";
    public const string LoadChange = "load_change";
    public const string FeedFailure = "feed_failure";
    public const string Capacity = "capacity";
    public const string OptimizeCooling = "optimize_cooling";
    public const string MachineDown = "machine_down";
    public const string MaintenanceWindow = "maintenance_window";
    public const string BufferChange = "buffer_change";
    public const string CycleTimeChange = "cycle_time_change";

    private const int MaxReplications = 1000;

    /// <summary>Scenario → the fields its payload may hold.</summary>
    public static readonly IReadOnlyDictionary<string, string[]> Fields = new Dictionary<string, string[]>(StringComparer.Ordinal)
    {
        [CoolingFailure] = ["units", "horizon_min", "non_critical", "lead_min"],
        [CoolingWindow] = ["units", "minutes", "step_min", "within_h", "non_critical", "precool_min"],
        [AddRack] = ["kw", "zone", "row", "next_to", "feeds"],
        [LoadChange] = ["rack", "delta_kw"],
        [FeedFailure] = ["element"],
        [Capacity] = ["confidence"],
        [OptimizeCooling] = ["margin"],
        [MachineDown] = ["station", "minutes", "start_in_min", "replications"],
        [MaintenanceWindow] = ["station", "minutes", "step_min", "replications"],
        [BufferChange] = ["buffer", "capacity", "replications"],
        [CycleTimeChange] = ["station", "cycle_s", "replications"],
    };

    /// <summary>Whether the scenario runs on the line twin (else on the thermal twin).</summary>
    public static bool IsLineScenario(string scenario) => scenario is MachineDown or MaintenanceWindow or BufferChange or CycleTimeChange;

    /// <summary>The scenario named by the topic's last level, or null when it is not one of <see cref="Fields"/>.</summary>
    public static string? ScenarioOf(string topic)
    {
        var name = topic[(topic.LastIndexOf('/') + 1)..];
        return Fields.ContainsKey(name) ? name : null;
    }

    public static TwinReply Handle(string scenario, ReadOnlySequence<byte> payload, ThermalTwinStage? stage, LineTwinStage? line = null)
    {
        if (!Fields.TryGetValue(scenario, out var allowed))
        {
            return TwinReply.Failure(scenario, TwinRequestErrors.UnknownScenario, $"unknown scenario '{scenario}' (known: {string.Join(", ", Fields.Keys)})");
        }

        try
        {
            using var doc = Parse(payload);
            var args = new Args(doc.RootElement, allowed);
            if (IsLineScenario(scenario))
            {
                return new TwinReply(scenario, HandleLine(scenario, args, line));
            }

            // Fields first, so a malformed request is reported as such even before the twin is calibrated.
            // The zones a request needs calibrated (null: all): a cooling_failure asks only about its units' rooms, an
            // add_rack in a named room or next to a rack and a load_change only about that rack's room.
            Func<ThermalZone, bool>? needs = null;
            Func<SiteTwin, string> run = scenario switch
            {
                CoolingFailure => CoolingFailureRun(args, out needs),
                CoolingWindow => CoolingWindowRun(args, out needs),
                AddRack => AddRackRun(args, out needs),
                LoadChange => LoadChangeRun(args, out needs),
                FeedFailure => FeedFailureRun(args),
                Capacity => CapacityRun(args, stage),
                _ => OptimizeRun(args),
            };
            if (stage is null)
            {
                throw new TwinRequestException(TwinRequestErrors.NoTwin, "the agent runs no thermal twin (thermal_twin.enabled is false)");
            }

            if (stage.CurrentTwin(out var notReady, needs) is not { } twin)
            {
                throw new TwinRequestException(TwinRequestErrors.NotCalibrated, notReady ?? "the thermal twin is not ready");
            }

            return new TwinReply(scenario, run(twin));
        }
        catch (TwinRequestException e)
        {
            return TwinReply.Failure(scenario, e.Code, e.Message, e.Field);
        }
        catch (ArgumentException e)
        {
            // The scenarios name unknown units, racks, zones and feeds this way.
            return TwinReply.Failure(scenario, TwinRequestErrors.UnknownElement, TwinScenarios.Reason(e), e.ParamName is { } f ? Snake(f) : null);
        }
    }

    private static string HandleLine(string scenario, Args a, LineTwinStage? line)
    {
        // Fields first, as for the thermal scenarios.
        Func<LineScenarioBasis, string> run = scenario switch
        {
            MachineDown => MachineDownRun(a),
            MaintenanceWindow => MaintenanceWindowRun(a),
            BufferChange => BufferChangeRun(a),
            _ => CycleTimeChangeRun(a),
        };
        if (line is null)
        {
            throw new TwinRequestException(TwinRequestErrors.NoTwin, "the agent runs no line twin (the site config has no line: section)");
        }

        if (line.ScenarioBasis is not { } basis)
        {
            throw new TwinRequestException(TwinRequestErrors.NotCalibrated, "the line twin has not published its first state yet (it does one publish period after the first machine reading, inside a shift of its calendar)");
        }

        return run(basis);
    }

    private static Func<LineScenarioBasis, string> MachineDownRun(Args a)
    {
        var station = a.String("station", required: true)!;
        var minutes = a.Number("minutes", null, min: double.Epsilon, max: 24 * 60);
        var startIn = a.Number("start_in_min", 0, min: 0, max: 24 * 60);
        var reps = a.Integer("replications", 100, min: 2, max: MaxReplications);
        return b =>
        {
            Station(b, station, MachineDown);
            if (startIn * 60 >= b.RemainingSeconds)
            {
                throw Outside("start_in_min", startIn, b);
            }

            var r = b.Scenarios(reps).MachineDown(b.Now, station, minutes * 60, startIn * 60);
            return LineScenarioJson.MachineDown(b.LineId, b.Now.ElapsedSeconds / 60, station, minutes, startIn, r, b.MarginPerUnit);
        };
    }

    private static Func<LineScenarioBasis, string> MaintenanceWindowRun(Args a)
    {
        var station = a.String("station", required: true)!;
        var minutes = a.Number("minutes", null, min: double.Epsilon, max: 24 * 60);
        var step = a.Number("step_min", 15, min: 1, max: 24 * 60);
        // Each candidate start costs a full set of replications: fewer by default, as the CLI.
        var reps = a.Integer("replications", 40, min: 2, max: MaxReplications);
        return b =>
        {
            Station(b, station, MaintenanceWindow);
            if (minutes * 60 > b.RemainingSeconds)
            {
                throw Outside("minutes", minutes, b);
            }

            var r = b.Scenarios(reps).MaintenanceWindow(b.Now, station, minutes * 60, step * 60);
            return LineScenarioJson.MaintenanceWindow(b.LineId, b.Now.ElapsedSeconds / 60, minutes, r, b.MarginPerUnit);
        };
    }

    private static Func<LineScenarioBasis, string> BufferChangeRun(Args a)
    {
        var buffer = a.String("buffer", required: true)!;
        // The line model needs room for one part (LineSpec.Validate): 0 would fail in the simulator as an "unknown element".
        var capacity = a.Integer("capacity", null, min: 1, max: 1_000_000);
        var reps = a.Integer("replications", 100, min: 2, max: MaxReplications);
        return b =>
        {
            if (!b.Line.Buffers.Any(x => x.Id == buffer))
            {
                throw new TwinRequestException(TwinRequestErrors.UnknownElement, $"{BufferChange}: unknown buffer '{buffer}' in line {b.LineId} (known: {string.Join(", ", b.Line.Buffers.Select(x => x.Id))})", "buffer");
            }

            var r = b.Scenarios(reps).BufferChange(b.Now, buffer, capacity);
            return LineScenarioJson.BufferChange(b.LineId, b.Now.ElapsedSeconds / 60, buffer, capacity, r, b.MarginPerUnit);
        };
    }

    private static Func<LineScenarioBasis, string> CycleTimeChangeRun(Args a)
    {
        var station = a.String("station", required: true)!;
        var cycle = a.Number("cycle_s", null, min: double.Epsilon, max: 86_400);
        var reps = a.Integer("replications", 100, min: 2, max: MaxReplications);
        return b =>
        {
            Station(b, station, CycleTimeChange);
            var r = b.Scenarios(reps).CycleTimeChange(b.Now, station, cycle);
            return LineScenarioJson.CycleTimeChange(b.LineId, b.Now.ElapsedSeconds / 60, station, cycle, r, b.MarginPerUnit);
        };
    }

    private static void Station(LineScenarioBasis b, string station, string scenario)
    {
        if (!b.Line.Stations.Any(x => x.Id == station))
        {
            throw new TwinRequestException(TwinRequestErrors.UnknownElement, $"{scenario}: unknown station '{station}' in line {b.LineId} (known: {string.Join(", ", b.Line.Stations.Select(x => x.Id))})", "station");
        }
    }

    private static TwinRequestException Outside(string field, double minutes, LineScenarioBasis b) =>
        new(TwinRequestErrors.InvalidField, string.Create(CultureInfo.InvariantCulture, $"field '{field}': {minutes} min does not fit in the {b.RemainingSeconds / 60:0.#} min left in the shift of line {b.LineId}"), field);

    private static JsonDocument Parse(ReadOnlySequence<byte> payload)
    {
        if (payload.IsEmpty)
        {
            return JsonDocument.Parse("{}");
        }

        // A string with invalid UTF-8 parses, then throws InvalidOperationException when read: an "internal" failure
        // with a stack in the log instead of the requester's malformed request (found by fuzzing).
        if (EdgeTwin.Core.Utf8Text.InvalidAt(payload) is { } bad)
        {
            throw new TwinRequestException(TwinRequestErrors.MalformedRequest, string.Create(CultureInfo.InvariantCulture, $"payload is not UTF-8 (invalid byte at offset {bad})"));
        }

        try
        {
            var doc = JsonDocument.Parse(payload, new JsonDocumentOptions { MaxDepth = 16 });
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                var kind = doc.RootElement.ValueKind;
                doc.Dispose();
                throw new TwinRequestException(TwinRequestErrors.MalformedRequest, $"payload: expected a JSON object, got {Describe(kind)}");
            }

            return doc;
        }
        catch (JsonException e)
        {
            throw new TwinRequestException(TwinRequestErrors.MalformedRequest, $"payload is not valid JSON at line {(e.LineNumber ?? 0) + 1}, byte {(e.BytePositionInLine ?? 0) + 1}: {FirstSentence(e.Message)}");
        }
    }

    private static Func<SiteTwin, string> CoolingFailureRun(Args a, out Func<ThermalZone, bool>? needs)
    {
        var units = a.Ids("units", required: true);
        // Only the rooms of the named units; an unknown unit then fails as unknown_element, not as not_calibrated.
        needs = zone => zone.Units.Any(u => units.Contains(u.Id, StringComparer.Ordinal));
        var horizon = a.Number("horizon_min", 120, min: TwinScenarios.MinHorizonMin, max: TwinScenarios.MaxHorizonMin);
        var nonCritical = a.Ids("non_critical");
        var leads = a.Leads("lead_min");
        return twin => TwinScenarios.PerZoneJson(TwinScenarios.CoolingFailure(twin, units, horizon, nonCritical, leads));
    }

    private static Func<SiteTwin, string> CoolingWindowRun(Args a, out Func<ThermalZone, bool>? needs)
    {
        var units = a.Ids("units", required: true);
        needs = zone => zone.Units.Any(u => units.Contains(u.Id, StringComparer.Ordinal));
        var minutes = a.Number("minutes", null, min: 1, max: CoolingWindowOptions.MaxOutage.TotalMinutes);
        var step = a.Number("step_min", 30, min: TwinScenarios.MinWindowStepMin, max: 24 * 60);
        var within = a.Number("within_h", 24, min: 0, max: CoolingWindowOptions.MaxWithin.TotalHours);
        if (TwinScenarios.TooManyStarts(step, within) is { } tooMany)
        {
            throw new TwinRequestException(TwinRequestErrors.InvalidField, "field 'step_min': " + tooMany, "step_min");
        }

        var nonCritical = a.Ids("non_critical");
        var precool = a.Number("precool_min", CoolingWindowOptions.DefaultPrecoolLead.TotalMinutes, min: 0, max: CoolingWindowOptions.MaxPrecoolLead.TotalMinutes);
        return twin => TwinScenarios.PerZoneJson(TwinScenarios.CoolingWindow(twin, units, minutes, step, within, nonCritical, precool));
    }

    private static Func<SiteTwin, string> AddRackRun(Args a, out Func<ThermalZone, bool>? needs)
    {
        var kw = a.Number("kw", null, min: double.Epsilon, max: TwinScenarios.MaxRackKw);
        var zone = a.String("zone");
        var row = a.String("row");
        var nextTo = a.String("next_to");
        // The search stays in the named room, or the room of next_to; without either it spans every room.
        needs = zone is not null ? z => string.Equals(z.Id, zone, StringComparison.Ordinal)
            : nextTo is not null ? z => z.Racks.Any(r => string.Equals(r.Id, nextTo, StringComparison.Ordinal))
            : null;
        var feeds = a.Has("feeds") ? a.Ids("feeds") : null;
        return twin => TwinScenarios.Json(CapacityScenarios.AddRack(twin, kw, zone, nextTo, feeds, row: row));
    }

    private static Func<SiteTwin, string> LoadChangeRun(Args a, out Func<ThermalZone, bool>? needs)
    {
        var rack = a.String("rack", required: true)!;
        needs = z => z.Racks.Any(r => string.Equals(r.Id, rack, StringComparison.Ordinal));
        var delta = a.Number("delta_kw", null, min: -TwinScenarios.MaxRackKw, max: TwinScenarios.MaxRackKw);
        return twin => TwinScenarios.Json(CapacityScenarios.LoadChange(twin, rack, delta));
    }

    private static Func<SiteTwin, string> FeedFailureRun(Args a)
    {
        var element = a.String("element", required: true)!;
        return twin => TwinScenarios.Json(CapacityScenarios.FeedFailure(twin, element));
    }

    private static Func<SiteTwin, string> CapacityRun(Args a, ThermalTwinStage? stage)
    {
        var confidence = a.Number("confidence", 0.9, min: 0.5, max: 0.99);
        return twin =>
        {
            try
            {
                return TwinScenarios.Json(TwinScenarios.Capacity(twin, stage!.WindowFrames(), confidence));
            }
            catch (ArgumentException e)
            {
                // Too short a history is a state of the twin, not a bad request.
                throw new TwinRequestException(TwinRequestErrors.NotCalibrated, "capacity: " + TwinScenarios.Reason(e));
            }
        };
    }

    private static Func<SiteTwin, string> OptimizeRun(Args a)
    {
        var margin = a.Number("margin", CoolingOptimiser.DefaultMarginK, min: TwinScenarios.MinMarginK, max: TwinScenarios.MaxMarginK);
        return twin => TwinScenarios.PerZoneJson(TwinScenarios.OptimizeCooling(twin, margin));
    }

    private static string Snake(string name) =>
        string.Concat(name.Select((c, i) => char.IsUpper(c) ? (i > 0 ? "_" : "") + char.ToLowerInvariant(c) : c.ToString()));

    private static string FirstSentence(string message)
    {
        var cut = message.IndexOf(" Path:", StringComparison.Ordinal);
        return cut > 0 ? message[..cut] : message;
    }

    private static string Describe(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Null => "null",
        _ => kind.ToString(),
    };

    /// <summary>Typed access to the payload's fields; each problem throws naming the field.</summary>
    private sealed class Args
    {
        private readonly JsonElement _root;

        public Args(JsonElement root, string[] allowed)
        {
            _root = root;
            foreach (var p in root.EnumerateObject())
            {
                if (!allowed.Contains(p.Name, StringComparer.Ordinal))
                {
                    throw new TwinRequestException(TwinRequestErrors.InvalidField, $"field '{p.Name}': unknown (expected {string.Join(", ", allowed)})", p.Name);
                }
            }
        }

        public bool Has(string name) => _root.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null;

        public double Number(string name, double? fallback, double min, double max)
        {
            if (!Has(name))
            {
                return fallback ?? throw Invalid(name, "required");
            }

            var v = _root.GetProperty(name);
            if (v.ValueKind != JsonValueKind.Number || !v.TryGetDouble(out var d) || !double.IsFinite(d))
            {
                throw Invalid(name, $"expected a number, got {Describe(v.ValueKind)}");
            }

            if (d < min || d > max)
            {
                throw Invalid(name, string.Create(CultureInfo.InvariantCulture, $"{d} is outside {(min == double.Epsilon ? "> 0" : min.ToString(CultureInfo.InvariantCulture))}..{max}"));
            }

            return d;
        }

        public int Integer(string name, int? fallback, int min, int max)
        {
            var d = Number(name, fallback, min, max);
            return d == Math.Floor(d) ? (int)d : throw Invalid(name, string.Create(CultureInfo.InvariantCulture, $"expected a whole number, got {d}"));
        }

        public string? String(string name, bool required = false)
        {
            if (!Has(name))
            {
                return required ? throw Invalid(name, "required") : null;
            }

            var v = _root.GetProperty(name);
            if (v.ValueKind != JsonValueKind.String || v.GetString() is not { Length: > 0 } s)
            {
                throw Invalid(name, v.ValueKind == JsonValueKind.String ? "may not be empty" : $"expected a string, got {Describe(v.ValueKind)}");
            }

            return s;
        }

        /// <summary>An array of ids or one comma-separated string, like the repeatable CLI option.</summary>
        public IReadOnlyList<string> Ids(string name, bool required = false)
        {
            if (!Has(name))
            {
                return required ? throw Invalid(name, "required") : [];
            }

            var v = _root.GetProperty(name);
            var values = new List<string>();
            if (v.ValueKind == JsonValueKind.String)
            {
                values.Add(v.GetString()!);
            }
            else if (v.ValueKind == JsonValueKind.Array)
            {
                var i = 0;
                foreach (var item in v.EnumerateArray())
                {
                    if (item.ValueKind != JsonValueKind.String)
                    {
                        throw Invalid(name, $"item {i}: expected a string, got {Describe(item.ValueKind)}");
                    }

                    values.Add(item.GetString()!);
                    i++;
                }
            }
            else
            {
                throw Invalid(name, $"expected an array of strings or a comma-separated string, got {Describe(v.ValueKind)}");
            }

            var ids = TwinScenarios.Ids(values);
            return required && ids.Count == 0 ? throw Invalid(name, "needs at least one id") : ids;
        }

        /// <summary>An object of mitigation actions and their time to take effect in minutes (<c>{"open_containment": 10}</c>).</summary>
        public Dictionary<string, double> Leads(string name)
        {
            var leads = new Dictionary<string, double>(StringComparer.Ordinal);
            if (!Has(name))
            {
                return leads;
            }

            var v = _root.GetProperty(name);
            if (v.ValueKind != JsonValueKind.Object)
            {
                throw Invalid(name, $"expected an object of mitigation actions and minutes, got {Describe(v.ValueKind)}");
            }

            foreach (var p in v.EnumerateObject())
            {
                if (p.Value.ValueKind != JsonValueKind.Number || !p.Value.TryGetDouble(out var minutes))
                {
                    throw Invalid(name, $"{p.Name}: expected a number of minutes, got {Describe(p.Value.ValueKind)}");
                }

                if (TwinScenarios.LeadProblem(p.Name, minutes) is { } problem)
                {
                    throw Invalid(name, problem);
                }

                leads[p.Name] = minutes;
            }

            return leads;
        }

        private static TwinRequestException Invalid(string name, string problem) =>
            new(TwinRequestErrors.InvalidField, $"field '{name}': {problem}", name);
    }
}
