namespace EdgeTwin.Agent.Cli;

/// <summary>
/// Says why a CLI command run by hand finds nothing at a relative state path: the command resolves it from its own
/// current directory, the service from its <c>WorkingDirectory=</c> (<c>/var/lib/edgetwin</c> under the shipped unit).
/// </summary>
internal static class RelativeStatePath
{
    /// <summary>The service's working directory under the shipped unit (the Ansible role's state directory).</summary>
    public const string ServiceWorkingDirectory = "/var/lib/edgetwin";

    /// <summary>Empty for an absolute path; else a parenthesised reason to append to a "not found" line.</summary>
    public static string Hint(string configuredPath, string key) =>
        Path.IsPathRooted(configuredPath)
            ? ""
            : $" ({key} '{configuredPath}' is relative: this command took it from the current directory {Environment.CurrentDirectory}, "
              + $"the service takes it from its working directory, {ServiceWorkingDirectory} under the shipped unit; give an absolute {key} or run the command from there)";
}
