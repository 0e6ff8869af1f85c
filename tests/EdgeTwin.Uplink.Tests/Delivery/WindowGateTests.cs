using EdgeTwin.Uplink.Delivery;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace EdgeTwin.Uplink.Tests.Delivery;

public sealed class WindowGateTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Free_slots_are_taken_at_once()
    {
        var gate = new WindowGate(3);
        for (var i = 0; i < 3; i++)
        {
            Assert.True(gate.WaitAsync(Ct).AsTask().IsCompletedSuccessfully);
        }

        Assert.Equal(0, gate.Free);
        var fourth = gate.WaitAsync(Ct).AsTask();
        Assert.False(fourth.IsCompleted);
        gate.Release();
        await fourth.WaitAsync(TimeSpan.FromSeconds(10), Ct);
        Assert.Equal(0, gate.Free);
    }

    [Fact]
    public async Task Waiters_resume_in_the_order_they_came_one_per_free_slot()
    {
        var gate = new WindowGate(2);
        await gate.WaitAsync(Ct);
        await gate.WaitAsync(Ct);
        var first = gate.WaitAsync(Ct).AsTask();
        var second = gate.WaitAsync(Ct).AsTask();
        gate.Release();
        await first.WaitAsync(TimeSpan.FromSeconds(10), Ct);
        Assert.False(second.IsCompleted);
        gate.Release();
        await second.WaitAsync(TimeSpan.FromSeconds(10), Ct);
        Assert.Equal(0, gate.Free);
    }

    [Fact]
    public async Task A_cancelled_waiter_leaves_and_takes_no_slot()
    {
        var gate = new WindowGate(1);
        await gate.WaitAsync(Ct);
        using var cts = new CancellationTokenSource();
        var waiting = gate.WaitAsync(cts.Token).AsTask();
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting);
        gate.Release();
        Assert.Equal(1, gate.Free);
    }

    [Fact]
    public void Releasing_more_than_the_capacity_is_a_bug_caught_at_once()
    {
        var gate = new WindowGate(2);
        Assert.Throws<InvalidOperationException>(gate.Release);
        Assert.Equal(2, gate.Free);
    }

    [Property(MaxTest = 200)]
    public Property Slots_held_plus_free_always_equal_the_capacity(PositiveInt capacity, int seed)
    {
        var cap = Math.Min(capacity.Get, 64);
        var gate = new WindowGate(cap);
        var random = new Random(seed);
        var held = 0;
        var pending = new List<(Task Task, CancellationTokenSource Cts)>();
        var ok = true;
        for (var step = 0; step < 400 && ok; step++)
        {
            switch (random.Next(3))
            {
                case 0:
                    var cts = new CancellationTokenSource();
                    var wait = gate.WaitAsync(cts.Token).AsTask();
                    if (wait.IsCompletedSuccessfully)
                    {
                        held++;
                        cts.Dispose();
                    }
                    else
                    {
                        pending.Add((wait, cts));
                    }

                    break;
                case 1 when held > 0:
                    gate.Release();
                    held--;
                    break;
                case 2 when pending.Count > 0:
                    var i = random.Next(pending.Count);
                    pending[i].Cts.Cancel();
                    break;
            }

            // Granted waiters hold a slot; cancelled ones hold none.
            foreach (var p in pending.Where(p => p.Task.IsCompleted).ToList())
            {
                held += p.Task.IsCompletedSuccessfully ? 1 : 0;
                pending.Remove(p);
                p.Cts.Dispose();
            }

            ok = gate.Free + held == cap;
        }

        foreach (var p in pending)
        {
            p.Cts.Dispose();
        }

        return ok.ToProperty();
    }
}
