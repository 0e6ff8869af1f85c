using System.Globalization;
using System.Text.Json;

namespace EdgeTwin.Twin.Models;

/// <summary>
/// <c>manifest.json</c> of a models directory: every model the gateway may run, with the hash of its file and
/// the contract of its inputs and outputs. Schema in src/EdgeTwin.Twin/Models/README.md.
/// </summary>
public sealed record ModelManifest(int SchemaVersion, IReadOnlyList<ModelEntry> Models)
{
    public const string FileName = "manifest.json";
    public const int CurrentSchemaVersion = 1;

    /// <summary>The entry named <paramref name="name"/>, or null.</summary>
    public ModelEntry? Find(string name) => Models.FirstOrDefault(m => string.Equals(m.Name, name, StringComparison.Ordinal));

    /// <summary>Reads and validates a manifest file; every problem names the file and the JSON path.</summary>
    public static ModelManifest Load(string path)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ModelLoadException(path, "", $"cannot read: {e.Message}", e);
        }

        return Parse(bytes, path);
    }

    /// <summary>Parses manifest JSON; <paramref name="path"/> is used in error messages.</summary>
    public static ModelManifest Parse(ReadOnlySpan<byte> json, string path)
    {
        // JsonDocument checks a string's UTF-8 only when the string is read, and then throws InvalidOperationException,
        // which escaped the catalog: a damaged byte inside a string value stopped the agent instead of naming the file.
        if (EdgeTwin.Core.Utf8Text.InvalidAt(json) is { } bad)
        {
            var line = json[..bad].Count((byte)'\n') + 1;
            var column = bad - (json[..bad].LastIndexOf((byte)'\n') + 1) + 1;
            throw new ModelLoadException(path, "", string.Create(CultureInfo.InvariantCulture, $"not UTF-8 (invalid byte 0x{json[bad]:X2} at line {line}, byte {column})"));
        }

        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json.ToArray(), new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        }
        catch (JsonException e)
        {
            // System.Text.Json appends its own 0-based "LineNumber: … | BytePositionInLine: …": print one 1-based position.
            var position = e.LineNumber is { } line ? $"line {line + 1}, byte {(e.BytePositionInLine ?? 0) + 1}" : "position unknown";
            throw new ModelLoadException(path, e.Path ?? "", $"not valid JSON ({position}): {JsonErrorText(e)}", e);
        }

        using (doc)
        {
            var r = new JsonFields(path);
            var root = r.Object(doc.RootElement, "");
            var schema = r.Int(root, "schemaVersion", "");
            if (schema != CurrentSchemaVersion)
            {
                throw new ModelLoadException(path, "schemaVersion", $"unsupported version {schema} (expected {CurrentSchemaVersion})");
            }

            var models = new List<ModelEntry>();
            var names = new HashSet<string>(StringComparer.Ordinal);
            var i = 0;
            foreach (var m in r.Array(root, "models", "").EnumerateArray())
            {
                var at = $"models[{i++}]";
                var entry = ReadEntry(r, r.Object(m, at), at);
                if (!names.Add(entry.Name))
                {
                    throw new ModelLoadException(path, at + ".name", $"duplicate model name '{entry.Name}'");
                }

                models.Add(entry);
            }

            return new ModelManifest(schema, models);
        }
    }

    /// <summary>The parser's message without the 0-based location it appends.</summary>
    private static string JsonErrorText(JsonException e)
    {
        var message = e.Message;
        var at = message.IndexOf(" LineNumber:", StringComparison.Ordinal);
        return at > 0 ? message[..at] : message;
    }

    private static ModelEntry ReadEntry(JsonFields r, JsonElement m, string at)
    {
        var name = r.String(m, "name", at);
        if (name.Length == 0 || name.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.')))
        {
            throw new ModelLoadException(r.Path, at + ".name", $"'{name}' is not a model name (letters, digits, '-', '_', '.')");
        }

        var file = r.String(m, "file", at);
        if (file.Length == 0 || Path.IsPathRooted(file) || file.Contains("..", StringComparison.Ordinal) || file.Contains('/', StringComparison.Ordinal) || file.Contains('\\', StringComparison.Ordinal))
        {
            // Model files sit beside the manifest: deploy ships the directory as a unit.
            throw new ModelLoadException(r.Path, at + ".file", $"'{file}' must be a plain file name in the models directory");
        }

        var sha = r.String(m, "sha256", at).ToLowerInvariant();
        if (sha.Length != 64 || !sha.All(char.IsAsciiHexDigit))
        {
            throw new ModelLoadException(r.Path, at + ".sha256", "must be 64 hex digits");
        }

        var inputs = ReadTensors(r, m, "inputs", at);
        var outputs = ReadTensors(r, m, "outputs", at);
        return new ModelEntry(name, r.String(m, "version", at), r.OptionalString(m, "kind") ?? "", file, sha, inputs, outputs)
        {
            Description = r.OptionalString(m, "description") ?? "",
            InSample = m.TryGetProperty("inSample", out var inSample) ? ReadInSample(r, inSample, at + ".inSample") : null,
            RawJson = m.GetRawText(),
            Field = at,
        };
    }

    /// <summary>The optional <c>inSample</c> object: evaluation files the model was trained on, by content hash.</summary>
    private static InSampleFiles ReadInSample(JsonFields r, JsonElement e, string at)
    {
        var o = r.Object(e, at);
        var files = new List<InSampleFile>();
        var i = 0;
        foreach (var f in r.Array(o, "files", at).EnumerateArray())
        {
            var fat = $"{at}.files[{i++}]";
            var fo = r.Object(f, fat);
            var fileName = r.String(fo, "name", fat);
            var fileSha = r.String(fo, "sha256", fat).ToLowerInvariant();
            if (fileSha.Length != 64 || !fileSha.All(char.IsAsciiHexDigit))
            {
                throw new ModelLoadException(r.Path, fat + ".sha256", "must be 64 hex digits");
            }

            files.Add(new InSampleFile(fileName, fileSha));
        }

        if (o.TryGetProperty("note", out var note) && note.ValueKind != JsonValueKind.String)
        {
            throw new ModelLoadException(r.Path, at + ".note", "expected a string");
        }

        return new InSampleFiles(r.OptionalString(o, "note") ?? "", files);
    }

    private static List<TensorSpec> ReadTensors(JsonFields r, JsonElement m, string key, string at)
    {
        var list = new List<TensorSpec>();
        var i = 0;
        foreach (var t in r.Array(m, key, at).EnumerateArray())
        {
            var tat = $"{at}.{key}[{i++}]";
            var o = r.Object(t, tat);
            var shape = new List<long>();
            var j = 0;
            foreach (var d in r.Array(o, "shape", tat).EnumerateArray())
            {
                if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out var v) || v < -1 || v == 0)
                {
                    throw new ModelLoadException(r.Path, $"{tat}.shape[{j}]", "must be a positive integer or -1 (any size)");
                }

                shape.Add(v);
                j++;
            }

            var type = r.OptionalString(o, "type") ?? "float32";
            if (type != "float32")
            {
                throw new ModelLoadException(r.Path, tat + ".type", $"'{type}' is not supported (float32 only)");
            }

            var features = o.TryGetProperty("features", out var f) && f.ValueKind == JsonValueKind.Array
                ? r.Strings(f, $"{tat}.features")
                : [];
            var units = o.TryGetProperty("units", out var u) && u.ValueKind == JsonValueKind.Array
                ? r.Strings(u, $"{tat}.units")
                : o.TryGetProperty("unit", out var u1) && u1.ValueKind == JsonValueKind.String ? [u1.GetString()!] : [];
            list.Add(new TensorSpec(r.String(o, "name", tat), shape.ToArray(), type, features, units)
            {
                Normalisation = o.TryGetProperty("normalisation", out var n) ? n.Clone() : null,
                Uncertainty = o.TryGetProperty("uncertainty", out var un) ? un.Clone() : null,
                Cap = o.TryGetProperty("cap", out var c) && c.ValueKind == JsonValueKind.Number ? c.GetDouble() : null,
                Field = tat,
            });
        }

        if (list.Count == 0)
        {
            throw new ModelLoadException(r.Path, $"{at}.{key}", "must list at least one tensor");
        }

        return list;
    }

    /// <summary>Field readers that throw <see cref="ModelLoadException"/> naming the file and JSON path.</summary>
    private readonly struct JsonFields(string path)
    {
        public string Path { get; } = path;

        public JsonElement Object(JsonElement e, string at) =>
            e.ValueKind == JsonValueKind.Object ? e : throw new ModelLoadException(Path, at, $"expected an object, found {e.ValueKind}");

        public JsonElement Array(JsonElement o, string key, string at) =>
            Get(o, key, at) is { ValueKind: JsonValueKind.Array } a ? a : throw new ModelLoadException(Path, Join(at, key), "expected an array");

        public string String(JsonElement o, string key, string at) =>
            Get(o, key, at) is { ValueKind: JsonValueKind.String } s ? s.GetString()! : throw new ModelLoadException(Path, Join(at, key), "expected a string");

        /// <summary>An array of strings (null as ""); anything else in it names its index. Regression: a number in
        /// "features" threw InvalidOperationException, which the catalog does not catch (found by fuzzing).</summary>
        public string[] Strings(JsonElement array, string at)
        {
            var result = new string[array.GetArrayLength()];
            var i = 0;
            foreach (var x in array.EnumerateArray())
            {
                result[i] = x.ValueKind switch
                {
                    JsonValueKind.String => x.GetString()!,
                    JsonValueKind.Null => "",
                    _ => throw new ModelLoadException(Path, $"{at}[{i}]", $"expected a string, found {x.ValueKind}"),
                };
                i++;
            }

            return result;
        }

        public string? OptionalString(JsonElement o, string key) =>
            o.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

        public int Int(JsonElement o, string key, string at) =>
            Get(o, key, at) is { ValueKind: JsonValueKind.Number } n && n.TryGetInt32(out var v)
                ? v
                : throw new ModelLoadException(Path, Join(at, key), "expected an integer");

        private JsonElement Get(JsonElement o, string key, string at) =>
            o.TryGetProperty(key, out var v) ? v : throw new ModelLoadException(Path, Join(at, key), "missing");

        private static string Join(string at, string key) => at.Length == 0 ? key : at + "." + key;
    }
}

