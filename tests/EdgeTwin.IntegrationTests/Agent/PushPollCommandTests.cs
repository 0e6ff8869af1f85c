using System.Device.Gpio;
using EdgeTwin.Agent.Cli;
using EdgeTwin.Alerting.Gpio;
using EdgeTwin.Core.Sources;
using EdgeTwin.Sensors.Factory;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeTwin.IntegrationTests.Agent;

/// <summary><c>edgetwin poll</c> on GPIO contacts, through the real sensor factory on a simulated GPIO chip.</summary>
public sealed class PushPollCommandTests : IDisposable
{
    private static readonly string ConfigPath = AgentFiles.WriteConfig("""
          - { id: leak-crac1, profile: generic-leak-detector, address: "gpio:17", timeout: 2s }
          - { id: door-a01, profile: generic-door-contact, address: "gpio:27", timeout: 2s }
        """);

    private readonly SimulatedGpioDriver _chip = new();
    private readonly SensorSourceFactory _factory;

    public PushPollCommandTests()
    {
        _factory = new SensorSourceFactory(new SensorEnvironment { OpenGpio = () => new GpioController(_chip) });
    }

    public void Dispose() => _factory.Dispose();

    private async Task<(int Code, string Out, string Err)> PollAsync(string device)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var code = await PollCommand.PollAsync(
            AgentFiles.Load(ConfigPath),
            device,
            new SourceFactories([_factory]),
            NullLoggerFactory.Instance,
            TimeProvider.System,
            json: false,
            output,
            error,
            TestContext.Current.CancellationToken);
        return (code, output.ToString(), error.ToString());
    }

    [Fact]
    public async Task Regression_poll_refused_to_read_a_leak_contact()
    {
        // Before: exit 2, "only pushes readings (events, edges, counters); watch it with `edgetwin run`".
        _chip.Drive(17, PinValue.Low); // the rope is wet: the contact closes to ground
        var (code, output, error) = await PollAsync("leak-crac1");

        Assert.True(code == 0, error);
        Assert.Matches(@"(?m)^leak +1 \(leak\) 1 +room\.leak", output);
        Assert.False(_chip.IsOpen(17)); // the line is released again

        _chip.Drive(17, PinValue.High);
        (code, output, _) = await PollAsync("leak-crac1");
        Assert.Equal(0, code);
        Assert.Matches(@"(?m)^leak +0 \(dry\) 1 +room\.leak", output);
    }

    [Fact]
    public async Task A_contact_line_another_process_holds_exits_1_with_the_reason()
    {
        _chip.Hold(27);
        var (code, _, error) = await PollAsync("door-a01");

        Assert.Equal(1, code);
        Assert.Contains("device 'door-a01': gpio 27: cannot open the line for edge events: Error 16 (Device or resource busy)", error, StringComparison.Ordinal);
        Assert.Contains("a running agent holds its GPIO lines", error, StringComparison.Ordinal);
    }
}
