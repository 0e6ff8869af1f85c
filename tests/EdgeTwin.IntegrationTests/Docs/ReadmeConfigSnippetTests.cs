using System.Text;
using System.Text.RegularExpressions;
using EdgeTwin.Agent.Cli;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Profiles;
using EdgeTwin.Uplink.Tests.Support;
using Json.Schema;
using YamlDotNet.RepresentationModel;

namespace EdgeTwin.IntegrationTests.Docs;

/// <summary>
/// A site engineer copies the READMEs' YAML literally, so every <c>```yaml</c> block must pass <c>edgetwin check</c>
/// with no problem and no warning, and the JSON Schema editors check it against: a whole site config as it is, a profile (<c>profile:</c>) through the profile
/// loader, a fragment (sections of a site config, or a bare list of devices) merged into a small base site. The
/// comment <c>&lt;!-- readme-check: base=PATH --&gt;</c> just above a fence names another base (a repository file,
/// e.g. an example whose credentials and machines the fragment refers to); <c>&lt;!-- readme-check: skip REASON
/// --&gt;</c> leaves out a block that is not EdgeTwin config (a Prometheus scrape config); <c>&lt;!-- readme-check:
/// ansible-vars --&gt;</c> checks the config the Ansible role renders from the block's variables.
/// </summary>
public sealed partial class ReadmeConfigSnippetTests
{
    private const string MinimalSite = "site: { id: docs, gateway_id: gw-docs }\ndevices: []\n";

    [Fact]
    public void Regression_readme_yaml_blocks_that_check_rejected_or_warned_about()
    {
        var root = ReadmeSnippets.RepoRoot();
        var failures = new List<string>();
        var checkedBlocks = 0;
        foreach (var block in ReadmeSnippets.Files().SelectMany(ReadmeSnippets.Blocks).Where(b => b.Language is "yaml" or "yml"))
        {
            if (block.Marker is { } marker && marker.StartsWith("skip", StringComparison.Ordinal))
            {
                if (marker.Length < "skip ".Length + 3)
                {
                    failures.Add($"{block.Where}: readme-check: skip needs a reason");
                }

                continue;
            }

            checkedBlocks++;
            failures.AddRange(Check(root, block));
        }

        Assert.True(checkedBlocks >= 10, $"only {checkedBlocks} yaml blocks found: is the README search broken?");
        Assert.True(failures.Count == 0, "README yaml that `edgetwin check` does not accept as shown:\n" + string.Join('\n', failures));
    }

