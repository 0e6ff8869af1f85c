using EdgeTwin.Core.Config;

namespace EdgeTwin.Core.Tests.Config;

public sealed class YamlTreeTests
{
    [Fact]
    public void Nodes_keep_line_column_and_key_path()
    {
        var d = new ConfigDiagnostics();
        var root = (ConfigMapping)YamlTree.Parse("a:\n  b:\n    - x\n    - { c: 1 }\n", "f.yaml", d)!;
        var c = ((ConfigMapping)((ConfigSequence)((ConfigMapping)root["a"]!)["b"]!).Items[1])["c"]!;
        Assert.Equal(new SourceMark("f.yaml", 4, 12), c.Mark);
        Assert.Equal("a.b[1].c", c.Path);
        Assert.Equal(new SourceMark("f.yaml", 4, 9), ((ConfigMapping)((ConfigSequence)((ConfigMapping)root["a"]!)["b"]!).Items[1]).KeyMark("c"));
        Assert.True(d.IsEmpty);
    }

    [Fact]
    public void Anchors_aliases_and_merge_keys_with_explicit_keys_winning()
    {
        const string yaml = """
            defaults: &snmp { interval: 10s, timeout: 2s, credentials: public }
            devices:
              - { <<: *snmp, id: a, timeout: 3s }
              - { id: b, extra: *snmp }
            """;
        var d = new ConfigDiagnostics();
        var root = (ConfigMapping)YamlTree.Parse(yaml, "f.yaml", d)!;
        var devices = (ConfigSequence)root["devices"]!;
        var a = (ConfigMapping)devices.Items[0];
        Assert.Equal(["id", "timeout", "interval", "credentials"], a.Entries.Select(e => e.Key));
        Assert.Equal("3s", ((ConfigScalar)a["timeout"]!).Value);
        Assert.Equal("devices[0].interval", a["interval"]!.Path);
        Assert.Equal("devices[1].extra.credentials", ((ConfigMapping)((ConfigMapping)devices.Items[1])["extra"]!)["credentials"]!.Path);
        Assert.True(d.IsEmpty, string.Join("\n", d.Items));
    }

    [Fact]
    public void Unknown_alias_and_second_document_are_problems()
    {
        var d = new ConfigDiagnostics();
        YamlTree.Parse("a: *nope\n---\nb: 1\n", "f.yaml", d);
        Assert.Equal(
        [
            "f.yaml:1:4: a: unknown anchor '*nope'",
            "f.yaml:2:1: (document): only one YAML document is allowed per file",
        ], d.Items.Select(x => x.ToString()));
    }

    [Fact]
    public void Empty_file_is_a_problem()
    {
        var d = new ConfigDiagnostics();
        Assert.Null(YamlTree.Parse("# only a comment\n", "f.yaml", d));
        Assert.Equal(["f.yaml:1:1: (document): the file is empty"], d.Items.Select(x => x.ToString()));
    }

    [Fact]
    public void Raw_sections_flatten_for_configuration_binding()
    {
        var d = new ConfigDiagnostics();
        var root = (ConfigMapping)YamlTree.Parse("mqtt: { host: broker, port: 1883, topics: [a, b], tls: ~ }\n", "f.yaml", d)!;
        Assert.Equal(
            ["mqtt:host=broker", "mqtt:port=1883", "mqtt:topics:0=a", "mqtt:topics:1=b", "mqtt:tls="],
            root.ToConfigurationPairs().Select(kv => kv.Key + "=" + kv.Value));
    }
}
