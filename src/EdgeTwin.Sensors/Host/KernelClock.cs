using System.Runtime.InteropServices;

namespace EdgeTwin.Sensors.Host;

/// <summary>What the kernel's NTP state says of the system clock (adjtimex(2) with modes = 0: a read, no privilege).</summary>
/// <param name="State">The return value: TIME_OK (0) … TIME_ERROR (5).</param>
/// <param name="Status">The <c>status</c> bits (STA_UNSYNC = 0x40).</param>
/// <param name="MaxErrorMicroseconds">The kernel's maximum error estimate, µs; grows 500 µs/s until a time daemon resets it.</param>
public readonly record struct ClockReading(int State, int Status, long MaxErrorMicroseconds)
{
    /// <summary>TIME_ERROR: the clock is not synchronised (or a PPS signal is bad).</summary>
    public const int TimeError = 5;

    /// <summary>STA_UNSYNC.</summary>
    public const int StaUnsync = 0x40;

    /// <summary>NTP_PHASE_LIMIT: the kernel caps maxerror here, and sets STA_UNSYNC, when no daemon has updated it for too long.</summary>
    public const long PhaseLimitMicroseconds = 16_000_000;

    /// <summary>
    /// Synchronised when the maximum error is below the 16 s the kernel caps it at, as systemd's ntp_synced() decides
    /// (timedatectl's "System clock synchronized"): chrony without <c>rtcsync</c> keeps STA_UNSYNC set on purpose
    /// (it stops the kernel's 11-minute RTC writes), so the flag alone called a chrony-synced gateway unsynchronised.
    /// A daemon that stops updating lets maxerror climb to the cap within hours, and the kernel then sets STA_UNSYNC itself.
    /// </summary>
    public bool Synchronized => MaxErrorMicroseconds < PhaseLimitMicroseconds;
}

/// <summary>adjtimex(2) with modes = 0. Offsets in C longs so one buffer serves 64-bit and 32-bit glibc alike.</summary>
public static partial class KernelClock
{
    // struct timex: int modes; long offset, freq, maxerror, esterror; int status; … (208 bytes on LP64, 128 on ILP32).
    private const int MaxErrorSlot = 3;
    private const int StatusSlot = 5;
    private const int Eperm = 1;

    /// <summary>Reads the kernel's clock state; throws <see cref="IOException"/> naming the call when it fails.</summary>
    public static ClockReading Read()
    {
        var buffer = default(TimexBuffer); // zeroed: modes = 0, nothing is changed
        var state = AdjTimex(ref buffer);
        if (state < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new IOException(errno == Eperm
                ? "adjtimex(2): EPERM — the process may not read the kernel clock state (a systemd unit with ProtectClock=yes or SystemCallFilter=~@clock denies even the read)"
                : $"adjtimex(2) failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})");
        }

        ReadOnlySpan<byte> bytes = MemoryMarshal.AsBytes((Span<ulong>)buffer);
        var size = IntPtr.Size;
        var maxError = size == 8 ? BitConverter.ToInt64(bytes.Slice(MaxErrorSlot * 8, 8)) : BitConverter.ToInt32(bytes.Slice(MaxErrorSlot * 4, 4));
        var status = BitConverter.ToInt32(bytes.Slice(StatusSlot * size, 4));
        return new ClockReading(state, status, maxError);
    }

    /// <summary>Room for struct timex on any ABI (it is 208 bytes on x64 and arm64).</summary>
    [System.Runtime.CompilerServices.InlineArray(40)]
    private struct TimexBuffer
    {
        private ulong _element;
    }

    [LibraryImport("libc", EntryPoint = "adjtimex", SetLastError = true)]
    private static partial int AdjTimex(ref TimexBuffer buffer);
}
