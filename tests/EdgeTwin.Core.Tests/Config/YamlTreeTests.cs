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
    public void Regression_nested_aliases_expanded_a_441_byte_config_into_gigabytes()
    {
        // The security review's "billion laughs": each level is ten aliases of the one before, 10^7 nodes from 441 bytes.
        var yaml = new System.Text.StringBuilder("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for (var level = 1; level <= 7; level++)
        {
            var previous = "*a" + (level - 1).ToString(System.Globalization.CultureInfo.InvariantCulture);
            yaml.Append('a').Append(level).Append(": &a").Append(level).Append(" [")
                .AppendJoin(", ", Enumerable.Repeat(previous, 10)).Append("]\n");
        }

        var d = new ConfigDiagnostics();
        var root = YamlTree.Parse(yaml.ToString(), "bomb.yaml", d);

        Assert.NotNull(root);
        var problem = Assert.Single(d.Items);
        Assert.Equal("bomb.yaml", problem.File);
        Assert.Contains("aliases and merge keys would copy more than 100,000 nodes in this file", problem.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_alias_past_the_budget_is_named_at_its_line_and_earlier_copies_stay()
    {
        var big = "big: &big [" + string.Join(", ", Enumerable.Repeat("1", 60_000)) + "]\n";
        var d = new ConfigDiagnostics();
        var root = (ConfigMapping)YamlTree.Parse(big + "first: *big\nsecond: *big\n", "f.yaml", d)!;

        Assert.Equal(60_000, ((ConfigSequence)root["first"]!).Items.Count);
        Assert.True(((ConfigScalar)root["second"]!).IsNull);
        var problem = Assert.Single(d.Items);
        Assert.Equal(("f.yaml", 3, 9), (problem.File, problem.Line, problem.Column));
        Assert.Equal("second", problem.Path);
    }

    [Fact]
    public void Regression_a_file_nested_thousands_deep_would_overflow_the_readers_stack()
    {
        const int depth = 200_000;
        var yaml = "a: " + new string('[', depth) + new string(']', depth) + "\nb: 1\n";
        var d = new ConfigDiagnostics();
        Assert.Null(YamlTree.Parse(yaml, "deep.yaml", d));

        var problem = Assert.Single(d.Items);
        Assert.Equal(("deep.yaml", 1, 103, "a" + string.Concat(Enumerable.Repeat("[0]", 99))), (problem.File, problem.Line, problem.Column, problem.Path));
        Assert.Contains("nested deeper than 100 levels", problem.Message, StringComparison.Ordinal);
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
