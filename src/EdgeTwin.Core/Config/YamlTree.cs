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
    /// <summary>
    /// Most nodes aliases and merge keys may produce in one file. Each alias is a copy, so nested aliases multiply
    /// ("billion laughs": 441 bytes made 6 GB); real configs reuse a few small blocks, far below this.
    /// </summary>
    public const int MaxAliasNodes = 100_000;

    /// <summary>Deepest nesting of mappings and sequences; real configs stay below 15, and the reader recurses.</summary>
    public const int MaxDepth = 100;

    /// <summary>Parses <paramref name="yaml"/>; returns the root node, or null when the text is empty or broken (then see <paramref name="diagnostics"/>).</summary>
    /// <param name="yaml">The YAML text.</param>
    /// <param name="file">File name used in marks.</param>
    /// <param name="diagnostics">Receives syntax errors and duplicate keys.</param>
    public static ConfigNode? Parse(string yaml, string file, ConfigDiagnostics diagnostics)
    {
        ArgumentNullException.ThrowIfNull(yaml);
        ArgumentNullException.ThrowIfNull(diagnostics);
        var anchors = new Dictionary<string, ConfigNode>(StringComparer.Ordinal);
        var state = new ReadState(file, anchors, diagnostics);
        try
        {
            IParser parser = new GuardedParser(new Parser(new StringReader(yaml)), yaml);
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

            var root = ReadNode(parser, string.Empty, state, depth: 0);
            parser.Consume<DocumentEnd>();
            if (parser.Accept<DocumentStart>(out var second))
            {
                diagnostics.Add(Mark(file, second.Start), string.Empty, "only one YAML document is allowed per file");
            }

            return root;
        }
        catch (TooDeepException ex)
        {
            diagnostics.Add(ex.Mark, ex.Path, $"nested deeper than {MaxDepth.ToString(CultureInfo.InvariantCulture)} levels; no EdgeTwin file needs that many (reading stopped here)");
            return null;
        }
        catch (ParserFailedException ex)
        {
            diagnostics.Add(new SourceMark(file, ex.Line, ex.Column), string.Empty, "YAML syntax error: " + ex.Message);
            return null;
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

    /// <summary>1-based line and column just past the last character of <paramref name="text"/> (where a cut file ends).</summary>
    private static (int Line, int Column) EndOf(string text)
    {
        var line = 1;
        var column = 1;
        foreach (var c in text)
        {
            if (c == '\n')
            {
                line++;
                column = 1;
            }
            else
            {
                column++;
            }
        }

        return (line, column);
    }

    /// <summary>
    /// The parser, with its own failures turned into syntax errors. YamlDotNet's scanner throws plain exceptions (not
    /// <see cref="YamlException"/>) on some inputs, e.g. <see cref="InvalidOperationException"/> for a file that ends
    /// inside a flow collection (<c>site: {id: x</c>, a config cut short); those went past <see cref="Parse"/> as a
    /// stack trace and exit 1. The flow collections open so far tell what was missing.
    /// </summary>
    private sealed class GuardedParser(IParser inner, string yaml) : IParser
    {
        private readonly Stack<(bool Mapping, YamlDotNet.Core.Mark Start)> _flow = new();
        private YamlDotNet.Core.Mark _last = YamlDotNet.Core.Mark.Empty;

        public ParsingEvent? Current => inner.Current;

        public bool MoveNext()
        {
            bool moved;
            try
            {
                moved = inner.MoveNext();
            }
            catch (YamlException)
            {
                throw;
            }
            catch (Exception ex) when (ex is not (OutOfMemoryException or StackOverflowException or TooDeepException))
            {
                throw Failed(ex);
            }

            if (moved && inner.Current is { } e)
            {
                _last = e.End;
                switch (e)
                {
                    case MappingStart { Style: MappingStyle.Flow }:
                        _flow.Push((true, e.Start));
                        break;
                    case SequenceStart { Style: SequenceStyle.Flow }:
                        _flow.Push((false, e.Start));
                        break;
                    case MappingEnd or SequenceEnd when _flow.Count > 0:
                        // A block collection cannot sit inside a flow one, so with one open this end is its.
                        _flow.Pop();
                        break;
                }
            }

            return moved;
        }

        private ParserFailedException Failed(Exception ex)
        {
            var (line, column) = EndOf(yaml);
            if (_flow.TryPeek(out var open))
            {
                var (what, opening, closing) = open.Mapping ? ("mapping", '{', '}') : ("sequence", '[', ']');
                return new ParserFailedException(line, column, string.Create(
                    CultureInfo.InvariantCulture,
                    $"the file ends inside the flow {what} '{opening}' opened at line {open.Start.Line}, column {open.Start.Column} (a '{closing}' is missing; was the file cut short?)"),
                    ex);
            }

            // No open flow collection to blame: say where reading stopped (the end of the last node read).
            return new ParserFailedException(
                (int)Math.Max(1, _last.Line),
                (int)Math.Max(1, _last.Column),
                $"the YAML parser gave up after this point ({ex.GetType().Name}: {ex.Message})",
                ex);
        }
    }

    /// <summary>The YAML parser failed with an exception of its own; <see cref="Line"/> and <see cref="Column"/> say where.</summary>
    private sealed class ParserFailedException(int line, int column, string message, Exception inner) : Exception(message, inner)
    {
        public int Line { get; } = line;

        public int Column { get; } = column;
    }

    private sealed class TooDeepException(SourceMark mark, string path) : Exception
    {
        public SourceMark Mark { get; } = mark;

        public string Path { get; } = path;
    }

    /// <summary>What one parse shares across the recursion: where anchors point and how much alias expansion is left.</summary>
    private sealed class ReadState(string file, Dictionary<string, ConfigNode> anchors, ConfigDiagnostics diagnostics)
    {
        public string File { get; } = file;

        public Dictionary<string, ConfigNode> Anchors { get; } = anchors;

        public ConfigDiagnostics Diagnostics { get; } = diagnostics;

        public int AliasNodes { get; set; }

        /// <summary>Set once the budget is spent or the nesting too deep: later aliases expand to null without a diagnostic each.</summary>
        public bool Exhausted { get; set; }
    }

    private static ConfigNode ReadNode(IParser parser, string path, ReadState state, int depth)
    {
        var file = state.File;
        var diagnostics = state.Diagnostics;
        var anchors = state.Anchors;
        if (parser.TryConsume<AnchorAlias>(out var alias))
        {
            var mark = Mark(file, alias.Start);
            if (anchors.TryGetValue(alias.Value.Value, out var target))
            {
                if (TryTakeAliasNodes(state, target, mark, path, "*" + alias.Value.Value))
                {
                    return Rebase(target, path);
                }
            }
            else
            {
                diagnostics.Add(mark, path, $"unknown anchor '*{alias.Value.Value}'");
            }

            return new ConfigScalar(mark, string.Empty) { Path = path, IsNull = true };
        }

        if (depth >= MaxDepth && (parser.Current is SequenceStart or MappingStart))
        {
            // Stop reading: recursing further could overflow the stack, and the YAML scanner slows down quadratically
            // with flow nesting (200,000 brackets took minutes), so skipping the subtree would not be cheap either.
            throw new TooDeepException(Mark(file, parser.Current.Start), path);
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
                items.Add(ReadNode(parser, path + "[" + items.Count.ToString(CultureInfo.InvariantCulture) + "]", state, depth + 1));
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
                    _ = ReadNode(parser, path, state, depth + 1);
                    diagnostics.Add(keyMark, path, "mapping keys must be plain strings");
                    _ = ReadNode(parser, path, state, depth + 1);
                    continue;
                }

                var childPath = path.Length == 0 ? key : path + "." + key;
                var value = ReadNode(parser, childPath, state, depth + 1);
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
                var mergedPath = path.Length == 0 ? key : path + "." + key;
                if (seen.TryAdd(key, value.Mark) && TryTakeAliasNodes(state, value, value.Mark, mergedPath, "'<<'"))
                {
                    entries.Add(new(key, Rebase(value, mergedPath)));
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

    /// <summary>Charges a copy of <paramref name="target"/> to the alias budget; false (and one diagnostic per file) once it is spent.</summary>
    private static bool TryTakeAliasNodes(ReadState state, ConfigNode target, SourceMark mark, string path, string what)
    {
        if (state.Exhausted)
        {
            return false;
        }

        // Counting stops at the remaining budget, so a huge target costs no more than the budget to measure.
        var remaining = MaxAliasNodes - state.AliasNodes;
        var size = CountNodes(target, remaining + 1);
        if (size <= remaining)
        {
            state.AliasNodes += size;
            return true;
        }

        state.Exhausted = true;
        state.Diagnostics.Add(mark, path, $"{what}: aliases and merge keys would copy more than {MaxAliasNodes.ToString("N0", CultureInfo.InvariantCulture)} nodes in this file (nested aliases multiply); write the repeated parts out or nest fewer aliases");
        return false;
    }

    private static int CountNodes(ConfigNode node, int limit)
    {
        var count = 0;
        var pending = new Stack<ConfigNode>();
        pending.Push(node);
        while (pending.Count > 0 && count < limit)
        {
            count++;
            switch (pending.Pop())
            {
                case ConfigSequence q:
                    foreach (var item in q.Items)
                    {
                        pending.Push(item);
                    }

                    break;
                case ConfigMapping m:
                    foreach (var entry in m.Entries)
                    {
                        pending.Push(entry.Value);
                    }

                    break;
            }
        }

        return count;
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
