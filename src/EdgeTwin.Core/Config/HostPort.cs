using System.Globalization;

namespace EdgeTwin.Core.Config;

/// <summary>
/// The <c>HOST[:PORT]</c> split that device addresses (<c>udp:</c>, <c>tcp:</c>, <c>rtutcp:</c>) and
/// <c>metrics.prometheus.listen</c> share: an IPv6 literal in brackets, else a host with at most one colon before the
/// port. The callers word the problems (an address names its scheme, the listen its key) and judge the host: a device
/// may be a host name, the listen must be an IP address.
/// </summary>
internal static class HostPort
{
    internal enum Problem
    {
        None,

        /// <summary><c>[</c> without its <c>]</c>.</summary>
        UnclosedBracket,

        /// <summary>Something other than <c>:PORT</c> after the <c>]</c>.</summary>
        JunkAfterBracket,

        /// <summary>More than one colon without brackets: an IPv6 literal that needs them.</summary>
        UnbracketedIPv6,
    }

    /// <summary>
    /// Splits <paramref name="text"/> into <paramref name="host"/> (without brackets; empty when missing) and
    /// <paramref name="port"/> (null without a colon; empty after a trailing one). <paramref name="bracketed"/>: the
    /// host was written in brackets.
    /// </summary>
    public static Problem Split(string text, out string host, out string? port, out bool bracketed)
    {
        port = null;
        bracketed = text.StartsWith('[');
        if (bracketed)
        {
            var close = text.IndexOf(']', StringComparison.Ordinal);
            if (close < 0)
            {
                host = "";
                return Problem.UnclosedBracket;
            }

            host = text[1..close];
            var after = text[(close + 1)..];
            if (after.Length > 0)
            {
                if (after[0] != ':')
                {
                    return Problem.JunkAfterBracket;
                }

                port = after[1..];
            }

            return Problem.None;
        }

        var colon = text.LastIndexOf(':');
        if (colon >= 0 && text.IndexOf(':', StringComparison.Ordinal) != colon)
        {
            host = text;
            return Problem.UnbracketedIPv6;
        }

        host = colon < 0 ? text : text[..colon];
        port = colon < 0 ? null : text[(colon + 1)..];
        return Problem.None;
    }

    /// <summary>A port 1–65535 in plain digits (no sign, no spaces).</summary>
    public static bool TryParsePort(string text, out int port) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out port) && port is >= 1 and <= 65535;
}
