using EdgeTwin.Simulator.Faults;

namespace EdgeTwin.Simulator.Tests.Faults;

public sealed class FaultCommandTests
{
    [Theory]
    [InlineData("cooling-stop:crac1", FaultKind.CoolingStop, "crac1", null, null)]
    [InlineData("cooling-stop:crac1@60s", FaultKind.CoolingStop, "crac1", null, 60.0)]
    [InlineData("pdu-overload:pdu-a01-a:5", FaultKind.PduOverload, "pdu-a01-a", 5.0, null)]
    [InlineData("device-garble:ups1:0.25@2m", FaultKind.DeviceGarble, "ups1", 0.25, 120.0)]
    [InlineData("machine-wear:m1:0.9", FaultKind.MachineWear, "m1", 0.9, null)]
    [InlineData("probe-lost:A01@30s", FaultKind.ProbeLost, "A01", null, 30.0)]
    [InlineData("probe-threshold:A01:20.5", FaultKind.ProbeThreshold, "A01", 20.5, null)]
    [InlineData("probe-ok:A01", FaultKind.ProbeOk, "A01", null, null)]
    public void Parses_kind_target_argument_and_time(string text, FaultKind kind, string target, double? argument, double? atSeconds)
    {
        var fault = FaultCommand.Parse(text);
        Assert.Equal(kind, fault.Kind);
        Assert.Equal(target, fault.Target);
        Assert.Equal(argument, fault.Argument);
        Assert.Equal(atSeconds, fault.At?.TotalSeconds);
    }

    [Fact]
    public void Device_slow_takes_a_duration()
    {
        var fault = FaultCommand.Parse("device-slow:pdu-a01-a:750ms");
        Assert.Equal(TimeSpan.FromMilliseconds(750), fault.Delay);
        Assert.Equal(fault, FaultCommand.Parse(fault.ToString()));
    }

    [Theory]
    [InlineData("cooling-stop", "fault 'cooling-stop': expected KIND:TARGET[:ARG][@WHEN]")]
    [InlineData("melt:crac1", "fault 'melt:crac1': unknown kind 'melt' (known: ")]
    [InlineData("pdu-overload:p1:lots", "fault 'pdu-overload:p1:lots': argument 'lots' is not a number")]
    [InlineData("device-slow:ups1", "fault 'device-slow:ups1': device-slow needs a delay, e.g. device-slow:ups1:800ms")]
    [InlineData("machine-wear:m1:2", "fault 'machine-wear:m1:2': machine-wear needs a wear between 0 and 1")]
    [InlineData("probe-threshold:A01", "fault 'probe-threshold:A01': probe-threshold needs a temperature in °C, e.g. probe-threshold:A01:20")]
    [InlineData("cooling-stop:crac1@soon", "'cooling-stop:crac1@soon': 'soon' is not a duration like 500ms, 10s, 5m, 1h")]
    public void Rejects_malformed_faults_saying_what_is_wrong(string text, string message)
    {
        var error = Assert.Throws<FormatException>(() => FaultCommand.Parse(text));
        Assert.StartsWith(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Unknown_targets_are_rejected_by_the_site_with_the_known_names()
    {
        var site = Physics.TestSites.Generated();
        var error = Assert.Throws<KeyNotFoundException>(() => site.Apply(FaultCommand.Parse("cooling-stop:crac9")));
        Assert.Equal("simulated site has no cooling unit 'crac9' (known: crac1, crac2)", error.Message);
    }

    [Fact]
    public void Device_faults_are_kept_per_device()
    {
        var site = Physics.TestSites.Generated();
        site.Apply(FaultCommand.Parse("device-dark:pdu-a01-a"));
        site.Apply(FaultCommand.Parse("device-slow:ups1:2s"));
        Assert.True(site.DeviceFault("pdu-a01-a").Dark);
        Assert.Equal(TimeSpan.FromSeconds(2), site.DeviceFault("ups1").Delay);
        Assert.True(site.DeviceFault("crac1").IsNone);
        site.Apply(FaultCommand.Parse("device-ok:pdu-a01-a"));
        Assert.True(site.DeviceFault("pdu-a01-a").IsNone);
    }
}
