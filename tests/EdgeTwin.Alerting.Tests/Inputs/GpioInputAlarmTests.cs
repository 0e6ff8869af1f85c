using System.Device.Gpio;
using EdgeTwin.Alerting.State;
using EdgeTwin.Alerting.Tests.Support;

namespace EdgeTwin.Alerting.Tests.Inputs;

/// <summary>Leak/door contacts raise alerts from edge interrupts of the simulated chip, and drive the relay sink.</summary>
public sealed class GpioInputAlarmTests
{
    private const string Config = """
        alerts:
          group_interval: 0s
          sinks:
            - name: panel
              type: gpio
              chip: simulated
              outputs:
                - { name: relay, pin: 17, critical: on, failsafe: on }
                - { name: led, pin: 22, warning: blink, critical: on }
          inputs:
            - { name: leak-room1, pin: 5, active: low, debounce: 50ms, severity: critical, targets: [panel] }
            - { name: door-room1, pin: 6, active: high, severity: warning }
        """;

    [Fact]
    public async Task Leak_contact_edge_raises_a_critical_alert_and_energises_the_relay()
    {
        await using var h = await Harness.StartAsync(Config);
        var chip = h.Service.SimulatedGpio!;
        Assert.NotNull(chip);
        Assert.Equal(PinValue.Low, chip.Output(17));

        chip.Drive(5, PinValue.Low); // contact closes (active low)
        Assert.Equal(AlertState.Firing, h.StateOf("leak-room1"));
        await Wait.UntilAsync(() => chip.Output(17) == PinValue.High, "relay on");

        // Only the panel is a target of the leak: the recording sinks do not hear of it. Checked once the door contact (no
        // targets: every sink), raised after the leak, has reached both; before, the wait was true from the start and the
        // check counted on the deliveries having beaten the relay.
        chip.Drive(6, PinValue.High);
        await Wait.UntilAsync(() => h.Sink.All.Any(a => a.Rule == "door-room1") && h.StateSink.All.Any(a => a.Rule == "door-room1"), "the door alert at both recording sinks");
        Assert.DoesNotContain(h.Sink.All, a => a.Rule == "leak-room1");
        Assert.DoesNotContain(h.StateSink.All, a => a.Rule == "leak-room1");

        h.Advance(TimeSpan.FromMilliseconds(100));
        chip.Drive(5, PinValue.High);
        Assert.Null(h.Active("leak-room1"));
        await Wait.UntilAsync(() => chip.Output(17) == PinValue.Low, "relay off");
    }

    [Fact]
    public async Task Bouncing_contact_raises_once_and_the_final_level_wins()
    {
        await using var h = await Harness.StartAsync(Config);
        var chip = h.Service.SimulatedGpio!;
        chip.Drive(5, PinValue.Low); // the first edge counts at once
        for (var i = 0; i < 5; i++)
        {
            chip.Drive(5, PinValue.High);
            chip.Drive(5, PinValue.Low);
        }

        Assert.Equal(AlertState.Firing, h.StateOf("leak-room1"));
        Assert.Single(h.Manager.History(10), e => e.Change == "raised" && e.Rule == "leak-room1");

        // It bounces open within the debounce window and stays open: the re-check after the window clears it.
        chip.Drive(5, PinValue.High);
        Assert.NotNull(h.Active("leak-room1"));
        h.Advance(TimeSpan.FromMilliseconds(60));
        Assert.Null(h.Active("leak-room1"));
        Assert.Single(h.Manager.History(10), e => e.Change == "cleared" && e.Rule == "leak-room1");
    }

    [Fact]
    public async Task Contact_already_active_at_start_raises_without_an_edge()
    {
        // The simulated lines idle high, so the active-high door contact is active from the start.
        await using var h = await Harness.StartAsync(Config);
        Assert.Equal(AlertState.Firing, h.StateOf("door-room1"));
        Assert.Null(h.Active("leak-room1"));
        h.Service.SimulatedGpio!.Drive(6, PinValue.Low);
        Assert.Null(h.Active("door-room1"));
    }

    [Fact]
    public async Task Regression_a_normally_closed_door_contact_never_raised_its_alarm()
    {
        // The shipped examples' door-open input: a reed contact closed while the door is shut, wired to ground, so the
        // line is low when shut and high only through the pull-up when open (active: high). The pull followed `active`
        // (high → pull-down), so the open door read low as well and the alarm never fired.
        await using var h = await Harness.StartAsync(Config);
        var chip = h.Service.SimulatedGpio!;
        chip.Drive(6, PinValue.Low); // door shut: the contact grounds the line
        Assert.Null(h.Active("door-room1"));

        h.Advance(TimeSpan.FromMilliseconds(100));
        chip.Release(6); // door opens: the contact opens, nothing drives the line
        Assert.Equal(AlertState.Firing, h.StateOf("door-room1"));
    }

    [Fact]
    public async Task A_contact_switched_to_the_supply_reads_through_an_explicit_pull_down()
    {
        const string config = """
            alerts:
              group_interval: 0s
              sinks:
                - { name: panel, type: gpio, chip: simulated, outputs: [ { name: relay, pin: 17, critical: on } ] }
              inputs:
                - { name: beacon, pin: 7, active: high, pull: down, severity: info }
            """;
        await using var h = await Harness.StartAsync(config);
        var chip = h.Service.SimulatedGpio!;
        chip.Release(7); // contact open: the pull-down holds the line low
        Assert.Null(h.Active("beacon"));
        h.Advance(TimeSpan.FromMilliseconds(100));
        chip.Drive(7, PinValue.High); // contact closes to 3.3 V
        Assert.Equal(AlertState.Firing, h.StateOf("beacon"));
    }
}
