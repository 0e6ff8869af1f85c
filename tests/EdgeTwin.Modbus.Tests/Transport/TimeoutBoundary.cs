using System.Net;
using System.Net.Sockets;
using EdgeTwin.Modbus.Client;

namespace EdgeTwin.Modbus.Tests.Transport;

/// <summary>What the RTU and TCP timeout-boundary tests share: a loopback peer's lifetime and the reads around the timeout.</summary>
internal static class TimeoutBoundary
{
    /// <summary>Runs <paramref name="test"/> against <paramref name="peer"/> on a loopback port, and stops the peer after.</summary>
    public static async Task WithLoopbackPeerAsync(Func<TcpListener, CancellationToken, Task> peer, Func<int, Task> test, CancellationToken ct)
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var serving = peer(listener, stop.Token);
        try
        {
            await test(((IPEndPoint)listener.LocalEndpoint).Port);
        }
        finally
        {
            await stop.CancelAsync();
            listener.Stop();
            await serving.ContinueWith(_ => { }, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
        }
    }

    /// <summary>
    /// 14 reads whose answers end around the timeout: which side of it each falls on is the machine's, so every outcome
    /// must be either the answer (the read's number and 0x1234) or <typeparamref name="TCutShort"/> matching
    /// <paramref name="cutShortPattern"/> — never a whole answer called cut short, nor another error.
    /// </summary>
    public static async Task EveryReadIsItsAnswerOrCutShortAsync<TCutShort>(ModbusClient client, string cutShortPattern, CancellationToken ct)
        where TCutShort : Exception
    {
        for (int i = 1; i <= 14; i++)
        {
            try
            {
                Assert.Equal(new ushort[] { (ushort)i, 0x1234 }, await client.ReadHoldingRegistersAsync(1, 0, 2, ct));
            }
            catch (TCutShort ex)
            {
                Assert.Matches(cutShortPattern, ex.Message);
            }
        }
    }
}
