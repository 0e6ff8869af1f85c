using System.Text.RegularExpressions;

namespace EdgeTwin.IntegrationTests.Docs;

/// <summary>
/// Every metric a README names (an instrument, <c>`edgetwin.outbox.depth`</c>, the <c>`.cleared`</c> shorthand after one
/// in a Metrics section, or its Prometheus name, <c>`edgetwin_poll_errors_total{device,reason}`</c>) is one the code
/// creates: a dashboard or an alert built from the README must find its series.
/// </summary>
public sealed partial class ReadmeMetricNameTests
{
    [Fact]
    public void Regression_readme_metric_names_the_code_does_not_emit()
    {
        var root = ReadmeSnippets.RepoRoot();
        var source = string.Join('\n', Directory.EnumerateFiles(Path.Combine(root, "src"), "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains("/bin/", StringComparison.Ordinal) && !f.Contains("/obj/", StringComparison.Ordinal))
            .Select(File.ReadAllText));
        var instruments = Instrument().Matches(source).Select(m => m.Groups["name"].Value).ToHashSet(StringComparer.Ordinal);
        // Names the Prometheus collector writes itself (label sets dropped, callback errors).
        var literal = PrometheusLiteral().Matches(source).Select(m => m.Groups[1].Value).ToHashSet(StringComparer.Ordinal);
        Assert.True(instruments.Count > 50, $"only {instruments.Count} instruments found in src/: is the pattern broken?");
        var exposed = instruments.Select(ExposedBase).ToHashSet(StringComparer.Ordinal);

        var failures = new List<string>();
        var named = 0;
        foreach (var file in ReadmeSnippets.Files())
        {
            var lines = File.ReadAllLines(Path.Combine(root, file));
            var inMetrics = false;
            string? last = null;
            for (var i = 0; i < lines.Length; i++)
            {
                var line = lines[i];
                if (line.StartsWith('#'))
                {
                    inMetrics = MetricsHeading().IsMatch(line);
                    last = null;
                }

                foreach (Match m in Backticked().Matches(line))
                {
                    var name = m.Groups["name"].Value;
                    if (PrometheusName().IsMatch(name))
                    {
                        named++;
                        if (!literal.Contains(name) && !IsExposed(name, exposed))
                        {
                            failures.Add($"{file}:{i + 1}: `{name}` is not the Prometheus name of any instrument in src/");
                        }

                        continue;
                    }

                    if (name.StartsWith('.') && inMetrics && last is not null)
                    {
                        // `edgetwin.alerts.raised`, `.cleared`: the shorthand replaces the last part.
                        name = last[..last.LastIndexOf('.')] + name;
                    }
                    else if (InstrumentName().IsMatch(name) && !FileName().IsMatch(name))
                    {
                        last = name;
                    }
                    else
                    {
                        continue;
                    }

                    named++;
                    if (!instruments.Contains(name))
                    {
                        failures.Add($"{file}:{i + 1}: `{name}` is not an instrument any Meter in src/ creates");
                    }
                }
            }
        }

        Assert.True(named > 100, $"only {named} metric names found in the READMEs: is the pattern broken?");
        Assert.True(failures.Count == 0, string.Join('\n', failures));
    }

    /// <summary>The Prometheus name of an instrument without unit and type suffixes (<c>edgetwin.poll.duration</c> → <c>edgetwin_poll_duration</c>).</summary>
    private static string ExposedBase(string instrument)
    {
        var name = Core.Prometheus.PrometheusNames.SanitizeMetric(instrument);
        return name.StartsWith("edgetwin_", StringComparison.Ordinal) ? name : "edgetwin_" + name;
    }

    private static bool IsExposed(string name, HashSet<string> exposed)
    {
        foreach (var histogram in (string[])["_bucket", "_sum", "_count", ""])
        {
            if (!name.EndsWith(histogram, StringComparison.Ordinal))
            {
                continue;
            }

            var a = name[..^histogram.Length];
            foreach (var total in (string[])["_total", ""])
            {
                if (!a.EndsWith(total, StringComparison.Ordinal))
                {
                    continue;
                }

                var b = a[..^total.Length];
                foreach (var unit in (string[])["_seconds", "_bytes", "_kelvin", "_celsius", "_percent", "_per_second", ""])
                {
                    if (b.EndsWith(unit, StringComparison.Ordinal) && exposed.Contains(b[..^unit.Length]))
                    {
                        return true;
                    }
                }
            }
        }

        return false;
    }

    [GeneratedRegex(@"\.Create(?:Counter|Histogram|UpDownCounter|Gauge|ObservableGauge|ObservableCounter|ObservableUpDownCounter)\s*(?:<[^>]+>)?\(\s*""(?<name>[^""]+)""")]
    private static partial Regex Instrument();

    [GeneratedRegex(@"""(edgetwin_[a-z0-9_]+)")]
    private static partial Regex PrometheusLiteral();

    [GeneratedRegex(@"^#+ .*\b[Mm]etrics\b")]
    private static partial Regex MetricsHeading();

    [GeneratedRegex(@"`(?<name>[A-Za-z_]*\.?[A-Za-z0-9_.]+)(?:\{[^`]*\})?`")]
    private static partial Regex Backticked();

    // Only names with a Prometheus unit or type suffix: the Ansible role's variables are edgetwin_* too.
    [GeneratedRegex(@"^edgetwin_[a-z0-9_]+_(?:total|seconds|bytes|bucket|sum|count|info|per_second|kelvin|celsius|percent)$")]
    private static partial Regex PrometheusName();

    [GeneratedRegex(@"^(?:edgetwin|modbus\.client|modbus\.server|snmp)\.[a-z0-9_]+(?:\.[a-z0-9_]+)*$")]
    private static partial Regex InstrumentName();

    [GeneratedRegex(@"\.(?:yaml|yml|db|bin|json|sock|service|socket|target|csv|onnx|pw|conf|cfg|tar|gz)$")]
    private static partial Regex FileName();
}
