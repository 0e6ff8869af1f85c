using System.Text;

namespace EdgeTwin.Core.Config;

/// <summary>
/// Texts that may carry secrets, made fit for logs, exception messages and <c>edgetwin check</c> output (which end up in
/// journald, Ansible and CI logs). One place, so every message about a URL shows the same safe form.
/// </summary>
public static class Redact
{
    /// <summary>What stands for a hidden value.</summary>
    public const string Mask = "***";

    /// <summary>The shortest path segment <see cref="IsTokenSegment"/> takes for a token.</summary>
    public const int TokenSegmentMinLength = 16;

    /// <summary>
    /// <paramref name="url"/> as <c>scheme://host:port/path</c>: a user name and password become <c>***@</c>, a path
    /// segment that looks like a token (<see cref="IsTokenSegment"/>: Slack's, Discord's, Teams' webhook keys) becomes
    /// <c>***</c>, every query value is masked (<c>?token=***</c>; a bare query item becomes <c>***</c>) and the fragment is
    /// dropped. The port is shown when it is not the scheme's default; the host and the other segments stay readable.
    /// </summary>
    public static string Url(Uri url)
    {
        ArgumentNullException.ThrowIfNull(url);
        if (!url.IsAbsoluteUri)
        {
            return Url(url.OriginalString);
        }

        var sb = new StringBuilder(url.Scheme.Length + url.Authority.Length + url.AbsolutePath.Length + 16);
        sb.Append(url.Scheme).Append("://");
        if (url.UserInfo.Length > 0)
        {
            sb.Append(Mask).Append('@');
        }

        // Authority is host[:port] without the user info; the port only when it is not the default.
        sb.Append(url.Authority);
        AppendPath(sb, url.AbsolutePath.AsSpan());
        AppendQuery(sb, url.Query.AsSpan());
        return sb.ToString();
    }

    /// <summary>
    /// Whether <paramref name="url"/> carries something <see cref="Url(Uri)"/> hides: a user name or password, a query,
    /// or a path segment that looks like a token. Such a URL written in the config is an inline secret of it.
    /// </summary>
    public static bool HasSecret(Uri url)
    {
        ArgumentNullException.ThrowIfNull(url);
        if (!url.IsAbsoluteUri)
        {
            return !string.Equals(Url(url.OriginalString), url.OriginalString, StringComparison.Ordinal);
        }

        if (url.UserInfo.Length > 0 || url.Query.Length > 1)
        {
            return true;
        }

        foreach (var range in url.AbsolutePath.AsSpan().Split('/'))
        {
            if (IsTokenSegment(url.AbsolutePath.AsSpan()[range]))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// Whether a URL path segment looks like a secret key rather than a name: at least
    /// <see cref="TokenSegmentMinLength"/> characters, only <c>[A-Za-z0-9_-]</c>, with both letters and digits.
    /// Webhook services put their key in the path (<c>https://hooks.slack.com/services/T…/B…/KEY</c>,
    /// <c>/api/webhooks/ID/TOKEN</c>): random keys of that length mix letters and digits, while names (<c>services</c>,
    /// <c>alerts</c>, <c>incoming-webhook</c>) and numeric ids have none or only one kind. A long name with a digit
    /// (<c>edgetwin-alerts-2026</c>) is masked too: hiding a name is the safe mistake.
    /// </summary>
    public static bool IsTokenSegment(ReadOnlySpan<char> segment)
    {
        if (segment.Length < TokenSegmentMinLength)
        {
            return false;
        }

        bool letter = false, digit = false;
        foreach (var c in segment)
        {
            if (char.IsAsciiLetter(c))
            {
                letter = true;
            }
            else if (char.IsAsciiDigit(c))
            {
                digit = true;
            }
            else if (c is not ('_' or '-'))
            {
                return false;
            }
        }

        return letter && digit;
    }

    /// <summary>
    /// The same for text that may not even parse as a URL (a typo in the config): whatever precedes the last <c>@</c> of
    /// the part before the path becomes <c>***</c>, token-like path segments and query values are masked and the
    /// fragment is dropped.
    /// </summary>
    public static string Url(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var s = text.AsSpan();
        var hash = s.IndexOf('#');
        if (hash >= 0)
        {
            s = s[..hash];
        }

        var sb = new StringBuilder(s.Length + 8);
        var schemeEnd = s.IndexOf("://".AsSpan(), StringComparison.Ordinal);
        if (schemeEnd >= 0)
        {
            sb.Append(s[..(schemeEnd + 3)]);
            s = s[(schemeEnd + 3)..];
        }

        var authorityEnd = s.IndexOfAny('/', '?');
        var authority = authorityEnd < 0 ? s : s[..authorityEnd];
        var at = authority.LastIndexOf('@');
        if (at >= 0)
        {
            sb.Append(Mask);
            s = s[at..];
        }

        var query = s.IndexOf('?');
        var beforeQuery = query < 0 ? s : s[..query];
        // The host (up to the first '/') as written; the path's segments may hold a token.
        var path = beforeQuery.IndexOf('/');
        sb.Append(path < 0 ? beforeQuery : beforeQuery[..path]);
        if (path >= 0)
        {
            AppendPath(sb, beforeQuery[path..]);
        }

        if (query >= 0)
        {
            AppendQuery(sb, s[query..]);
        }

        return sb.ToString();
    }

    /// <summary>Appends <paramref name="path"/> with every token-like segment (<see cref="IsTokenSegment"/>) masked.</summary>
    private static void AppendPath(StringBuilder sb, ReadOnlySpan<char> path)
    {
        var first = true;
        foreach (var range in path.Split('/'))
        {
            if (!first)
            {
                sb.Append('/');
            }

            first = false;
            var segment = path[range];
            if (IsTokenSegment(segment))
            {
                sb.Append(Mask);
            }
            else
            {
                sb.Append(segment);
            }
        }
    }

    /// <summary>Appends <paramref name="query"/> (with its leading <c>?</c>, or empty) with every value masked.</summary>
    private static void AppendQuery(StringBuilder sb, ReadOnlySpan<char> query)
    {
        if (query.Length <= 1)
        {
            return;
        }

        sb.Append('?');
        var first = true;
        foreach (var range in query[1..].Split('&'))
        {
            var item = query[1..][range];
            if (!first)
            {
                sb.Append('&');
            }

            first = false;
            var eq = item.IndexOf('=');

            if (eq >= 0)
            {
                sb.Append(item[..(eq + 1)]).Append(Mask);
            }
            else if (item.Length > 0)
            {
                // A bare item (?SECRET) may be the secret itself, so only a key before '=' is shown.
                sb.Append(Mask);
            }
        }
    }
}
