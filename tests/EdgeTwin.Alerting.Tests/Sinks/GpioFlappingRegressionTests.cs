using System.Device.Gpio;
using EdgeTwin.Alerting.Rules;
using EdgeTwin.Alerting.Sinks;
using EdgeTwin.Alerting.State;
using EdgeTwin.Alerting.Tests.Support;
using EdgeTwin.Core.Samples;

namespace EdgeTwin.Alerting.Tests.Sinks;

/// <summary>The relay of the simulated chip while a critical alert flaps around its threshold.</summary>
public sealed class GpioFlappingRegressionTests
{
    private const string Config = """
        alerts:
          group_interval: 0s
          flap_window: 5m
          flap_max_changes: 4
          sinks:
            - name: panel
              type: gpio
              chip: simulated
              outputs:
                - { name: relay, pin: 17, critical: on }
          rules:
            - { name: inlet-hot, type: threshold, match: { metric: inlet }, above: 30, clear_below: 29, severity: critical }
        """;

    /// <summary>Raise/clear 5 s apart until the guard trips (on the 5th change, a raise), then holds it above the limit.</summary>
    private static async Task<SeriesId> FlapThenStayHotAsync(Harness h)
    {
        var s = h.Series("rack-r01", "inlet");
        for (var i = 0; i < 2; i++)
        {
            h.Feed(s, 35);
            h.Advance(TimeSpan.FromSeconds(5));
            h.Feed(s, 20);
            h.Advance(TimeSpan.FromSeconds(5));
        }

        h.Feed(s, 35);
        await Wait.UntilAsync(() => h.Sink.All.Any(a => a.Status == AlertStatus.Flapping), "flapping message");
        Assert.True(h.Active("inlet-hot")!.Flapping);
        Assert.Equal(AlertState.Firing, h.StateOf("inlet-hot"));
        return s;
    }

    [Fact]
    public async Task Regression_a_flapping_critical_alert_that_stayed_over_the_limit_left_the_relay_off_for_the_flap_window()
    {
        await using var h = await Harness.StartAsync(Config);
        var chip = h.Service.SimulatedGpio!;
        var s = await FlapThenStayHotAsync(h);

        // Before: the guard tripped on a raise, the relay had dropped with the clear before it and stayed off for the
        // 5 min window while the rack stayed at 35 °C.
        await Wait.UntilAsync(() => chip.Output(17) == PinValue.High, "relay on while the alert flaps");
        for (var i = 0; i < 4; i++)
        {
            h.Feed(s, 35);
            h.Advance(TimeSpan.FromSeconds(30));
            Assert.Equal(PinValue.High, chip.Output(17));
        }

        // It keeps flapping: the relay stays on steadily (no chirp per flap).
        var toggles = chip.Toggles(17);
        for (var i = 0; i < 3; i++)
        {
            h.Feed(s, 20);
            h.Advance(TimeSpan.FromSeconds(5));
            h.Feed(s, 35);
            h.Advance(TimeSpan.FromSeconds(5));
        }

        await Task.Delay(100, TestContext.Current.CancellationToken);
        Assert.Equal(toggles, chip.Toggles(17));
        Assert.Equal(PinValue.High, chip.Output(17));

        // It settles below the clear level: the guard releases it after the window and the relay drops.
        h.Feed(s, 20);
        h.Advance(TimeSpan.FromMinutes(6));
        await Wait.UntilAsync(() => chip.Output(17) == PinValue.Low, "relay off once it settled below");
    }

    [Fact]
    public async Task Regression_a_restart_while_an_alert_flapped_left_the_relay_off()
    {
        var h = await Harness.StartAsync(Config);
        var s = await FlapThenStayHotAsync(h);
        h.Feed(s, 20); // muted clear: the alert is resolved but still flapping at the restart
        await Task.Delay(100, TestContext.Current.CancellationToken);
        Assert.Null(h.Active("inlet-hot")); // resolved, not firing

        await using var h2 = await h.RestartAsync();
        await Wait.UntilAsync(() => h2.Service.SimulatedGpio!.Output(17) == PinValue.High, "relay on again after the restart");
        var panel = Assert.IsType<GpioSink>(h2.Service.Sinks.Single(r => r.Name == "panel").Sink);
        Assert.Equal([OutputPattern.On], panel.Patterns);
    }
}
