namespace EdgeTwin.IntegrationTests.Deployment;

/// <summary>Assertions on what the role left in a chroot's /etc: existence, mode and owner (names from the root's own /etc).</summary>
internal static class RootAssert
{
    public static void Dir(string path, string mode, string owner, string group)
    {
        Assert.True(Directory.Exists(path), $"{path} does not exist");
        OwnerMode(path, mode, owner, group);
    }

    public static void File(string path, string mode, string owner, string group)
    {
        Assert.True(System.IO.File.Exists(path), $"{path} does not exist");
        OwnerMode(path, mode, owner, group);
    }

    /// <summary>Mode and owner as `stat` reports them; names resolved in the chroot's /etc (stat -c %u/%g, then looked up).</summary>
    private static void OwnerMode(string path, string mode, string owner, string group)
    {
        var root = path[..path.IndexOf("/etc/", StringComparison.Ordinal)];
        var stat = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("stat", ["-c", "%a %u %g", path]) { RedirectStandardOutput = true })!;
        var parts = stat.StandardOutput.ReadToEnd().Trim().Split(' ');
        stat.WaitForExit();
        Assert.Equal(mode.TrimStart('0'), parts[0]);
        Assert.Equal(owner, NameOf(Path.Combine(root, "etc", "passwd"), parts[1]));
        Assert.Equal(group, NameOf(Path.Combine(root, "etc", "group"), parts[2]));
    }

    private static string NameOf(string file, string id) =>
        System.IO.File.ReadAllLines(file).Select(l => l.Split(':')).First(f => f.Length > 2 && f[2] == id)[0];
}
