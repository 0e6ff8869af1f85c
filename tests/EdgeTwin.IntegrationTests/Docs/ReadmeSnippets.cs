using System.Text.RegularExpressions;

namespace EdgeTwin.IntegrationTests.Docs;

/// <summary>A fenced code block of a Markdown file, with the marker comment written just above it (if any).</summary>
/// <param name="File">The Markdown file, relative to the repository root.</param>
/// <param name="Line">The line of the opening fence (1-based).</param>
/// <param name="Language">The fence's info string (<c>yaml</c>, <c>sh</c>, or empty).</param>
/// <param name="Text">The block's lines, the fence's indentation removed.</param>
/// <param name="Marker">What <c>&lt;!-- readme-check: … --&gt;</c> just above the fence says, or null.</param>
internal sealed record ReadmeBlock(string File, int Line, string Language, string Text, string? Marker)
{
    public string Where => $"{File}:{Line}";
}

/// <summary>The documentation a site engineer follows: every README, and the model cards under <c>models/</c>.</summary>
internal static partial class ReadmeSnippets
{
    public static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "EdgeTwin.sln")))
            {
                return dir.FullName;
            }
        }

        throw new DirectoryNotFoundException($"EdgeTwin.sln not found above {AppContext.BaseDirectory}");
    }

    /// <summary>Every README.md of the checkout (build output left out) and models/*.md, relative paths, sorted.</summary>
    public static IReadOnlyList<string> Files()
    {
        var root = RepoRoot();
        var files = Directory.EnumerateFiles(root, "README.md", SearchOption.AllDirectories)
            .Concat(Directory.EnumerateFiles(Path.Combine(root, "models"), "*.md", SearchOption.TopDirectoryOnly))
            .Select(f => Path.GetRelativePath(root, f).Replace('\\', '/'))
            .Where(f => !f.Split('/').Any(part => part is "bin" or "obj" or ".git" || part.StartsWith('.')))
            .Distinct(StringComparer.Ordinal)
            .Order(StringComparer.Ordinal)
            .ToList();
        return files;
    }

    /// <summary>The fenced blocks of one file; a fence inside a list item may be indented.</summary>
    public static IEnumerable<ReadmeBlock> Blocks(string relativePath)
    {
        var lines = File.ReadAllLines(Path.Combine(RepoRoot(), relativePath));
        for (var i = 0; i < lines.Length; i++)
        {
            var open = Fence().Match(lines[i]);
            if (!open.Success)
            {
                continue;
            }

            var indent = open.Groups["indent"].Length;
            var body = new List<string>();
            var j = i + 1;
            for (; j < lines.Length && !Fence().IsMatch(lines[j]); j++)
            {
                var line = lines[j];
                body.Add(line.Length >= indent && string.IsNullOrWhiteSpace(line[..indent]) ? line[indent..] : line.TrimStart());
            }

            yield return new ReadmeBlock(relativePath, i + 1, open.Groups["lang"].Value, string.Join('\n', body) + "\n", MarkerAbove(lines, i));
            i = j;
        }
    }

    private static string? MarkerAbove(string[] lines, int fence)
    {
        for (var k = fence - 1; k >= 0; k--)
        {
            if (string.IsNullOrWhiteSpace(lines[k]))
            {
                continue;
            }

            var m = Marker().Match(lines[k]);
            return m.Success ? m.Groups[1].Value.Trim() : null;
        }

        return null;
    }

    [GeneratedRegex(@"^(?<indent>\s*)```(?<lang>[A-Za-z0-9_+-]*)\s*$")]
    private static partial Regex Fence();

    [GeneratedRegex(@"^\s*<!--\s*readme-check:(.*?)-->\s*$")]
    private static partial Regex Marker();
}
