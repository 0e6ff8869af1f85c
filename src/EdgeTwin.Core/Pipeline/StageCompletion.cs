namespace EdgeTwin.Core.Pipeline;

/// <summary>The shutdown drain shared by the sample pipeline and the event hub.</summary>
internal static class StageCompletion
{
    /// <summary>
    /// Waits until every stage has worked through its queue; when the stop window (<paramref name="cancellationToken"/>)
    /// ends first, aborts the stages through <paramref name="abort"/> and waits for them to notice.
    /// </summary>
    public static async Task DrainAsync(IEnumerable<Task> completions, CancellationTokenSource abort, CancellationToken cancellationToken)
    {
        var all = Task.WhenAll(completions);
        try
        {
            await all.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            await abort.CancelAsync().ConfigureAwait(false);
            await all.ConfigureAwait(false);
        }
    }
}
