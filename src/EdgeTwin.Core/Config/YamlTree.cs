using System.Globalization;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;

namespace EdgeTwin.Core.Config;

/// <summary>
/// Reads YAML into a <see cref="ConfigNode"/> tree from the parser's events, so every node keeps its
/// line and column and duplicate keys become diagnostics instead of exceptions. Anchors, aliases and
/// merge keys (<c>&lt;&lt;: *defaults</c>, explicit keys win) are supported.
/// </summary>
public static class YamlTree
{
    /// <summary>Parses <paramref name="yaml"/>; returns the root node, or null when the text is empty or broken (then see <paramref name="diagnostics"/>).</summary>
    /// <param name="yaml">The YAML text.</param>
    /// <param name="file">File name used in marks.</param>
    /// <param name="diagnostics">Receives syntax errors and duplicate keys.</param>
    public static ConfigNode? Parse(string yaml, string file, ConfigDiagnostics diagnostics)
    {
        ArgumentNullException.ThrowIfNull(yaml);
        ArgumentNullException.ThrowIfNull(diagnostics);
        var anchors = new Dictionary<string, ConfigNode>(StringComparer.Ordinal);
        try
        {
            IParser parser = new Parser(new StringReader(yaml));
            parser.Consume<StreamStart>();
            if (parser.Accept<StreamEnd>(out _))
            {
                diagnostics.Add(new SourceMark(file, 1, 1), string.Empty, "the file is empty");
                return null;
            }

            parser.Consume<DocumentStart>();
            if (parser.Accept<DocumentEnd>(out _))
            {
                diagnostics.Add(new SourceMark(file, 1, 1), string.Empty, "the file is empty");
                return null;
            }

            var root = ReadNode(parser, file, string.Empty, anchors, diagnostics);
            parser.Consume<DocumentEnd>();
            if (parser.Accept<DocumentStart>(out var second))
            {
                diagnostics.Add(Mark(file, second.Start), string.Empty, "only one YAML document is allowed per file");
            }

            return root;
        }
        catch (YamlException ex)
        {
            // A syntax error stops parsing; report where the parser gave up.
            var message = ex.InnerException is not null && ex.Message.Contains("see inner", StringComparison.OrdinalIgnoreCase)
                ? ex.InnerException.Message
                : ex.Message;
            message = StripMarkPrefix(message);
            if (message.Contains("tab", StringComparison.OrdinalIgnoreCase) && FirstTabIndent(yaml) is { } tab)
            {
                // The parser stops on the line before the tab, in the middle of a scalar; point at the tab itself.
                diagnostics.Add(new SourceMark(file, tab.Line, tab.Column), string.Empty, "YAML syntax error: a tab in the indentation (YAML indents with spaces only)");
                return null;
            }

            diagnostics.Add(Mark(file, ex.Start), string.Empty, "YAML syntax error: " + message);
            return null;
        }
    }

    /// <summary>1-based line and column of the first tab in a line's leading whitespace, if any.</summary>
    private static (int Line, int Column)? FirstTabIndent(string yaml)
    {
        var line = 1;
        var column = 1;
        var leading = true;
        foreach (var c in yaml)
        {
            if (c == '\n')
            {
                line++;
                column = 1;
                leading = true;
                continue;
            }

            if (leading && c == '\t')
            {
                return (line, column);
            }

            leading &= c == ' ';
            column++;
        }

        return null;
    }

