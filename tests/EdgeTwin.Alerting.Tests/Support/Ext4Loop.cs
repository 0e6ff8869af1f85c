using System.Diagnostics;

namespace EdgeTwin.Alerting.Tests.Support;

/// <summary>
/// A real ext4 file system on a loop device, mounted <c>errors=remount-ro</c> in a temporary directory: <see cref="FailAsync"/>
/// makes the kernel remount it read-only exactly as an I/O error of a failing SD card does (<c>trigger_fs_error</c>).
/// Root only: <see cref="CreateAsync"/> skips the test, with the reason, anywhere else. Disposing unmounts it and detaches
/// the loop device, also after a failed test (lazily when something still holds a file).
/// </summary>
internal sealed class Ext4Loop : IAsyncDisposable
{
    private readonly string _root;

    private Ext4Loop(string root, string dir, string device)
    {
        _root = root;
        Dir = dir;
        Device = device;
    }

    /// <summary>The mounted file system's root.</summary>
    public string Dir { get; }

    /// <summary>The loop device, e.g. <c>/dev/loop3</c> (another one after <see cref="RebootAsync"/>).</summary>
    public string Device { get; private set; }

    private string Image => Path.Combine(_root, "img");

    /// <summary>What a reboot does to it: unmounted, checked and repaired by e2fsck, mounted read-write again.</summary>
    public async Task RebootAsync()
    {
        await RunAsync("/usr/bin/umount", Dir);
        var (code, output) = await ExecAsync("/usr/sbin/e2fsck", ["-f", "-y", Image]);
        if (code is not (0 or 1))
        {
            throw new InvalidOperationException($"e2fsck {Image} failed ({code}): {output}");
        }

        await RunAsync("/usr/bin/mount", "-o", "loop,errors=remount-ro", Image, Dir);
        Device = (await RunAsync("/usr/bin/findmnt", "-n", "-o", "SOURCE", Dir)).Trim();
    }

    public static async Task<Ext4Loop> CreateAsync(int megabytes = 64)
    {
        if (!IsRoot())
        {
            Assert.Skip("needs root: mounts an ext4 image on a loop device and makes the kernel remount it read-only");
        }

        foreach (var tool in new[] { "/usr/sbin/mkfs.ext4", "/usr/bin/mount", "/usr/bin/umount", "/usr/bin/findmnt", "/usr/sbin/losetup" })
        {
            if (!File.Exists(tool))
            {
                Assert.Skip($"{tool} not installed (apt-get install e2fsprogs mount util-linux)");
            }
        }

        if (!File.Exists("/dev/loop-control"))
        {
            Assert.Skip("no loop devices here (/dev/loop-control missing)");
        }

        var root = Directory.CreateTempSubdirectory("edgetwin-ext4-").FullName;
        var image = Path.Combine(root, "img");
        var dir = Path.Combine(root, "mnt");
        Directory.CreateDirectory(dir);
        try
        {
            using (var f = File.Create(image))
            {
                f.SetLength((long)megabytes << 20);
            }

            await RunAsync("/usr/sbin/mkfs.ext4", "-q", "-F", "-m", "0", image); // no blocks reserved for root: Fill fills it
            await RunAsync("/usr/bin/mount", "-o", "loop,errors=remount-ro", image, dir);
        }
        catch
        {
            Directory.Delete(root, recursive: true);
            throw;
        }

        var device = (await RunAsync("/usr/bin/findmnt", "-n", "-o", "SOURCE", dir)).Trim();
        return new Ext4Loop(root, dir, device);
    }

    /// <summary>Has the kernel remount the file system read-only, as it does on an I/O error (ext4 errors=remount-ro).</summary>
    public async Task FailAsync()
    {
        await File.WriteAllTextAsync($"/sys/fs/ext4/{Path.GetFileName(Device)}/trigger_fs_error", "1");
        for (var i = 0; i < 100 && !IsReadOnly; i++)
        {
            await Task.Delay(20);
        }

        Assert.True(IsReadOnly, $"{Dir} was not remounted read-only");
    }

    /// <summary>Fills the file system to the last block (as a full SD card); delete the returned file to free it.</summary>
    public async Task<string> FillAsync()
    {
        var filler = Path.Combine(Dir, "filler");
        var block = new byte[1 << 20];
        await using (var f = new FileStream(filler, FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 0))
        {
            try
            {
                while (true)
                {
                    await f.WriteAsync(block);
                }
            }
            catch (IOException)
            {
            }

            // The last megabyte did not fit whole: fill what is left a block at a time.
            var small = new byte[4096];
            try
            {
                while (true)
                {
                    await f.WriteAsync(small);
                }
            }
            catch (IOException)
            {
            }

            try
            {
                await f.FlushAsync();
            }
            catch (IOException)
            {
            }
        }

        return filler;
    }

    public bool IsReadOnly
    {
        get
        {
            try
            {
                var probe = Path.Combine(Dir, ".probe-" + Guid.NewGuid().ToString("N"));
                File.WriteAllText(probe, "");
                File.Delete(probe);
                return false;
            }
            catch (IOException)
            {
                return true;
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if ((await TryRunAsync("/usr/bin/umount", Dir)) != 0)
            {
                await TryRunAsync("/usr/bin/umount", "-l", Dir); // something still holds a file: detach it now, free it when closed
            }

            await TryRunAsync("/usr/sbin/losetup", "-d", Device); // normally gone with the mount (autoclear)
        }
        finally
        {
            try
            {
                Directory.Delete(_root, recursive: true);
            }
            catch (IOException)
            {
                // Still mounted (a lazy unmount in progress): the temp directory stays.
            }
        }
    }

    private static bool IsRoot()
    {
        try
        {
            return File.ReadAllLines("/proc/self/status").Any(l => l.StartsWith("Uid:", StringComparison.Ordinal) && l.Split('\t', StringSplitOptions.RemoveEmptyEntries)[1] == "0");
        }
        catch (IOException)
        {
            return false;
        }
    }

    private static async Task<string> RunAsync(string file, params string[] args)
    {
        var (code, output) = await ExecAsync(file, args);
        if (code != 0)
        {
            throw new InvalidOperationException($"{file} {string.Join(' ', args)} failed ({code}): {output}");
        }

        return output;
    }

    private static async Task<int> TryRunAsync(string file, params string[] args) => (await ExecAsync(file, args)).Code;

    private static async Task<(int Code, string Output)> ExecAsync(string file, string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var stdout = p.StandardOutput.ReadToEndAsync(timeout.Token);
        var stderr = p.StandardError.ReadToEndAsync(timeout.Token);
        await p.WaitForExitAsync(timeout.Token);
        return (p.ExitCode, await stdout + await stderr);
    }
}
