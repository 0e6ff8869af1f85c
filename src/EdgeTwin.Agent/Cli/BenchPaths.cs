namespace EdgeTwin.Agent.Cli;

/// <summary>
/// The benches' shared rule for their input paths and exit codes: a path that does not exist or is of the wrong kind
/// (a directory given for a file, or the reverse) is a bad argument, exit 2 (<see cref="ExitCodes.InvalidConfig"/>);
/// a file that exists but cannot be read or is malformed is bad data, exit 1 (<see cref="ExitCodes.Failure"/>).
/// So a script can tell a bad invocation from bad data the same way for <c>bench nab</c>, <c>secom</c> and <c>cmapss</c>.
/// </summary>
internal static class BenchPaths
{
    public enum Kind
    {
        File,
        Directory,
    }

    /// <summary>What is wrong with <paramref name="path"/> given as <paramref name="option"/>, or null when it is a <paramref name="kind"/>.</summary>
    public static string? Problem(string path, Kind kind, string option)
    {
        var isFile = File.Exists(path);
        var isDirectory = Directory.Exists(path);
        return (kind, isFile, isDirectory) switch
        {
            (Kind.File, true, _) or (Kind.Directory, _, true) => null,
            (Kind.File, _, true) => $"{option} {path} is a directory, expected a file",
            (Kind.Directory, true, _) => $"{option} {path} is a file, expected a directory",
            _ => $"{option} {path} does not exist",
        };
    }
}
