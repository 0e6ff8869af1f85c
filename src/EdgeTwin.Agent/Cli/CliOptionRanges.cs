using System.CommandLine;
using System.Globalization;

namespace EdgeTwin.Agent.Cli;

/// <summary>Range checks on numeric options, so that a bad value is a one-line usage error naming the option, not an exception text.</summary>
internal static class CliOptionRanges
{
    public static Option<int> AtLeast(this Option<int> option, int min)
    {
        option.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int>() < min)
            {
                r.AddError(string.Create(CultureInfo.InvariantCulture, $"{option.Name} must be at least {min}, got {r.GetValueOrDefault<int>()}"));
            }
        });
        return option;
    }

    public static Option<double?> Positive(this Option<double?> option)
    {
        option.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<double?>() is { } v && !(v > 0))
            {
                r.AddError(string.Create(CultureInfo.InvariantCulture, $"{option.Name} must be a positive number of seconds, got {v}"));
            }
        });
        return option;
    }

    public static Option<double> Positive(this Option<double> option)
    {
        option.Validators.Add(r =>
        {
            if (!(r.GetValueOrDefault<double>() > 0))
            {
                r.AddError(string.Create(CultureInfo.InvariantCulture, $"{option.Name} must be positive, got {r.GetValueOrDefault<double>()}"));
            }
        });
        return option;
    }
}
