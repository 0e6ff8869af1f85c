namespace EdgeTwin.IntegrationTests;

/// <summary>Bounded polling for what a real peer or the agent does in its own time.</summary>
internal static class Eventually
{
    /// <summary>Waits until <paramref name="condition"/> holds, checking every 100 ms; fails the test naming <paramref name="what"/> after <paramref name="seconds"/>.</summary>
    public static async Task UntilAsync(Func<bool> condition, string what, int seconds)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"timed out after {seconds} s waiting for {what}");
            }

            await Task.Delay(100, TestContext.Current.CancellationToken);
        }
    }
}
