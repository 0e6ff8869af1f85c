using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace EdgeTwin.Core.Config;

/// <summary>What <c>edgetwin check</c> found.</summary>
/// <param name="File">The config file as given.</param>
/// <param name="Problems">Every problem, in file order; empty when the config is valid.</param>
/// <param name="Config">The loaded config when valid.</param>
/// <param name="ProfileDirectories">Where profiles were looked up.</param>
public sealed record ConfigCheckReport(string File, IReadOnlyList<ConfigDiagnostic> Problems, SiteConfig? Config, IReadOnlyList<string> ProfileDirectories)
{
    /// <summary>What the valid config's owned sections set up, one phrase each (<see cref="IConfigSectionValidator.Describe"/>), in validator order.</summary>
    public IReadOnlyList<string> Sections { get; init; } = [];

    /// <summary>Warnings (printed, but they do not fail the check), in file order.</summary>
    public IReadOnlyList<ConfigDiagnostic> Warnings { get; init; } = [];

    /// <summary>True when the config is valid.</summary>
    public bool Ok => Problems.Count == 0 && Config is not null;

    /// <summary>Process exit code: 0 when valid, 1 otherwise.</summary>
    public int ExitCode => Ok ? 0 : 1;
}

/// <summary>The logic of <c>edgetwin check --config FILE</c>: load, then report for people or as JSON.</summary>
public static class ConfigCheck
{
    /// <summary>Loads and validates <paramref name="path"/>.</summary>
    public static ConfigCheckReport Run(string path, SiteConfigLoadOptions? options = null)
    {
        var result = SiteConfigLoader.Load(path, options);
        var sections = new List<string>();
        if (result.Config is { } config && result.Problems.Count == 0)
        {
            // Sections such as line: are read by their owners, so only they can say what the section sets up.
            foreach (var validator in options?.SectionValidators ?? [])
            {
                if (config.Sections.TryGetValue(validator.Section, out var section) && validator.Describe(new ConfigReader(section, new ConfigDiagnostics())) is { } text)
                {
                    sections.Add(text);
                }
            }
        }

        return new ConfigCheckReport(path, result.Problems, result.Config, result.ProfileDirectories) { Sections = sections, Warnings = result.Warnings };
    }

    /// <summary>
    /// One line per problem and per warning (<c>FILE:LINE:COL: warning: …</c>), in file order, then a last line:
    /// <c>FAILED: …</c> or the one-line <c>OK: …</c> summary (ending <c>; N warnings</c> when there are any).
    /// </summary>
    public static void WriteText(ConfigCheckReport report, TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(report);
        ArgumentNullException.ThrowIfNull(output);
        foreach (var p in ConfigDiagnostics.SortByPosition(report.Problems.Concat(report.Warnings)))
        {
            output.WriteLine(p.ToString());
        }

        var warnings = report.Warnings.Count == 0 ? "" : "; " + Count(report.Warnings.Count, "warning");
        output.WriteLine(report.Ok
            ? "OK: " + Summary(report) + warnings
            : string.Create(CultureInfo.InvariantCulture, $"FAILED: {report.File}: {Count(report.Problems.Count, "problem")}{warnings}"));
    }

    /// <summary>A JSON object: <c>{"file","ok","problems":[{file,line,column,path,message}],"warnings":[same],"summary"}</c>.</summary>
    public static void WriteJson(ConfigCheckReport report, Stream output)
    {
        ArgumentNullException.ThrowIfNull(report);
        // Relaxed escaping: this is console/script output, never embedded in HTML, and quotes in messages stay readable.
        using var w = new Utf8JsonWriter(output, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
        w.WriteStartObject();
        w.WriteString("file", report.File);
        w.WriteBoolean("ok", report.Ok);
        WriteDiagnostics(w, "problems", report.Problems);
        WriteDiagnostics(w, "warnings", report.Warnings);
        w.WriteStartArray("profile_dirs");
        foreach (var d in report.ProfileDirectories)
        {
            w.WriteStringValue(d);
        }

        w.WriteEndArray();
        if (report.Config is { } c)
        {
            w.WriteStartObject("summary");
            w.WriteString("site", c.Site.Id);
            w.WriteString("gateway", c.Site.GatewayId);
            w.WriteNumber("rooms", c.Site.Rooms.Count);
            w.WriteNumber("racks", c.Site.AllRacks.Count());
            w.WriteNumber("cooling_units", c.Site.CoolingUnits.Count);
            w.WriteNumber("ups", c.Site.Power.Ups.Count);
            w.WriteNumber("pdus", c.Site.Power.Pdus.Count);
            w.WriteNumber("lines", c.Site.Lines.Count);
            w.WriteNumber("machines", c.Site.AllMachines.Count());
            w.WriteNumber("devices", c.Devices.Count);
            w.WriteNumber("devices_enabled", c.Devices.Count(d => d.Enabled));
            w.WriteNumber("profiles", c.Profiles.Count);
            w.WriteNumber("metrics", c.Devices.Where(d => d.Enabled).Sum(d => c.Profiles[d.Profile].Metrics.Count));
            // What the agent announces as config_sha256 (inline secrets redacted), so the centre's value can be reproduced.
            w.WriteString("config_sha256", c.ConfigSha256);
            w.WriteStartArray("sections");
            foreach (var s in report.Sections)
            {
                w.WriteStringValue(s);
            }

            w.WriteEndArray();
            w.WriteEndObject();
        }

        w.WriteEndObject();
        w.Flush();
        output.WriteByte((byte)'\n');
    }

    /// <summary>The one-line summary of a valid config.</summary>
    public static string Summary(ConfigCheckReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        var c = report.Config ?? throw new InvalidOperationException("The config is not valid.");
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"{report.File}: site {c.Site.Id}, gateway {c.Site.GatewayId}: ");
        sb.Append(CultureInfo.InvariantCulture, $"{Count(c.Site.Rooms.Count, "room")}, {Count(c.Site.AllRacks.Count(), "rack")}, ");
        sb.Append(CultureInfo.InvariantCulture, $"{Count(c.Site.CoolingUnits.Count, "cooling unit")}, {c.Site.Power.Ups.Count} UPS, {c.Site.Power.Pdus.Count} PDU{(c.Site.Power.Pdus.Count == 1 ? "" : "s")}, ");
        sb.Append(CultureInfo.InvariantCulture, $"{Count(c.Site.AllMachines.Count(), "machine")}; ");
        sb.Append(CultureInfo.InvariantCulture, $"{Count(c.Devices.Count, "device")} ({c.Devices.Count(d => d.Enabled)} enabled) using {Count(c.Profiles.Count, "profile")}");
        foreach (var s in report.Sections)
        {
            sb.Append("; ").Append(s);
        }

        return sb.ToString();
    }

    private static void WriteDiagnostics(Utf8JsonWriter w, string name, IReadOnlyList<ConfigDiagnostic> items)
    {
        w.WriteStartArray(name);
        foreach (var p in items)
        {
            w.WriteStartObject();
            w.WriteString("file", p.File);
            w.WriteNumber("line", p.Line);
            w.WriteNumber("column", p.Column);
            w.WriteString("path", p.Path);
            w.WriteString("message", p.Message);
            w.WriteEndObject();
        }

        w.WriteEndArray();
    }

    private static string Count(int n, string what) =>
        string.Create(CultureInfo.InvariantCulture, $"{n} {what}{(n == 1 ? "" : "s")}");
}
