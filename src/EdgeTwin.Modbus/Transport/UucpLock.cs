using System.Globalization;
using System.Text;

namespace EdgeTwin.Modbus.Transport;

/// <summary>
/// A UUCP-style lock file for a serial device (<c>/run/lock/LCK..ttyUSB0</c> holding the owner's PID as ten ASCII digits
/// and a newline, FHS 3.0 5.9), the convention of minicom, picocom, screen, cu, lockdev and ModemManager-era tools. The
/// <see cref="SerialPortLock"/> flock keeps EdgeTwin processes apart, but those tools know nothing of it: a terminal
/// program left on the RS-485 line by a technician was ignored, and both masters garbled each other's frames. A lock file
/// whose PID is gone (a killed process, a reboot without a tmpfs /run) is stale and taken over.
/// </summary>
internal sealed class UucpLock : IDisposable
{
    public const string DefaultDirectory = "/run/lock";

    // An unreadable lock file younger than this may be one being written by its owner (create, then write the PID).
    private static readonly TimeSpan UnreadableGrace = TimeSpan.FromSeconds(10);

    // Lock files this process holds: a second open here is refused as another holder's would be, while a file with our
    // PID that we do not hold is a leftover of an earlier process that had the same PID (a container's PID 1 each start).
    private static readonly HashSet<string> HeldHere = new(StringComparer.Ordinal);

    private string? _path;

    private UucpLock(string path) => _path = path;

    public string Path => _path ?? "";

    /// <summary>The lock file's name for <paramref name="port"/>: symlinks (/dev/serial/by-id/…) resolved, "/" under /dev as "_".</summary>
    public static string FileName(string port)
    {
        string real = System.IO.Path.GetFullPath(port);
        try
        {
            if (File.ResolveLinkTarget(port, returnFinalTarget: true) is { } target)
            {
                real = target.FullName;
            }
        }
        catch (IOException)
        {
            // unreadable link: its own name then
        }

        string name = real.StartsWith("/dev/", StringComparison.Ordinal) ? real["/dev/".Length..].Replace('/', '_') : System.IO.Path.GetFileName(real);
        return "LCK.." + name;
    }

    /// <summary>
    /// Takes the lock file for <paramref name="port"/> in <paramref name="directory"/>; null when there is no such
    /// directory, or it is not writable and no live lock is in it (the port is then used without one, as before).
    /// </summary>
    /// <exception cref="SerialPortInUseException">A live process holds the lock file.</exception>
    public static UucpLock? Acquire(string port, string directory)
    {
        if (!OperatingSystem.IsLinux() || !Directory.Exists(directory))
        {
            return null;
        }

        string path = System.IO.Path.Combine(directory, FileName(port));
        int pid = Environment.ProcessId;
        for (int attempt = 0; attempt < 3; attempt++)
        {
            lock (HeldHere)
            {
                if (HeldHere.Contains(path))
                {
                    return null; // opened twice here: the flock refuses the second open, saying so
                }

                try
                {
                    using (var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.Read))
                    {
                        file.Write(Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture, $"{pid,10}\n")));
                    }

                    HeldHere.Add(path);
                    return new UucpLock(path);
                }
                catch (IOException) when (File.Exists(path))
                {
                    // held, or stale: see below
                }
                catch (UnauthorizedAccessException)
                {
                    // Cannot create lock files here (not root, not in the lock group): still respect a live one.
                    if (File.Exists(path) && Holder(path) is { } other && other.Alive)
                    {
                        throw InUse(port, path, other.Pid, other.Name);
                    }

                    return null;
                }
            }

            if (Holder(path) is { Alive: true } holder)
            {
                throw holder.Pid == 0
                    ? new SerialPortInUseException($"port {port} has a lock file {path} without a readable PID, written less than {UnreadableGrace.TotalSeconds:0} s ago: another program is taking the port; if it stays, remove the file")
                    : InUse(port, path, holder.Pid, holder.Name);
            }

            // Stale: its process is gone. Removing it races only with another taker, which CreateNew then settles.
            try
            {
                File.Delete(path);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                throw new SerialPortInUseException($"port {port} has a stale lock file {path} (its process is gone) that cannot be removed ({ex.Message}): remove it");
            }
        }

        throw new SerialPortInUseException($"port {port}: its lock file {path} keeps coming back: another program is taking the port");
    }

    /// <summary>Who the lock file names; null when it went meanwhile. Pid 0 and alive: unreadable but fresh.</summary>
    private static (int Pid, bool Alive, string Name)? Holder(string path)
    {
        string text;
        DateTime written;
        try
        {
            text = File.ReadAllText(path, Encoding.ASCII);
            written = File.GetLastWriteTimeUtc(path);
        }
        catch (FileNotFoundException)
        {
            return null;
        }
        catch (DirectoryNotFoundException)
        {
            return null;
        }

        // HDB UUCP: ten ASCII digits, space padded, and a newline; old binary-int files are not written on Linux.
        if (!int.TryParse(text.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out int pid) || pid <= 0)
        {
            return DateTime.UtcNow - written < UnreadableGrace ? (0, true, "") : (0, false, "");
        }

        if (pid == Environment.ProcessId)
        {
            return (pid, false, ""); // not in HeldHere: a leftover of an earlier process with our PID
        }

        // A PID of another PID namespace (a lock written from another container) reads as gone: taken over.
        bool alive = Directory.Exists($"/proc/{pid}");
        string name = "";
        try
        {
            name = alive ? File.ReadAllText($"/proc/{pid}/comm").Trim() : "";
        }
        catch (IOException)
        {
            // it ended meanwhile
        }

        return (pid, alive, name);
    }

    private static SerialPortInUseException InUse(string port, string path, int pid, string name) => new(
        $"port {port} is locked by process {pid}{(name.Length > 0 ? $" ({name})" : "")} through the lock file {path} (a UUCP lock, as minicom, picocom, screen, ModemManager and EdgeTwin take): two masters on one RS-485 line garble each other's frames; close that program first");

    /// <summary>Removes the lock file, unless it no longer names us (someone took it over as stale).</summary>
    public void Dispose()
    {
        var path = Interlocked.Exchange(ref _path, null);
        if (path is null)
        {
            return;
        }

        lock (HeldHere)
        {
            HeldHere.Remove(path);
            try
            {
                if (int.TryParse(File.ReadAllText(path, Encoding.ASCII).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out int pid) && pid == Environment.ProcessId)
                {
                    File.Delete(path);
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // gone already, or not ours to remove
            }
        }
    }
}
