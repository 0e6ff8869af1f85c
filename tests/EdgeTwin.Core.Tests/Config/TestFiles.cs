namespace EdgeTwin.Core.Tests.Config;

/// <summary>Shipped files (copied beside the test binary by EdgeTwin.Core.csproj) and temporary config files.</summary>
internal static class TestFiles
{
    public static string ProfilesDir => Path.Combine(AppContext.BaseDirectory, "device-profiles");

    public static string SchemaDir => Path.Combine(ProfilesDir, "schema");

    public static string ExamplesDir => Path.Combine(ProfilesDir, "examples");

    public static IEnumerable<string> ShippedProfiles() =>
        Directory.EnumerateFiles(ProfilesDir, "*.yaml").Order(StringComparer.Ordinal);

    public static IEnumerable<string> Examples() =>
        Directory.EnumerateFiles(ExamplesDir, "*.yaml").Order(StringComparer.Ordinal);
}

/// <summary>A temporary directory removed on dispose.</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "edgetwin-config-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string Write(string name, string content)
    {
        var full = System.IO.Path.Combine(Path, name);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(full)!);
        File.WriteAllText(full, content);
        return full;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a leftover temp dir must not fail a test.
        }
    }
}

/// <summary>File modes for the secret-file tests (what <c>chmod</c> would set).</summary>
internal static class Modes
{
    public const UnixFileMode M0600 = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    public const UnixFileMode M0400 = UnixFileMode.UserRead;
    public const UnixFileMode M0640 = M0600 | UnixFileMode.GroupRead;
    public const UnixFileMode M0644 = M0640 | UnixFileMode.OtherRead;
    public const UnixFileMode M0660 = M0640 | UnixFileMode.GroupWrite;
    public const UnixFileMode M0666 = M0660 | UnixFileMode.OtherRead | UnixFileMode.OtherWrite;

    /// <summary>chmod (the agent runs on Linux; on Windows modes do not exist and the checks are skipped).</summary>
    public static void Chmod(string path, UnixFileMode mode)
    {
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, mode);
        }
    }

    /// <summary>
    /// The shipped examples copied into <paramref name="dir"/> as the Ansible role installs files (0640), so their checks
    /// are about the content: a git checkout has them at 0644, and the config holds an inline community.
    /// </summary>
    public static string InstalledExamples(TempDir dir)
    {
        foreach (var file in Directory.EnumerateFiles(TestFiles.ExamplesDir, "*", SearchOption.AllDirectories))
        {
            var copy = Path.Combine(dir.Path, Path.GetRelativePath(TestFiles.ExamplesDir, file));
            Directory.CreateDirectory(Path.GetDirectoryName(copy)!);
            File.Copy(file, copy);
            Chmod(copy, M0640);
        }

        return dir.Path;
    }
}
