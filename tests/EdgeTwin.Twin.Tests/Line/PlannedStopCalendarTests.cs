using EdgeTwin.Twin.Line;
using EdgeTwin.Twin.Line.Oee;

namespace EdgeTwin.Twin.Tests.Line;

public sealed class PlannedStopCalendarTests
{
    private sealed class Recorder : IBookedStateSink
    {
        public List<(int Station, long Ms, MachineState State)> Booked { get; } = [];

        public void OnBookedState(int station, long timestampMs, MachineState state) => Booked.Add((station, timestampMs, state));
    }

    [Fact]
    public void Overlapping_stops_of_a_station_merge_and_the_signals_state_returns_at_the_end()
    {
        var books = new Recorder();
        var calendar = new PlannedStopCalendar(2, books);
        // A line-wide break 100–200 s and S2's own changeover 150–300 s: one stop 100–300 s for S2.
        calendar.Schedule([new PlannedWindow(-1, 100, 200, "break"), new PlannedWindow(1, 150, 300, "changeover")], shiftStartMs: 0);

        calendar.OnState(1, 50_000, MachineState.Idle);
        calendar.OnState(1, 120_000, MachineState.Running); // it works in the stop: running is booked as running
        calendar.OnState(1, 180_000, MachineState.Faulted);
        calendar.Advance(400_000);

        Assert.Equal(
            [(1, 50_000, MachineState.Idle), (1, 100_000, MachineState.PlannedStop), (1, 120_000, MachineState.Running),
             (1, 180_000, MachineState.PlannedStop), (1, 300_000, MachineState.Faulted)],
            books.Booked);
        Assert.False(calendar.InStop(1));
    }

    [Fact]
    public void A_stop_that_ended_before_the_first_reading_books_nothing_and_one_under_way_books_from_the_reading()
    {
        var books = new Recorder();
        var calendar = new PlannedStopCalendar(1, books);
        calendar.Schedule([new PlannedWindow(-1, 10, 20, "meeting"), new PlannedWindow(-1, 100, 200, "break")], shiftStartMs: 1_000_000);

        calendar.OnState(0, 1_150_000, MachineState.Idle); // first reading, inside the break
        calendar.Advance(1_250_000);

        Assert.Equal([(0, 1_150_000, MachineState.PlannedStop), (0, 1_200_000, MachineState.Idle)], books.Booked);
    }

    [Fact]
    public void Off_shift_time_is_planned_until_the_next_shift_is_scheduled()
    {
        var books = new Recorder();
        var calendar = new PlannedStopCalendar(1, books);
        calendar.Schedule([], shiftStartMs: 0, offShiftFromSeconds: 3600);
        calendar.OnState(0, 1000, MachineState.Idle);
        calendar.Advance(7_200_000);
        Assert.True(calendar.InStop(0));

        calendar.Schedule([], shiftStartMs: 10_000_000, offShiftFromSeconds: 3600); // the next shift: back to the signals

        Assert.Equal([(0, 1000, MachineState.Idle), (0, 3_600_000, MachineState.PlannedStop), (0, 10_000_000, MachineState.Idle)], books.Booked);
        Assert.False(calendar.InStop(0));
    }

    [Fact]
    public void Regression_a_stop_over_before_what_was_booked_split_the_booked_state_when_the_shift_was_scheduled_again()
    {
        // After a clock step back into an earlier shift its stops are scheduled from its start while the station is
        // booked past some of them. Before, the 100–200 s break was entered and left at 500 s, the faulted time split there.
        var books = new Recorder();
        var calendar = new PlannedStopCalendar(1, books);
        calendar.Schedule([], shiftStartMs: 0);
        calendar.OnState(0, 500_000, MachineState.Faulted);

        calendar.Schedule([new PlannedWindow(-1, 100, 200, "break"), new PlannedWindow(-1, 400, 600, "meeting")], shiftStartMs: 0);
        calendar.OnState(0, 520_000, MachineState.Faulted);
        calendar.Advance(700_000);

        // The stop under way is planned from what was booked on; the one over before it books nothing.
        Assert.Equal(
            [(0, 500_000, MachineState.Faulted), (0, 500_000, MachineState.PlannedStop), (0, 520_000, MachineState.PlannedStop), (0, 600_000, MachineState.Faulted)],
            books.Booked);
    }

    /// <summary>
    /// Audit: a state log's time_s counts from the shift's start, so its first readings are at 0 — which the calendar took
    /// for "nothing booked yet": a station idle (or faulted) from 0 through the 10:00 break had the break booked as waiting
    /// (`line oee --states`: planned busy time 480 min, not 465).
    /// </summary>
    [Fact]
    public void Regression_a_reading_at_time_zero_kept_the_calendar_from_booking_the_break()
    {
        var books = new Recorder();
        var calendar = new PlannedStopCalendar(1, books);
        calendar.Schedule([new PlannedWindow(-1, 100, 200, "break")], shiftStartMs: 0);

        calendar.OnState(0, 0, MachineState.Idle);
        calendar.Advance(300_000);

        Assert.Equal([(0, 0, MachineState.Idle), (0, 100_000, MachineState.PlannedStop), (0, 200_000, MachineState.Idle)], books.Booked);
    }
}
