using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;

namespace EdgeTwin.Sensors.Host;

/// <summary>chronyd could not tell its tracking state: the message names chronyd, its address and the cause.</summary>
public sealed class ChronyException(string message, Exception? inner = null) : IOException(message, inner);

/// <summary>
/// Asks chronyd for its <c>tracking</c> report over its command port, as an unprivileged <c>chronyc tracking</c> does
/// (monitoring commands need no privilege from localhost; the Unix socket chronyc prefers is root/_chrony only). One UDP
/// socket per request: a reply to an earlier, timed-out request cannot reach a later one. No retries: the caller asks
/// again at its next check.
/// </summary>
public sealed class ChronyCommandClient
{
    /// <summary>chronyd's default command address: <c>bindcmdaddress 127.0.0.1</c>, <c>cmdport 323</c>.</summary>
    public static readonly IPEndPoint DefaultEndPoint = new(IPAddress.Loopback, ChronyCommand.DefaultPort);

    /// <summary>How long one request waits for the reply: chronyd answers from its main loop within microseconds.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromMilliseconds(500);

    // Room for any reply: a longer datagram than the tracking report is read whole, so a foreign one is not cut short.
    private const int ReceiveBufferLength = 1024;

    private readonly TimeSpan _timeout;

    public ChronyCommandClient(IPEndPoint endPoint, TimeSpan timeout)
    {
        ArgumentNullException.ThrowIfNull(endPoint);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(timeout, TimeSpan.Zero);
        EndPoint = endPoint;
        _timeout = timeout;
    }

    /// <summary>chronyd's command address.</summary>
    public IPEndPoint EndPoint { get; }

    /// <summary>
    /// chronyd's tracking report. Throws <see cref="ChronyException"/> when there is none within the timeout, nothing
    /// listens, or the reply is unusable; <see cref="OperationCanceledException"/> only for <paramref name="cancellationToken"/>.
    /// </summary>
    public async Task<ChronyTracking> TrackingAsync(CancellationToken cancellationToken)
    {
        var sequence = (uint)RandomNumberGenerator.GetInt32(int.MaxValue);
        var request = new byte[ChronyCommand.TrackingRequestLength];
        ChronyCommand.WriteTrackingRequest(request, sequence);
        var reply = new byte[ReceiveBufferLength];
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_timeout);
        try
        {
            using var socket = new Socket(EndPoint.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
            // Connected: datagrams from other addresses are not received, and the kernel reports "port unreachable"
            // (nothing listens) as ECONNREFUSED on the receive, at once instead of after the timeout.
            await socket.ConnectAsync(EndPoint, timeout.Token).ConfigureAwait(false);
            await socket.SendAsync(request, SocketFlags.None, timeout.Token).ConfigureAwait(false);
            var length = await socket.ReceiveAsync(reply, SocketFlags.None, timeout.Token).ConfigureAwait(false);
            return ChronyCommand.ReadTrackingReply(reply.AsSpan(0, length), sequence);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw Failed(string.Create(CultureInfo.InvariantCulture,
                $"no answer within {_timeout.TotalMilliseconds:0} ms (chronyd not running, its cmdport elsewhere or 0, or bindcmdaddress another address)"));
        }
        catch (SocketException ex) when (ex.SocketErrorCode == SocketError.ConnectionRefused)
        {
            throw Failed("nothing listens on the command port (chronyd not running, or its cmdport elsewhere or 0)");
        }
        catch (SocketException ex)
        {
            throw Failed($"{ex.Message} ({ex.SocketErrorCode})", ex);
        }
        catch (ChronyReplyException ex)
        {
            throw Failed(ex.Message, ex);
        }
    }

    private ChronyException Failed(string what, Exception? inner = null) => new($"chronyd at {EndPoint}: {what}", inner);
}
