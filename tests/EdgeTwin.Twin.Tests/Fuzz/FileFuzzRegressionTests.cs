using System.Text;
using EdgeTwin.Twin.Anomaly;
using EdgeTwin.Twin.Models;
using EdgeTwin.Twin.State;
using Xunit;

namespace EdgeTwin.Twin.Tests.Fuzz;

/// <summary>Inputs the file fuzzers (<see cref="FileFuzzTests"/>) found, minimised, as fixed bytes.</summary>
public sealed class FileFuzzRegressionTests
{
    private const string Path = "/etc/edgetwin/models/manifest.json";

    private static readonly string Sha = new('a', 64);

    [Fact]
    public void Regression_invalid_utf8_inside_a_manifest_string_escaped_the_catalog()
    {
        // {"schemaVersion":1,"models":[{"name":"a<0xFF>"}]}: JsonDocument throws InvalidOperationException when the string
        // is read, and ModelCatalog catches only ModelLoadException.
        byte[] json = [.. """{"schemaVersion":1,"models":[{"name":"a"""u8, 0xFF, .. "\"}]}"u8];

        var ex = Assert.Throws<ModelLoadException>(() => ModelManifest.Parse(json, Path));

        Assert.Contains("not UTF-8 (invalid byte 0xFF at line 1, byte 40)", ex.Message, StringComparison.Ordinal);
        Assert.Contains(Path, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Regression_a_number_in_a_manifest_features_list_escaped_the_catalog()
    {
        var json = Encoding.UTF8.GetBytes($$"""
            {"schemaVersion":1,"models":[{"name":"m","version":"1","file":"m.onnx","sha256":"{{Sha}}",
             "inputs":[{"name":"x","shape":[1,3],"features":["a",7]}],"outputs":[{"name":"y","shape":[1]}]}]}
            """);

        var ex = Assert.Throws<ModelLoadException>(() => ModelManifest.Parse(json, Path));

        Assert.Contains("models[0].inputs[0].features[1]", ex.Message, StringComparison.Ordinal);
        Assert.Contains("expected a string, found Number", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Regression_a_negative_string_length_in_a_layout_description_was_an_IOException()
    {
        // One type whose name's 7-bit length prefix decodes to a negative int: BinaryReader.ReadString threw a bare
        // IOException, which neither the state file readers nor the anomaly stage catch.
        byte[] description = [0x01, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F];

        var ex = Assert.Throws<InvalidDataException>(() => FieldStateCodec.SavedLayout.Parse(description));

        Assert.Contains("a string of -1 bytes", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Regression_a_malformed_string_length_in_a_layout_description_was_a_FormatException()
    {
        // Six continuation bytes: not a 7-bit encoded int at all (BinaryReader throws FormatException).
        byte[] description = [0x01, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];

        var ex = Assert.Throws<InvalidDataException>(() => FieldStateCodec.SavedLayout.Parse(description));

        Assert.Contains("not a 7-bit encoded integer", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_string_length_claiming_2_GB_is_not_allocated()
    {
        // 0x7FFFFFFF as a 7-bit prefix, then 3 bytes: the end of the stream, not a 2 GB buffer.
        byte[] bytes = [0xFF, 0xFF, 0xFF, 0xFF, 0x07, 0x61, 0x62, 0x63];
        using var r = new BinaryReader(new MemoryStream(bytes), Encoding.UTF8);

        var before = GC.GetAllocatedBytesForCurrentThread();
        Assert.Throws<EndOfStreamException>(() => FieldStateCodec.ReadString(r));
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 64 * 1024);
    }

    [Fact]
    public void Strings_read_back_as_written_from_seekable_and_unseekable_streams()
    {
        using var stream = new MemoryStream();
        using (var w = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true))
        {
            w.Write("");
            w.Write("Zählerstand ✓");
            w.Write(new string('x', 200_000));
        }

        foreach (var s in new Stream[] { new MemoryStream(stream.ToArray()), new UnseekableStream(stream.ToArray()) })
        {
            using var r = new BinaryReader(s, Encoding.UTF8);
            Assert.Equal("", FieldStateCodec.ReadString(r));
            Assert.Equal("Zählerstand ✓", FieldStateCodec.ReadString(r));
            Assert.Equal(new string('x', 200_000), FieldStateCodec.ReadString(r));
            Assert.Throws<EndOfStreamException>(() => FieldStateCodec.ReadString(r));
        }
    }

    private sealed class UnseekableStream(byte[] bytes) : MemoryStream(bytes)
    {
        public override bool CanSeek => false;
    }
}
