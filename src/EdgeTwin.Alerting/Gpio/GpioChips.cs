using System.Device.Gpio;
using System.Device.Gpio.Drivers;
using System.Globalization;

namespace EdgeTwin.Alerting.Gpio;

/// <summary>
/// The <c>chip:</c> of a GPIO sink: <c>auto</c> (the board's default controller), <c>simulated</c>, or a gpiochip number
/// (<c>4</c> or <c>gpiochip4</c>). Before, every value but <c>simulated</c> opened the default controller, so a relay
/// configured on <c>chip: 4</c> (a Raspberry Pi 5's header on kernels before 6.6.45) was driven on gpiochip0's line of that
/// number, and the relay never switched.
/// </summary>
public static class GpioChips
{
    public const string Auto = "auto";
    public const string Simulated = "simulated";

    /// <summary>The chip number of <paramref name="chip"/>, or null for <c>auto</c> and <c>simulated</c>; false when it is none of them.</summary>
    public static bool TryParse(string chip, out int? number)
    {
        ArgumentNullException.ThrowIfNull(chip);
        number = null;
        if (chip is Auto or Simulated)
        {
            return true;
        }

        var digits = chip.StartsWith("gpiochip", StringComparison.Ordinal) ? chip["gpiochip".Length..] : chip;
        if (digits.Length is > 0 and <= 4 && int.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out var n))
        {
            number = n;
            return true;
        }

        return false;
    }

    /// <summary>Opens the controller of a real chip (not <c>simulated</c>): a numbered one through libgpiod, on that chip only.</summary>
    public static GpioController Open(string chip)
    {
        if (!TryParse(chip, out var number) || chip == Simulated)
        {
            throw new ArgumentException($"'{chip}' is not a GPIO chip (auto, simulated or a gpiochip number)", nameof(chip));
        }

        if (number is not { } n)
        {
            return new GpioController();
        }

        var device = $"/dev/gpiochip{n}";
        if (!File.Exists(device))
        {
            // libgpiod's own error for a missing chip names neither the chip nor the key.
            throw new IOException($"chip: {chip}: there is no {device} on this machine (`gpiodetect` lists the chips)");
        }

        return new GpioController(new LibGpiodDriver(n));
    }
}
