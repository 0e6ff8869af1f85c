using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using EdgeTwin.Agent.Twin.Models;
using EdgeTwin.Core.Config;
using EdgeTwin.Twin.Models;

namespace EdgeTwin.Agent.Cli;

/// <summary>Shared by <c>models list</c> and <c>models verify</c>: finds the directory and verifies every model.</summary>
internal static class ModelsCli
{
    public static Option<FileInfo?> ConfigOption() => new("--config", "-c") { Description = "Site config (reads models.directory); default: models/ beside the binary, then ./models." };

    public static Option<DirectoryInfo?> DirectoryOption() => new("--dir") { Description = "Models directory (overrides the config)." };

    public static Option<bool> JsonOption() => new("--json") { Description = "Print as JSON." };

    /// <summary>The models directory, or null after printing config problems.</summary>
    public static string? ResolveDirectory(ParseResult parse, Option<FileInfo?> config, Option<DirectoryInfo?> dir, TextWriter error)
    {
        if (parse.GetValue(dir) is { } d)
        {
            return d.FullName;
        }

        if (parse.GetValue(config) is not { } file)
        {
            return ModelsConfig.DefaultDirectory();
        }

        var loaded = AgentConfigFile.LoadSite(file.ToString());
        if (!loaded.IsValid)
        {
            foreach (var p in loaded.Problems)
            {
                error.WriteLine(p.ToString());
            }

            return null;
        }

        try
        {
            return ModelsConfig.From(loaded.Config!).Directory;
        }
        catch (ConfigException e)
        {
            error.WriteLine(e.Message);
            return null;
        }
    }

    public static string Render(ModelCatalog catalog, bool json)
    {
        if (json)
        {
            return JsonSerializer.Serialize(new
            {
                directory = catalog.Directory,
                manifest_error = catalog.ManifestError,
                models = catalog.Status.Select(s => new { name = s.Name, version = s.Version, state = s.State.ToString().ToLowerInvariant(), file = s.File, sha256 = s.Sha256, error = s.Error }),
            });
        }

        var lines = new List<string> { $"models directory {catalog.Directory}" };
        if (catalog.ManifestError is { } me)
        {
            lines.Add($"manifest: {me}");
        }

        foreach (var s in catalog.Status)
        {
            var model = catalog.Get(s.Name);
            var io = model is null ? "" : string.Join(" ", model.Entry.Inputs.Select(i => $"{i.Name}{i.ShapeText}")) + " -> " + string.Join(" ", model.Entry.Outputs.Select(o => $"{o.Name}{o.ShapeText}"));
            lines.Add(string.Create(CultureInfo.InvariantCulture, $"{s.Name,-20} {s.Version,-10} {s.State,-16} {Path.GetFileName(s.File),-24} {s.Sha256[..12]}  {io}"));
            if (s.Error is { } err)
            {
                lines.Add("    " + err);
            }
        }

        return string.Join(Environment.NewLine, lines);
    }

    public static Command Create(string name, string description, bool failOnProblem)
    {
        var config = ConfigOption();
        var dir = DirectoryOption();
        var json = JsonOption();
        var command = new Command(name, description);
        command.Options.Add(config);
        command.Options.Add(dir);
        command.Options.Add(json);
        command.SetAction(async (parse, ct) =>
        {
            var output = parse.InvocationConfiguration.Output;
            var error = parse.InvocationConfiguration.Error;
            var directory = ResolveDirectory(parse, config, dir, error);
            if (directory is null)
            {
                return ExitCodes.InvalidConfig;
            }

            using var catalog = new ModelCatalog(directory);
            catalog.Reload();
            await output.WriteLineAsync(Render(catalog, parse.GetValue(json))).ConfigureAwait(false);
            var bad = catalog.ManifestError is not null || catalog.Status.Any(s => s.State != ModelState.Available);
            return failOnProblem && bad ? ExitCodes.Failure : ExitCodes.Ok;
        });
        return command;
    }
}

/// <summary><c>edgetwin models list [--config FILE | --dir DIR] [--json]</c>: every model of the manifest and whether it verifies.</summary>
internal sealed class ModelsListCommand : ICliSubcommand
{
    public string Parent => "models";

    public Command Create() => ModelsCli.Create("list", "List the models of the models directory: version, state, file, hash, inputs and outputs.", failOnProblem: false);
}

/// <summary>
/// <c>edgetwin models verify [--config FILE | --dir DIR] [--json]</c>: checks every model's hash and shapes.
/// Exit codes: 0 all verified, 1 a model or the manifest failed, 2 bad config.
/// </summary>
internal sealed class ModelsVerifyCommand : ICliSubcommand
{
    public string Parent => "models";

    public Command Create() => ModelsCli.Create("verify", "Verify every model of the models directory (hash, ONNX load, input/output shapes); exit 1 on any failure.", failOnProblem: true);
}