    [Fact]
    public void Regression_the_shipped_examples_are_checked_without_warnings_including_subdirectories()
    {
        // ExampleConfigTests saw only examples/*.yaml; thermal-twin/ and the alert-rules/ fragments were never checked.
        var root = ReadmeSnippets.RepoRoot();
        var examples = Path.Combine(root, "device-profiles", "examples");
        var failures = new List<string>();
        var files = Directory.EnumerateFiles(examples, "*.yaml", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList();
        Assert.NotEmpty(files);
        foreach (var file in files)
        {
            var text = File.ReadAllText(file);
            var relative = Path.GetRelativePath(root, file).Replace('\\', '/');
            // The alert rule sets are sections to paste beside a site's own (their header says so).
            var whole = TopLevelKeys(text).Contains("site");
            // Each rule set pairs with the example of its kind of site (machine-line.yaml's header says so).
            var site = Path.Combine(examples, Path.GetFileName(file) == "machine-line.yaml" ? "machine-line.yaml" : "small-dc-room.yaml");
            // gateway-host.yaml's rules go beside a site's own (its header says so): the data centre's, which watch its leak sensor.
            var siteText = Path.GetFileName(file) == "gateway-host.yaml"
                ? Merge(File.ReadAllText(site), File.ReadAllText(Path.Combine(examples, "alert-rules", "datacenter.yaml")))
                : File.ReadAllText(site);
            var yaml = whole ? text : Merge(siteText, text);
            failures.AddRange(Diagnose(relative, yaml, whole ? file : site, root));
        }

        Assert.True(failures.Count == 0, string.Join('\n', failures));
    }

    [Fact]
    public void Regression_the_profile_table_of_device_profiles_readme_missed_three_shipped_profiles()
    {
        // generic-packml-plc, generic-stack-light and generic-vibration-transmitter shipped without a row.
        var dir = Path.Combine(ReadmeSnippets.RepoRoot(), "device-profiles");
        var listed = ProfileRow().Matches(File.ReadAllText(Path.Combine(dir, "README.md"))).Select(m => m.Groups[1].Value).ToHashSet(StringComparer.Ordinal);
        var shipped = Directory.EnumerateFiles(dir, "*.yaml").Select(Path.GetFileNameWithoutExtension).OfType<string>().ToHashSet(StringComparer.Ordinal);
        Assert.Empty(shipped.Except(listed).Order(StringComparer.Ordinal));
        Assert.Empty(listed.Except(shipped).Order(StringComparer.Ordinal));
    }

    private static IEnumerable<string> Check(string root, ReadmeBlock block)
    {
        var keys = TopLevelKeys(block.Text);
        if (keys.Contains("profile"))
        {
            var diagnostics = new ConfigDiagnostics();
            var profile = DeviceProfileLoader.Parse(block.Text, block.File, diagnostics);
            foreach (var d in diagnostics.Items.Concat(diagnostics.Warnings))
            {
                yield return $"{block.Where}: profile: {d.Path}: {d.Message}";
            }

            if (profile is null && diagnostics.Items.Count == 0)
            {
                yield return $"{block.Where}: profile did not load";
            }

            foreach (var error in SchemaErrors(root, "device-profile.schema.json", block.Text))
            {
                yield return $"{block.Where}: schema: {error}";
            }

            yield break;
        }

        string? basePath;
        string baseText;
        if (block.Marker is { } marker && BaseMarker().Match(marker) is { Success: true } m)
        {
            basePath = Path.Combine(root, m.Groups[1].Value);
            if (!File.Exists(basePath))
            {
                yield return $"{block.Where}: readme-check base {m.Groups[1].Value} does not exist";
                yield break;
            }

            baseText = File.ReadAllText(basePath);
        }
        else
        {
            basePath = null;
            baseText = MinimalSite;
        }

        string yaml;
        if (block.Marker == "ansible-vars")
        {
            yaml = FromAnsibleVars(block.Text);
        }
        else if (block.Text.TrimStart().StartsWith("- ", StringComparison.Ordinal))
        {
            // A bare list: devices of a site.
            yaml = Merge(baseText, "devices:\n" + string.Join('\n', block.Text.Split('\n').Select(l => l.Length == 0 ? l : "  " + l)));
        }
        else if (keys.Contains("site"))
        {
            yaml = block.Text;
        }
        else if (keys.Count == 0)
        {
            yield return $"{block.Where}: no top-level key: mark it <!-- readme-check: skip REASON --> if it is not site config";
            yield break;
        }
        else
        {
            yaml = Merge(baseText, block.Text);
        }

        // The fragment's relative files resolve in a directory of its own, where placeholders of them exist; the
        // base's own files (an example's secrets) are copied as they are.
        var dir = Directory.CreateTempSubdirectory("edgetwin-readme-");
        try
        {
            if (basePath is not null)
            {
                CopyDirectory(Path.GetDirectoryName(basePath)!, dir.FullName);
            }

            WritePlaceholders(block.Text, dir.FullName);
            foreach (var failure in Diagnose(block.Where, yaml, Path.Combine(dir.FullName, "edgetwin.yaml"), root))
            {
                yield return failure;
            }
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    private static void CopyDirectory(string from, string to)
    {
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(to, Path.GetRelativePath(from, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
    }

    private static IEnumerable<string> Diagnose(string where, string yaml, string file, string root)
    {
        // What editors and CI check a config against must take what check takes.
        foreach (var error in SchemaErrors(root, "site-config.schema.json", yaml))
        {
            yield return $"{where}: schema: {error}";
        }

        var options = new SiteConfigLoadOptions
        {
            ProfilesDir = Path.Combine(root, "device-profiles"),
            SectionValidators = ConfigSectionValidators.Discover(typeof(CheckCommand).Assembly),
        };
        var result = SiteConfigLoader.Parse(yaml, file, options);
        var lines = yaml.Split('\n');
        // A file's mode is the checkout's (umask), not the documentation's: the site's copy is chmod 0640.
        foreach (var d in result.Problems.Concat(result.Warnings.Where(w => !w.Message.Contains("is readable by every user", StringComparison.Ordinal))))
        {
            var text = d.Line > 0 && d.Line <= lines.Length ? lines[d.Line - 1].Trim() : "";
            yield return $"{where}: {(d.IsWarning ? "warning: " : "")}{d.Path}: {d.Message}  [at: {text}]";
        }
    }

    private static IEnumerable<string> SchemaErrors(string root, string schemaFile, string yaml)
    {
        var schema = Schemas.GetOrAdd(schemaFile, f => JsonSchema.FromFile(Path.Combine(root, "device-profiles", "schema", f)));
        var diagnostics = new ConfigDiagnostics();
        if (YamlTree.Parse(yaml, "readme.yaml", diagnostics) is not { } tree)
        {
            return [.. diagnostics.Items.Select(d => d.Message)];
        }

        var result = schema.Evaluate(ConfigNodeJson.ToJsonNode(tree), new EvaluationOptions { OutputFormat = OutputFormat.List });
        return result.IsValid
            ? []
            : [.. result.Details.Where(d => d.Errors is { Count: > 0 }).SelectMany(d => d.Errors!.Select(e => $"{d.InstanceLocation}: {e.Key}: {e.Value}"))];
    }

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, JsonSchema> Schemas = new(StringComparer.Ordinal);

    /// <summary>
    /// The base with the fragment laid over it: mappings merged key by key (a fragment's <c>line: { state: … }</c>
    /// keeps the base's stations), lists appended (a fragment's devices join the base's), scalars replaced.
    /// </summary>
    private static string Merge(string baseText, string fragment)
    {
        var merged = Load(baseText);
        Overlay(merged, Load(fragment));
        var stream = new YamlStream(new YamlDocument(merged));
        using var writer = new StringWriter();
        stream.Save(writer, assignAnchors: false);
        return writer.ToString();
    }

    /// <summary>
    /// The site config the Ansible role renders from its variables (roles/edgetwin/templates: site.id and gateway_id,
    /// devices, credentials, uplinks, outbox and metrics from their own variables, then edgetwin_site_extra merged in).
    /// </summary>
    private static string FromAnsibleVars(string vars)
    {
        var v = Load(vars);
        YamlNode? Var(string name) => v.Children.TryGetValue(new YamlScalarNode(name), out var node) ? node : null;
        var site = new YamlMappingNode(
            new YamlScalarNode("id"), Var("edgetwin_site_id") ?? new YamlScalarNode("site1"),
            new YamlScalarNode("gateway_id"), Var("edgetwin_gateway_id") ?? new YamlScalarNode("gw-docs"));
        var config = new YamlMappingNode(new YamlScalarNode("site"), site, new YamlScalarNode("devices"), Var("edgetwin_devices") ?? new YamlSequenceNode());
        foreach (var (variable, key) in (ReadOnlySpan<(string, string)>)[("edgetwin_credentials", "credentials"), ("edgetwin_uplinks", "uplinks"), ("edgetwin_outbox", "outbox")])
        {
            if (Var(variable) is { } value)
            {
                config.Children[new YamlScalarNode(key)] = value;
            }
        }

        if (Var("edgetwin_site_extra") is YamlMappingNode extra)
        {
            Overlay(config, extra);
        }

        using var writer = new StringWriter();
        new YamlStream(new YamlDocument(config)).Save(writer, assignAnchors: false);
        return writer.ToString();
    }

    private static YamlMappingNode Load(string text)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(text));
        return stream.Documents.Count > 0 && stream.Documents[0].RootNode is YamlMappingNode map ? map : new YamlMappingNode();
    }

    private static void Overlay(YamlMappingNode target, YamlMappingNode source)
    {
        foreach (var (key, value) in source.Children)
        {
            if (value is YamlMappingNode inner && target.Children.TryGetValue(key, out var existing) && existing is YamlMappingNode into)
            {
                Overlay(into, inner);
            }
            else if (value is YamlSequenceNode items && target.Children.TryGetValue(key, out var list) && list is YamlSequenceNode onto)
            {
                // A fragment's devices: (or rules:) come on top of the base's, as a reader adds them to a site.
                foreach (var item in items)
                {
                    onto.Add(item);
                }
            }
            else
            {
                target.Children[key] = value;
            }
        }
    }

    /// <summary>
    /// The fragment's files (<c>password_file: secrets/mqtt</c>, <c>ca_file: ca.pem</c>) are the reader's own: a
    /// placeholder of each, relative to the config, so check judges the keys and not the absence of the site's secrets.
    /// </summary>
    private static void WritePlaceholders(string yaml, string directory)
    {
        using var pki = new TestPki();
        foreach (Match m in FileKey().Matches(yaml))
        {
            var key = m.Groups["key"].Value;
            var value = m.Groups["value"].Value.Trim('"', '\'');
            if (Path.IsPathRooted(value))
            {
                continue;
            }

            var path = Path.Combine(directory, value);
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            // check reads certificates and keys as PEM, so those are real ones.
            var pem = key switch
            {
                "ca_file" or "ssl_ca_file" => pki.CaFile,
                "client_cert_file" or "ssl_cert_file" => pki.ClientCertFile,
                "client_key_file" or "ssl_key_file" => pki.ClientKeyFile,
                _ => null,
            };
            if (pem is null)
            {
                File.WriteAllText(path, "readme-placeholder\n");
            }
            else
            {
                File.Copy(pem, path, overwrite: true);
            }
        }
    }

    private static HashSet<string> TopLevelKeys(string yaml) =>
        [.. yaml.Split('\n').Select(l => TopLevelKey().Match(l)).Where(m => m.Success).Select(m => m.Groups[1].Value)];

    [GeneratedRegex(@"^([A-Za-z_][A-Za-z0-9_]*)\s*:")]
    private static partial Regex TopLevelKey();

    [GeneratedRegex(@"\b(?<key>[a-z_]+_file):\s*(?<value>[^\s,}\]#]+)")]
    private static partial Regex FileKey();

    [GeneratedRegex(@"(?m)^\| `([a-z0-9-]+)` \|")]
    private static partial Regex ProfileRow();

    [GeneratedRegex(@"^base=(\S+)$")]
    private static partial Regex BaseMarker();
}
