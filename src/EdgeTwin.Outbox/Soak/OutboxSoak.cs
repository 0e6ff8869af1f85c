using System.Globalization;
using System.Text;

namespace EdgeTwin.Outbox.Soak;

/// <summary>
/// A crash-test load for the outbox: appends (and optionally consumes) as fast as it can and prints a line only
/// after the outbox said "durable" (or "acknowledged"). A test kills it with SIGKILL at random moments and checks
/// the file against the last lines printed. Used by <c>edgetwin outbox soak</c> and the SIGKILL test.
/// </summary>
/// <remarks>
/// Output, one line per event, each ending in <c>;</c> so a line cut by the kill is recognisable:
/// <c>ready LAST;</c> after open, <c>durable SEQ;</c> after an append returned, <c>acked SEQ;</c> after an
/// acknowledgement returned. Payloads are <c>{"v":1,"type":"soak","n":N}</c> with N increasing by one per record
/// across runs and equal to its sequence - 1, so a reader can check every entry is the one that was appended there.
/// </remarks>
public static class OutboxSoak
{
    public const string Uplink = "soak";

    /// <param name="path">Outbox file.</param>
    /// <param name="consume">Also run an uplink-like consumer that reads, "sends" and acknowledges.</param>
    /// <param name="output">Where the progress lines go (stdout).</param>
    /// <param name="cancellationToken">Stops the load (a SIGKILL needs no token).</param>
    public static async Task RunAsync(string path, bool consume, TextWriter output, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(output);
        await using var outbox = await LiteDbOutbox.OpenAsync(new LiteDbOutboxOptions { Path = path }, cancellationToken: cancellationToken).ConfigureAwait(false);
        var gate = new Lock();
        void Say(string what, long value)
        {
            lock (gate)
            {
                output.Write(string.Create(CultureInfo.InvariantCulture, $"{what} {value};\n"));
                output.Flush();
            }
        }

        // Every record's n is its sequence - 1: numbering and queueing happen under one lock, and a batch that was
        // not committed before a kill leaves both its numbers and its sequences free for the next run.
        var next = outbox.GetStats().LastSequence;
        Say("ready", outbox.GetStats().LastSequence);
        var counterLock = new Lock();

        async Task ProduceAsync(int seed)
        {
            var random = new Random(seed);
            while (!cancellationToken.IsCancellationRequested)
            {
                var size = random.Next(1, 64);
                var batch = new OutboxRecord[size];

                // Counter order and sequence order must agree, so numbering and appending happen under one lock.
                Task<long> append;
                lock (counterLock)
                {
                    for (var i = 0; i < size; i++)
                    {
                        var n = next++;
                        batch[i] = new OutboxRecord(OutboxKind.Summary, "soak-" + (n % 7).ToString(CultureInfo.InvariantCulture), n, Encoding.UTF8.GetBytes(
                            string.Create(CultureInfo.InvariantCulture, $"{{\"v\":1,\"type\":\"soak\",\"n\":{n}}}")));
                    }

                    append = outbox.AppendAsync(batch, CancellationToken.None).AsTask();
                }

                Say("durable", await append.ConfigureAwait(false));
            }
        }

        async Task ConsumeAsync()
        {
            outbox.RegisterUplink(Uplink);
            while (!cancellationToken.IsCancellationRequested)
            {
                var position = outbox.GetAcknowledged(Uplink);
                await outbox.WaitForEntriesAsync(position, cancellationToken).ConfigureAwait(false);
                var page = await outbox.ReadAsync(Uplink, position, 97, cancellationToken).ConfigureAwait(false);
                if (page.Count > 0)
                {
                    await outbox.AcknowledgeAsync(Uplink, page[^1].Sequence, cancellationToken).ConfigureAwait(false);
                    Say("acked", page[^1].Sequence);
                }
            }
        }

        var tasks = new List<Task> { Task.Run(() => ProduceAsync(1), cancellationToken), Task.Run(() => ProduceAsync(2), cancellationToken) };
        if (consume)
        {
            tasks.Add(Task.Run(ConsumeAsync, cancellationToken));
        }

        try
        {
            await Task.WhenAll(tasks).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Normal stop.
        }
    }

    /// <summary>Reads <c>n</c> from a soak payload.</summary>
    public static long ParseCounter(ReadOnlySpan<byte> payload)
    {
        var reader = new System.Text.Json.Utf8JsonReader(payload);
        while (reader.Read())
        {
            if (reader.TokenType == System.Text.Json.JsonTokenType.PropertyName && reader.ValueTextEquals("n"u8))
            {
                reader.Read();
                return reader.GetInt64();
            }
        }

        throw new FormatException($"Not a soak payload: {Encoding.UTF8.GetString(payload)}");
    }
}
