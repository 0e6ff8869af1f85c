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

    /// <summary>
    /// <paramref name="url"/> as <c>scheme://host:port/path</c>: a user name and password become <c>***@</c>, every query
    /// value is masked (<c>?token=***</c>; a bare query item becomes <c>***</c>) and the fragment is dropped. The port is
    /// shown when it is not the scheme's default. A secret written into the path itself is not recognisable and stays.
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
        sb.Append(url.Authority).Append(url.AbsolutePath);
        AppendQuery(sb, url.Query.AsSpan());
        return sb.ToString();
    }

    /// <summary>
    /// The same for text that may not even parse as a URL (a typo in the config): whatever precedes the last <c>@</c> of
    /// the part before the path becomes <c>***</c>, query values are masked and the fragment is dropped.
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
        sb.Append(query < 0 ? s : s[..query]);
        if (query >= 0)
        {
            AppendQuery(sb, s[query..]);
        }

        return sb.ToString();
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
