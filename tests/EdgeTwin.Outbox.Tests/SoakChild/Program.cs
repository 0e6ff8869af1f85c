using EdgeTwin.Outbox.Soak;

// Usage: EdgeTwin.Outbox.SoakChild PATH [--consume] | PATH --writeback STEP (WriteBackChild). Runs until killed (or stdin closes).
if (args.Length < 1)
{
    await Console.Error.WriteLineAsync("usage: EdgeTwin.Outbox.SoakChild PATH [--consume]");
    return 2;
}

using var stop = new CancellationTokenSource();
_ = Task.Run(async () =>
{
    // The parent closing our stdin (or dying) ends the soak, so a crashed test never leaves us running.
    await Console.In.ReadToEndAsync();
    await stop.CancelAsync();
});
if (args.Length >= 3 && args[1] == "--writeback")
{
    try
    {
        return await EdgeTwin.Outbox.SoakChild.WriteBackChild.RunAsync(args[0], args[2], stop.Token);
    }
    catch (OperationCanceledException)
    {
        return 0;
    }
}

await OutboxSoak.RunAsync(args[0], args.Contains("--consume"), Console.Out, stop.Token);
return 0;
