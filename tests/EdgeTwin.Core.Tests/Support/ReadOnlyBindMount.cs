using System.Diagnostics;

namespace EdgeTwin.Tests.Shared;

/// <summary>
/// A directory bind-mounted onto another and remounted read-only: what storage the kernel turned read-only looks like to
/// a process (writes fail with <c>EROFS</c>, reads work), and <see cref="MakeWritable"/> undoes it as a remount does.
/// Root only: <see cref="Create"/> skips the test, with the reason, anywhere else. Disposing unmounts it (lazily when
/// something still holds a file); the directories stay with their parent.
/// </summary>
internal sealed class ReadOnlyBindMount : IDisposable
{
    private ReadOnlyBindMount(string source, string dir)
    {
        Source = source;
        Dir = dir;
    }

    /// <summary>The writable directory behind the mount: put files here before or while it is read-only.</summary>
    public string Source { get; }

    /// <summary>The read-only view.</summary>
    public string Dir { get; }

    /// <summary>Mounts <c>PARENT/rw</c> read-only on <c>PARENT/ro</c>, after <paramref name="prepare"/> has put files in the source.</summary>
    public static ReadOnlyBindMount Create(string parent, Action<string>? prepare = null)
    {
        Assert.SkipUnless(Environment.UserName == "root", "mounting a read-only bind mount needs root");
        var source = Directory.CreateDirectory(Path.Combine(parent, "rw")).FullName;
        var dir = Directory.CreateDirectory(Path.Combine(parent, "ro")).FullName;
        prepare?.Invoke(source);
        Mount("--bind", source, dir);
        var mount = new ReadOnlyBindMount(source, dir);
        try
        {
            mount.MakeReadOnly();
        }
        catch
        {
            mount.Dispose();
            throw;
        }

        return mount;
    }

    public void MakeReadOnly() => Mount("-o", "remount,bind,ro", Dir);

    public void MakeWritable() => Mount("-o", "remount,bind,rw", Dir);

    public void Dispose() => Run("/usr/bin/umount", "-l", Dir);

    private static void Mount(params string[] args)
    {
        var (code, error) = Run("/usr/bin/mount", args);
        Assert.True(code == 0, $"mount {string.Join(' ', args)}: {error}");
    }

    /// <summary>Runs a mount tool; its exit code and standard error (also for the tests' other mounts, e.g. a small tmpfs).</summary>
    internal static (int Code, string Error) Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardError = true };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        var error = p.StandardError.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, error.Trim());
    }
}
