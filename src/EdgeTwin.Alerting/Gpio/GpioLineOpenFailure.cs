namespace EdgeTwin.Alerting.Gpio;

/// <summary>What opening a GPIO line for the alert outputs or alarm inputs may throw, and how it is explained.</summary>
internal static class GpioLineOpenFailure
{
    /// <summary>The exceptions of a line that cannot be opened now (busy, no such pin, no driver): retried, not fatal.</summary>
    public static bool Is(Exception ex) =>
        ex is IOException or UnauthorizedAccessException or InvalidOperationException or ArgumentException or PlatformNotSupportedException or NotSupportedException;

    /// <summary>Where an engineer looks next.</summary>
    public const string Hint = "(busy: another process or a kernel driver holds the line, `gpioinfo` names it; the pins are BCM numbers)";
}
