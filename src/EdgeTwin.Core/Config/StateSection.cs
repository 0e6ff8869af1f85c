namespace EdgeTwin.Core.Config;

/// <summary>
/// The keys every learning stage's <c>state:</c> section shares (<c>twin.anomaly.state</c>, <c>line.state</c>): <c>file</c>
/// and <c>checkpoint_interval</c>, read and checked the same way, with the problem at the key.
/// </summary>
public static class StateSection
{
    /// <summary>
    /// <c>file</c> (null when left out; an empty one is an error) and <c>checkpoint_interval</c> (at least 10 s, at most
    /// <paramref name="maxInterval"/>, whose error says <paramref name="whyMax"/>; <paramref name="defaultInterval"/> when left out).
    /// </summary>
    public static (string? File, TimeSpan CheckpointInterval) Read(ConfigReader state, string defaultFileName, TimeSpan defaultInterval, TimeSpan maxInterval, string whyMax)
    {
        ArgumentNullException.ThrowIfNull(state);
        var file = state.String("file");
        if (file is not null && string.IsNullOrWhiteSpace(file))
        {
            state.Diagnostics.Add(state.Node("file")!, $"must name a file (or a directory to keep {defaultFileName} in); leave it out for the outbox's directory");
            file = null;
        }

        var interval = state.Duration("checkpoint_interval", min: TimeSpan.FromSeconds(10)) ?? defaultInterval;
        if (interval > maxInterval)
        {
            state.Diagnostics.Add(state.Node("checkpoint_interval")!, $"must be at most {Durations.Format(maxInterval)} ({whyMax}), got '{Durations.Format(interval)}'");
        }

        return (file, interval);
    }
}
