using System.CommandLine;
using System.Globalization;
using EdgeTwin.Simulator.Line;
using EdgeTwin.Simulator.Physics;

namespace EdgeTwin.Agent.Line;

/// <summary>
/// The simulated line's options, one definition for <c>edgetwin sim</c> and <c>edgetwin demo</c>: <c>--line</c> (serve a
/// line of <see cref="DefaultStations"/> stations), <c>--line-stations N</c> (0 = no line) and, for the demo (one
/// process, so the lamps can be wired to the agent's GPIO inputs), <c>--stack-light STATION</c>.
/// </summary>
internal sealed class LineSimOptions
{
    public const int DefaultStations = 4;

    private readonly int _defaultStations;

    /// <param name="defaultStations">Stations when neither <c>--line</c> nor <c>--line-stations</c> is given (the demo: 4, sim: 0).</param>
    /// <param name="stackLights">Offer <c>--stack-light</c> (in-process GPIO), defaulting to <paramref name="defaultStackLight"/>.</param>
    public LineSimOptions(int defaultStations, bool stackLights, string? defaultStackLight = null)
    {
        _defaultStations = defaultStations;
        Line = new Option<bool>("--line") { Description = $"Serve a simulated packaging line ({DefaultStations} stations, a PackML PLC each over Modbus TCP) and its line: section." };
        Stations = new Option<int?>("--line-stations") { Description = $"Stations of the simulated line (2–20; 0 = no line; default {(defaultStations == 0 ? "none unless --line" : defaultStations.ToString(CultureInfo.InvariantCulture))})." };
        Stations.Validators.Add(r =>
        {
            if (r.GetValue(Stations) is { } n && n != 0 && (n < 2 || n > 20))
            {
                r.AddError($"--line-stations {n}: a line has 2 to 20 stations (0 = none)");
            }
        });
        if (stackLights)
        {
            StackLights = new Option<string[]>("--stack-light")
            {
                Description = "Station whose state the agent reads from its stack light on (simulated) GPIO inputs instead of its PLC's state word (repeatable; 'none' for none).",
                AllowMultipleArgumentsPerToken = false,
                DefaultValueFactory = _ => defaultStackLight is null ? [] : [defaultStackLight],
            };
        }
    }

    public Option<bool> Line { get; }

    public Option<int?> Stations { get; }

    public Option<string[]>? StackLights { get; }

    public void AddTo(Command command)
    {
        ArgumentNullException.ThrowIfNull(command);
        command.Options.Add(Line);
        command.Options.Add(Stations);
        if (StackLights is not null)
        {
            command.Options.Add(StackLights);
        }
    }

    /// <summary>Stations of the line to simulate (0 = none).</summary>
    public int StationsFrom(ParseResult parse)
    {
        ArgumentNullException.ThrowIfNull(parse);
        return parse.GetValue(Stations) ?? (parse.GetValue(Line) ? DefaultStations : _defaultStations);
    }

    /// <summary>The stations with a stack light (none without a line, or with <c>--stack-light none</c>).</summary>
    public IReadOnlyList<string> StackLightsFrom(ParseResult parse)
    {
        ArgumentNullException.ThrowIfNull(parse);
        if (StackLights is null || StationsFrom(parse) == 0)
        {
            return [];
        }

        var given = parse.GetValue(StackLights) ?? [];
        return given.Any(s => string.Equals(s, "none", StringComparison.OrdinalIgnoreCase)) ? [] : [.. given.Distinct(StringComparer.Ordinal)];
    }

    /// <summary>One status line of the simulated line (its true state): per station state and good parts, buffer levels.</summary>
    public static string Status(SimulatedSite site)
    {
        ArgumentNullException.ThrowIfNull(site);
        if (site.Line is not { } line)
        {
            return "";
        }

        lock (site.SyncRoot)
        {
            var stations = string.Join("  ", line.Spec.Stations.Select((s, i) => string.Create(CultureInfo.InvariantCulture, $"{s.Id} {line.State(i).ToString().ToLowerInvariant()} {line.Good(i)}")));
            var buffers = string.Join(" ", Enumerable.Range(0, line.Spec.BufferCapacities.Count).Select(b => string.Create(CultureInfo.InvariantCulture, $"B{b + 1} {line.BufferLevel(b)}/{line.Spec.BufferCapacities[b]}")));
            return $"line {line.Spec.Id}: {stations}; buffers {buffers}";
        }
    }
}
