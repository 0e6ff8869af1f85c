using System.Diagnostics;
using System.Globalization;
using System.IO.Ports;
using EdgeTwin.Modbus.Client;
using EdgeTwin.Modbus.Protocol;
using EdgeTwin.Modbus.Tests.Peers;
using EdgeTwin.Modbus.Transport;

namespace EdgeTwin.Modbus.Tests.Transport;

/// <summary>UUCP lock files (LCK..ttyUSB0) against pymodbus over a socat pty pair, in a lock directory of the test's own.</summary>
public sealed class UucpLockTests : IDisposable
{
    private const int Baud = 19200;
    private readonly string _lockDir = Directory.CreateTempSubdirectory("edgetwin-lock-").FullName;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string Pid10(int pid) => string.Create(CultureInfo.InvariantCulture, $"{pid,10}\n");

    private ModbusClient Client(string port) => new(new ModbusRtuTransport(
        new SerialRtuChannel(new SerialLineOptions { PortName = port, BaudRate = Baud, Parity = Parity.None, LockDirectory = _lockDir }),
        new ModbusRtuOptions { RequestTimeout = TimeSpan.FromSeconds(1), ReconnectBackoffMax = TimeSpan.FromMilliseconds(300) }));

    [Fact]
    public async Task Regression_a_terminal_program_holding_the_port_by_a_uucp_lock_file_was_ignored()
    {
        // minicom left running on the RS-485 adapter holds /run/lock/LCK..ttyUSB0, not our flock: the agent opened the port
        // anyway and both garbled each other's frames. Now a lock file naming a live process refuses the port, naming
        // the process; once that process is gone the file is stale and taken over, with our PID in the HDB format, and
        // removed when the port closes.
        await using var pty = await SocatPtyPair.StartAsync();
        await using var server = await PymodbusServer.StartSerialAsync(pty.A, Baud, PymodbusServer.Units((3, "hr", 0, [230])));
        var device = File.ResolveLinkTarget(pty.B, returnFinalTarget: true)?.FullName ?? pty.B; // /dev/pts/N
        Assert.StartsWith("/dev/pts/", device, StringComparison.Ordinal);
        var lockFile = Path.Combine(_lockDir, "LCK..pts_" + device["/dev/pts/".Length..]);

        using var minicom = Process.Start(new ProcessStartInfo("/usr/bin/sleep", ["60"]) { UseShellExecute = false })!;
        try
        {
            await File.WriteAllTextAsync(lockFile, Pid10(minicom.Id), Ct);
            await using var client = Client(pty.B);
            var refused = await Assert.ThrowsAnyAsync<ModbusCommunicationException>(() => client.ReadHoldingRegistersAsync(3, 0, 1, Ct));
            Assert.Contains($"port {pty.B} is locked by process {minicom.Id} (sleep) through the lock file {lockFile}", refused.Message, StringComparison.Ordinal);
            Assert.Equal(Pid10(minicom.Id), await File.ReadAllTextAsync(lockFile, Ct)); // respected, left as it was

            minicom.Kill();
            await minicom.WaitForExitAsync(Ct);
            for (var until = Stopwatch.StartNew(); ; await Task.Delay(100, Ct))
            {
                Assert.True(until.Elapsed < TimeSpan.FromSeconds(10), "the stale lock file was not taken over within 10 s");
                try
                {
                    Assert.Equal(new ushort[] { 230 }, await client.ReadHoldingRegistersAsync(3, 0, 1, Ct));
                    break;
                }
                catch (ModbusCommunicationException)
                {
                }
            }

            Assert.Equal(Pid10(Environment.ProcessId), await File.ReadAllTextAsync(lockFile, Ct));
        }
        finally
        {
            if (!minicom.HasExited)
            {
                minicom.Kill();
            }
        }

        Assert.False(File.Exists(lockFile), "the lock file was left behind after the port closed");
    }

    [Fact]
    public void Lock_files_are_named_after_the_device_a_symlink_points_to()
    {
        Assert.Equal("LCK..ttyUSB0", UucpLock.FileName("/dev/ttyUSB0"));
        Assert.Equal("LCK..pts_7", UucpLock.FileName("/dev/pts/7"));
        var link = Path.Combine(_lockDir, "by-id-link");
        File.CreateSymbolicLink(link, "/dev/ttyS0");
        Assert.Equal("LCK..ttyS0", UucpLock.FileName(link));
    }

    [Fact]
    public void A_lock_file_left_by_an_earlier_process_with_our_pid_or_without_a_pid_is_taken_over_when_old()
    {
        // A container's agent is PID 1 at each start: its own leftover must not lock it out for good.
        var port = "/dev/edgetwin-test-port";
        var file = Path.Combine(_lockDir, UucpLock.FileName(port));
        File.WriteAllText(file, Pid10(Environment.ProcessId));
        using (var held = UucpLock.Acquire(port, _lockDir))
        {
            Assert.NotNull(held);
            Assert.Null(UucpLock.Acquire(port, _lockDir)); // opened twice here: left to the flock, which refuses it
        }

        Assert.False(File.Exists(file));

        File.WriteAllText(file, "garbage\n");
        var fresh = Assert.Throws<SerialPortInUseException>(() => UucpLock.Acquire(port, _lockDir));
        Assert.Contains("without a readable PID", fresh.Message, StringComparison.Ordinal);
        File.SetLastWriteTimeUtc(file, DateTime.UtcNow.AddMinutes(-1));
        using var taken = UucpLock.Acquire(port, _lockDir);
        Assert.Equal(Pid10(Environment.ProcessId), File.ReadAllText(file));
    }

    public void Dispose() => Directory.Delete(_lockDir, recursive: true);
}
