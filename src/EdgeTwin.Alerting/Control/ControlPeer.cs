using System.Globalization;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace EdgeTwin.Alerting.Control;

/// <summary>
/// Who is on the other end of a control connection, as the kernel says (<c>SO_PEERCRED</c>: the process, user and group
/// that connected), so that an acknowledge or silence is recorded under the real account and not under a name the
/// request merely claims.
/// </summary>
/// <param name="Pid">The connecting process.</param>
/// <param name="Uid">Its effective user id at connect time.</param>
/// <param name="Gid">Its effective group id at connect time.</param>
/// <param name="Name">The user's name from <c>/etc/passwd</c>, else <c>uid 1234</c>: what <c>by</c> records.</param>
public sealed record ControlPeer(int Pid, uint Uid, uint Gid, string Name)
{
    private const int SolSocket = 1;
    private const int SoPeerCred = 17;
    private const string Passwd = "/etc/passwd";

    /// <summary>For logs: <c>alice (uid 1000, pid 4242)</c>.</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Name} (uid {Uid}, pid {Pid})");

    /// <summary>
    /// The peer of a connected Unix socket, with its user name; null where the kernel cannot tell (not Linux), in which
    /// case nothing may be recorded in anyone's name.
    /// </summary>
    public static Task<ControlPeer?> IdentifyAsync(Socket socket, CancellationToken cancellationToken) =>
        IdentifyAsync(socket, Passwd, cancellationToken);

    /// <summary>As <see cref="IdentifyAsync(Socket, CancellationToken)"/>, with the user names from <paramref name="passwdPath"/>.</summary>
    public static async Task<ControlPeer?> IdentifyAsync(Socket socket, string passwdPath, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(socket);
        if (Credentials(socket) is not { } c)
        {
            return null;
        }

        return new ControlPeer(c.Pid, c.Uid, c.Gid, await UserNameAsync(c.Uid, passwdPath, cancellationToken).ConfigureAwait(false)
            ?? string.Create(CultureInfo.InvariantCulture, $"uid {c.Uid}"));
    }

    /// <summary><c>struct ucred { pid_t pid; uid_t uid; gid_t gid; }</c> in host byte order; null off Linux.</summary>
    internal static (int Pid, uint Uid, uint Gid)? Credentials(Socket socket)
    {
        if (!OperatingSystem.IsLinux())
        {
            return null;
        }

        Span<byte> ucred = stackalloc byte[12];
        try
        {
            if (socket.GetRawSocketOption(SolSocket, SoPeerCred, ucred) != ucred.Length)
            {
                return null;
            }
        }
        catch (SocketException)
        {
            return null;
        }

        // Host byte order, as the kernel wrote it.
        return (MemoryMarshal.Read<int>(ucred), MemoryMarshal.Read<uint>(ucred[4..]), MemoryMarshal.Read<uint>(ucred[8..]));
    }

    /// <summary>The first <c>/etc/passwd</c> entry with this uid; null when there is none or the file is unreadable.</summary>
    internal static async Task<string?> UserNameAsync(uint uid, string passwdPath, CancellationToken cancellationToken)
    {
        string[] lines;
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(2));
            lines = await File.ReadAllLinesAsync(passwdPath, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or OperationCanceledException)
        {
            return null;
        }

        foreach (var line in lines)
        {
            // name:password:uid:gid:gecos:home:shell
            var fields = line.Split(':');
            if (fields.Length >= 3 && fields[0].Length > 0 && !fields[0].StartsWith('#')
                && uint.TryParse(fields[2], NumberStyles.None, CultureInfo.InvariantCulture, out var u) && u == uid)
            {
                return fields[0];
            }
        }

        return null;
    }
}
