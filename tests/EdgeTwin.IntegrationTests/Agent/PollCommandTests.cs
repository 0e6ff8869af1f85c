using System.Text.Json;
using EdgeTwin.Agent.Cli;
using EdgeTwin.Core.Sources;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeTwin.IntegrationTests.Agent;

/// <summary><c>edgetwin poll</c> through a scripted source factory (real SNMP/Modbus peers are covered once their sources land).</summary>
public sealed class PollCommandTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly string ConfigPath = AgentFiles.WriteConfig("""
          - { id: pdu-1, profile: apc-rpdu2, address: "udp:127.0.0.1:16100", credentials: pub, timeout: 500ms }
          - { id: meter-1, profile: eastron-sdm630, address: "tcp:127.0.0.1:15020" }
        """);

    private static async Task<(int Code, string Out, string Err)> PollAsync(string device, bool json, ProfileFakeFactory? factory = null)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var code = await PollCommand.PollAsync(
            AgentFiles.Load(ConfigPath),
            device,
            new SourceFactories([factory ?? new ProfileFakeFactory()]),
            NullLoggerFactory.Instance,
            TimeProvider.System,
            json,
            output,
            error,
            Ct);
        return (code, output.ToString(), error.ToString());
    }

    [Fact]
    public async Task Text_output_lists_every_metric_with_value_unit_and_role()
    {
        var (code, output, error) = await PollAsync("pdu-1", json: false);

        Assert.Equal(0, code);
        Assert.Equal("", error);
        var lines = output.TrimEnd('\n').Split('\n');
        Assert.StartsWith("# pdu-1 (apc-rpdu2: APC (Schneider Electric) Rack PDU 2G metered / switched (AP84xx, AP86xx, AP88xx, AP89xx)) at udp:127.0.0.1:16100, read ", lines[0]);
        Assert.EndsWith(" metrics", lines[0]);
        Assert.Contains(lines, l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^total_power +50 kW +pdu\.power$"));
        Assert.Contains(lines, l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^load_state +2 \(normal\) 1 +pdu\.load_state$"));
        Assert.Contains(lines, l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^energy +12\.3 kW\.h +pdu\.energy$"));
        Assert.Contains(lines, l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^inlet_temperature +30 Cel +rack\.inlet_temperature$"));
    }

    [Fact]
    public async Task Json_output_carries_series_value_unit_kind_role_state_and_quality()
    {
        var (code, output, _) = await PollAsync("pdu-1", json: true);

        Assert.Equal(0, code);
        using var doc = JsonDocument.Parse(output);
        var root = doc.RootElement;
        Assert.Equal("pdu-1", root.GetProperty("device").GetString());
        Assert.Equal("apc-rpdu2", root.GetProperty("profile").GetString());
        Assert.Equal("udp:127.0.0.1:16100", root.GetProperty("address").GetString());
        var metrics = root.GetProperty("metrics").EnumerateArray().ToDictionary(m => m.GetProperty("metric").GetString()!);
        var power = metrics["total_power"];
        Assert.Equal("pdu-1/total_power", power.GetProperty("series").GetString());
        Assert.Equal(50, power.GetProperty("value").GetDouble());
        Assert.Equal("kW", power.GetProperty("unit").GetString());
        Assert.Equal("gauge", power.GetProperty("kind").GetString());
        Assert.Equal("pdu.power", power.GetProperty("role").GetString());
        Assert.Equal("good", power.GetProperty("quality").GetString());
        Assert.Equal("normal", metrics["load_state"].GetProperty("state").GetString());
        Assert.Equal("state", metrics["load_state"].GetProperty("kind").GetString());
        Assert.Equal("counter", metrics["energy"].GetProperty("kind").GetString());
    }

    [Fact]
    public async Task An_unreachable_device_exits_1_naming_the_device_and_the_error()
    {
        var factory = new ProfileFakeFactory();
        factory.Failing["pdu-1"] = true;

        var (code, output, error) = await PollAsync("pdu-1", json: false, factory);

        Assert.Equal(1, code);
        Assert.Equal("", output);
        Assert.Equal("edgetwin: device 'pdu-1': no response from udp:127.0.0.1:16100 (request timed out)" + Environment.NewLine, error);
    }

    [Fact]
    public async Task A_device_slower_than_its_timeout_exits_1_with_the_timeout()
    {
        var factory = new ProfileFakeFactory { PollDelay = TimeSpan.FromSeconds(30) };

        var (code, _, error) = await PollAsync("pdu-1", json: false, factory);

        Assert.Equal(1, code);
        Assert.Equal("edgetwin: device 'pdu-1' at udp:127.0.0.1:16100: no answer within 500ms" + Environment.NewLine, error);
    }

    [Fact]
    public async Task An_unknown_device_exits_2_listing_the_devices()
    {
        var (code, _, error) = await PollAsync("pdu-9", json: false);

        Assert.Equal(2, code);
        Assert.Equal($"edgetwin: no device 'pdu-9' in {ConfigPath} (devices: pdu-1, meter-1)" + Environment.NewLine, error);
    }

    [Fact]
    public async Task A_protocol_this_build_cannot_read_exits_2()
    {
        var (code, _, error) = await PollAsync("meter-1", json: false);

        Assert.Equal(2, code);
        Assert.Equal("device 'meter-1': no source factory for protocol 'modbus' (profile 'eastron-sdm630'); this build has: snmp" + Environment.NewLine, error);
    }
}