/// <summary>One model of the manifest.</summary>
/// <param name="Name">Stable name the agent looks the model up by (<c>rul-cmapss</c>).</param>
/// <param name="Version">Version shown in events and <c>edgetwin models list</c>.</param>
/// <param name="Kind">What runs it (<c>rul</c>, <c>reconstruction</c>, …).</param>
/// <param name="File">ONNX file name beside the manifest.</param>
/// <param name="Sha256">Lower-case hex SHA-256 of the file.</param>
public sealed record ModelEntry(
    string Name,
    string Version,
    string Kind,
    string File,
    string Sha256,
    IReadOnlyList<TensorSpec> Inputs,
    IReadOnlyList<TensorSpec> Outputs)
{
    public string Description { get; init; } = "";

    /// <summary>Evaluation files the model was trained on (optional <c>inSample</c>); figures on them are not estimates.</summary>
    public InSampleFiles? InSample { get; init; }

    /// <summary>The entry's JSON as written; a reload keeps a model whose entry text did not change.</summary>
    public string RawJson { get; init; } = "";

    /// <summary>JSON path of the entry in the manifest (<c>models[2]</c>), for error messages.</summary>
    public string Field { get; init; } = "";

    public override string ToString() => $"{Name} {Version}";
}

/// <summary>
/// Evaluation files that were part of a model's training data, named by SHA-256 of their content: a file name alone
/// cannot tell (NASA's own <c>test_FD001.txt</c> is not in-sample, our held-out one of the same name may be).
/// </summary>
/// <param name="Note">Why, and where the honest figures are; printed with the figures.</param>
public sealed record InSampleFiles(string Note, IReadOnlyList<InSampleFile> Files)
{
    /// <summary>The listed file whose content has this lower-case hex SHA-256, or null.</summary>
    public InSampleFile? Find(string sha256) => Files.FirstOrDefault(f => string.Equals(f.Sha256, sha256, StringComparison.OrdinalIgnoreCase));
}

/// <summary>One in-sample file: a name for people (e.g. <c>rul/heldout/test_FD001.txt</c>) and the hash that identifies it.</summary>
public sealed record InSampleFile(string Name, string Sha256);

/// <summary>An input or output tensor: name, shape (-1 = any size), feature names, units and normalisation.</summary>
public sealed record TensorSpec(string Name, IReadOnlyList<long> Shape, string Type, IReadOnlyList<string> Features, IReadOnlyList<string> Units)
{
    /// <summary>Model-specific normalisation parameters, read by the model's preprocessor.</summary>
    public JsonElement? Normalisation { get; init; }

    /// <summary>For outputs: how uncertain the value is (model-specific).</summary>
    public JsonElement? Uncertainty { get; init; }

    /// <summary>For outputs: the largest value the model was trained to give.</summary>
    public double? Cap { get; init; }

    /// <summary>JSON path in the manifest, for error messages.</summary>
    public string Field { get; init; } = "";

    public string ShapeText => "[" + string.Join(",", Shape.Select(d => d.ToString(CultureInfo.InvariantCulture))) + "]";
}