    private static ConfigNode ReadNode(IParser parser, string file, string path, Dictionary<string, ConfigNode> anchors, ConfigDiagnostics diagnostics)
    {
        if (parser.TryConsume<AnchorAlias>(out var alias))
        {
            var mark = Mark(file, alias.Start);
            if (anchors.TryGetValue(alias.Value.Value, out var target))
            {
                return Rebase(target, path);
            }

            diagnostics.Add(mark, path, $"unknown anchor '*{alias.Value.Value}'");
            return new ConfigScalar(mark, string.Empty) { Path = path, IsNull = true };
        }

        ConfigNode node;
        string? anchor;
        if (parser.TryConsume<Scalar>(out var scalar))
        {
            var plain = scalar.Style is ScalarStyle.Plain or ScalarStyle.Any;
            node = new ConfigScalar(Mark(file, scalar.Start), scalar.Value)
            {
                Path = path,
                IsQuoted = !plain,
                IsNull = plain && scalar.Value is "" or "~" or "null" or "Null" or "NULL",
            };
            anchor = scalar.Anchor.IsEmpty ? null : scalar.Anchor.Value;
        }
        else if (parser.TryConsume<SequenceStart>(out var seqStart))
        {
            var items = new List<ConfigNode>();
            while (!parser.TryConsume<SequenceEnd>(out _))
            {
                items.Add(ReadNode(parser, file, path + "[" + items.Count.ToString(CultureInfo.InvariantCulture) + "]", anchors, diagnostics));
            }

            node = new ConfigSequence(Mark(file, seqStart.Start), items) { Path = path };
            anchor = seqStart.Anchor.IsEmpty ? null : seqStart.Anchor.Value;
        }
        else
        {
            var mapStart = parser.Consume<MappingStart>();
            var entries = new List<KeyValuePair<string, ConfigNode>>();
            var seen = new Dictionary<string, SourceMark>(StringComparer.Ordinal);
            var merged = new List<KeyValuePair<string, ConfigNode>>();
            while (!parser.TryConsume<MappingEnd>(out _))
            {
                var keyMark = Mark(file, parser.Current!.Start);
                string key;
                if (parser.TryConsume<Scalar>(out var keyScalar))
                {
                    key = keyScalar.Value;
                }
                else
                {
                    // Complex keys are never meaningful in our formats: skip the key node, report it.
                    _ = ReadNode(parser, file, path, anchors, diagnostics);
                    diagnostics.Add(keyMark, path, "mapping keys must be plain strings");
                    _ = ReadNode(parser, file, path, anchors, diagnostics);
                    continue;
                }

                var childPath = path.Length == 0 ? key : path + "." + key;
                var value = ReadNode(parser, file, childPath, anchors, diagnostics);
                if (key == "<<" && keyScalar.Style is ScalarStyle.Plain)
                {
                    // Merge key: explicit keys of this mapping win, whatever their order.
                    foreach (var source in value is ConfigSequence seq ? seq.Items : [value])
                    {
                        if (source is ConfigMapping sourceMap)
                        {
                            merged.AddRange(sourceMap.Entries);
                        }
                        else
                        {
                            diagnostics.Add(source, "'<<' merges mappings only");
                        }
                    }

                    continue;
                }

                if (seen.TryGetValue(key, out var first))
                {
                    diagnostics.Add(keyMark, childPath, $"duplicate key '{key}' (first defined at line {first.Line.ToString(CultureInfo.InvariantCulture)})");
                    continue;
                }

                seen[key] = keyMark;
                entries.Add(new(key, value));
            }

            foreach (var (key, value) in merged)
            {
                if (seen.TryAdd(key, value.Mark))
                {
                    entries.Add(new(key, Rebase(value, path.Length == 0 ? key : path + "." + key)));
                }
            }

            node = new ConfigMapping(Mark(file, mapStart.Start), entries) { Path = path, KeyMarks = seen };
            anchor = mapStart.Anchor.IsEmpty ? null : mapStart.Anchor.Value;
        }

        if (anchor is not null)
        {
            anchors[anchor] = node;
        }

        return node;
    }

    /// <summary>An aliased node appears under a new key path; keep the anchor's marks (that is where the text is).</summary>
    private static ConfigNode Rebase(ConfigNode node, string path) => node switch
    {
        ConfigScalar s => s with { Path = path },
        ConfigSequence q => q with
        {
            Path = path,
            Items = [.. q.Items.Select((item, i) => Rebase(item, path + "[" + i.ToString(CultureInfo.InvariantCulture) + "]"))],
        },
        ConfigMapping m => m with
        {
            Path = path,
            Entries = [.. m.Entries.Select(e => new KeyValuePair<string, ConfigNode>(e.Key, Rebase(e.Value, path.Length == 0 ? e.Key : path + "." + e.Key)))],
        },
        _ => node,
    };

    private static SourceMark Mark(string file, Mark mark) => new(file, (int)Math.Max(1, mark.Line), (int)Math.Max(1, mark.Column));

    private static string StripMarkPrefix(string message)
    {
        // YamlDotNet prefixes "(Line: 3, Col: 5, Idx: 20) - (Line: ...): "; our format carries the position already.
        var idx = message.IndexOf("): ", StringComparison.Ordinal);
        return message.StartsWith("(Line:", StringComparison.Ordinal) && idx > 0 ? message[(idx + 3)..] : message;
    }
}
