using System.CommandLine;
using EdgeTwin.Core.Config;

namespace EdgeTwin.Agent.Cli;

/// <summary>Exit codes shared by <c>run</c> and <c>poll</c> (systemd: 2 = do not restart blindly, config is wrong).</summary>
internal static class ExitCodes
{
    public const int Ok = 0;

    /// <summary>A fatal runtime error (a crashed service, a device that could not be read by <c>poll</c>).</summary>
    public const int Failure = 1;

    /// <summary>The config (or a source built from it) is invalid; every problem was printed.</summary>
    public const int InvalidConfig = 2;
}

/// <summary>Which config warnings <see cref="AgentConfigFile.Load"/> prints (<c>FILE:LINE:COL: warning: key: message</c>, as <c>check</c> does).</summary>
internal enum ConfigWarningOutput
{
    /// <summary>None: the command's output is not about the config.</summary>
    None,

    /// <summary>Only among the problems of a config that does not load (the service's start: it logs a valid config's warnings itself).</summary>
    WithProblems,

    /// <summary>Always: among the problems, and before the command's own output of a valid config (<c>poll</c>).</summary>
    Always,
}

/// <summary>The <c>--config</c> / <c>--profiles-dir</c> options and loading with every problem printed.</summary>
internal sealed class AgentConfigFile
{
    public Option<FileInfo> Config { get; } = new("--config", "-c")
    {
        Description = "Site config file (YAML), e.g. /etc/edgetwin/edgetwin.yaml.",
        Required = true,
    };

    public Option<DirectoryInfo?> ProfilesDir { get; } = new("--profiles-dir")
    {
        Description = "Device profile directory; overrides profiles_dir in the config and the default search.",
    };

    public void AddTo(Command command)
    {
        command.Options.Add(Config);
        command.Options.Add(ProfilesDir);
    }

    /// <summary>
    /// Loads and validates the config; on problems prints each one to <paramref name="error"/> and returns null. With
    /// <see cref="ConfigWarningOutput.WithProblems"/> (the service's start) a config that does not start gets its
    /// warnings printed among the problems; a valid one has them logged by the service (<c>Config: …</c>), so they are
    /// not said twice. With <see cref="ConfigWarningOutput.Always"/> (<c>poll</c>, which loads the same config) a valid
    /// config's warnings go to <paramref name="error"/> too, one line each as <c>check</c> prints them, so the command's
    /// standard output stays its own.
    /// </summary>
    public SiteConfig? Load(ParseResult parse, TextWriter error, ConfigWarningOutput warnings = ConfigWarningOutput.None)
    {
        var file = parse.GetValue(Config)!;
        var dir = parse.GetValue(ProfilesDir);
        var result = LoadSite(file.ToString(), dir?.FullName);
        if (result.IsValid)
        {
            if (warnings == ConfigWarningOutput.Always)
            {
                foreach (var warning in result.Warnings)
                {
                    error.WriteLine(warning.ToString());
                }
            }

            return result.Config;
        }

        foreach (var problem in ConfigDiagnostics.SortByPosition(warnings != ConfigWarningOutput.None ? result.Problems.Concat(result.Warnings) : result.Problems))
        {
            error.WriteLine(problem.ToString());
        }

        var count = result.Problems.Count;
        error.WriteLine($"edgetwin: {count} problem{(count == 1 ? "" : "s")} in {file}; not starting");
        return null;
    }

    /// <summary>
    /// Loads a site config with every section validator of the agent, as <c>check</c> and <c>run</c> do: a command that
    /// reads only one section (models, outbox, alerts, twin) must still accept every section the agent knows.
    /// </summary>
    public static ConfigLoadResult LoadSite(string path, string? profilesDir = null) =>
        SiteConfigLoader.Load(path, new SiteConfigLoadOptions
        {
            ProfilesDir = profilesDir,
            // Every command validates the owned sections too, so `run` refuses at start what `check` would report.
            SectionValidators = ConfigSectionValidators.Discover(typeof(AgentConfigFile).Assembly),
        });
}
