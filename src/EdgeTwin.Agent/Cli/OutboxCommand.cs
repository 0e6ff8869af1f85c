using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using EdgeTwin.Core.Config;
using EdgeTwin.Outbox;
using EdgeTwin.Outbox.Soak;

namespace EdgeTwin.Agent.Cli;

/// <summary>
/// <c>edgetwin outbox stats|peek|export (--config FILE | --path DB) [--json]</c>: inspects the store-and-forward
/// outbox. When the agent is running (it holds the outbox lock) the command reads a snapshot copy of the files and
/// says so; it never moves or changes a file it did not create. Hidden: <c>outbox soak --path DB [--consume]</c>,
/// the crash-test load the SIGKILL test runs.
/// </summary>
internal sealed class OutboxCommand : ICliCommand
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    public Command Create()
    {
        var command = new Command("outbox", "Inspect the store-and-forward outbox: depth, age, size, uplink positions, entries.");
        command.Subcommands.Add(Stats());
        command.Subcommands.Add(Peek());
        command.Subcommands.Add(Export());
        command.Subcommands.Add(Soak());
        return command;
    }

    private static (Option<FileInfo?> Config, Option<string?> Path, Option<bool> Json) CommonOptions(Command command)
    {
        var config = new Option<FileInfo?>("--config", "-c") { Description = "Site config file (YAML); its outbox.path is used." };
        var path = new Option<string?>("--path") { Description = "Outbox file (overrides the config)." };
        var json = new Option<bool>("--json") { Description = "Print JSON for scripts." };
        command.Options.Add(config);
        command.Options.Add(path);
        command.Options.Add(json);
        return (config, path, json);
    }

    private static Command Stats()
    {
        var command = new Command("stats", "Depth, oldest entry age, bytes, per-uplink positions, condensed and dropped counts.");
        var (config, path, json) = CommonOptions(command);
        command.SetAction((parse, ct) => WithOutboxAsync(parse.GetValue(config), parse.GetValue(path), async (outbox, shown, note) =>
        {
            var stats = outbox.GetStats();
            var now = DateTimeOffset.UtcNow;
            if (parse.GetValue(json))
            {
                var doc = new Dictionary<string, object?>
                {
                    ["path"] = shown,
                    ["snapshot"] = note is not null,
                    ["depth"] = stats.Depth,
                    ["first_seq"] = stats.FirstSequence,
                    ["last_seq"] = stats.LastSequence,
                    ["oldest_ms"] = stats.OldestTimestampUnixMs,
                    ["oldest_age_s"] = stats.OldestAge(now)?.TotalSeconds,
                    ["file_bytes"] = stats.Bytes,
                    ["entry_bytes"] = stats.EntryBytes,
                    ["condensed"] = stats.Condensed,
                    ["dropped"] = stats.Dropped,
                    ["pending_pieces"] = stats.PendingEntries,
                    ["pending_bytes"] = stats.PendingBytes,
                    ["uplinks"] = stats.UplinkPositions.ToDictionary(p => p.Key, p => new { acked = p.Value, behind = Math.Clamp(stats.LastSequence - p.Value, 0, stats.Depth) }),
                };
                await Console.Out.WriteLineAsync(JsonSerializer.Serialize(doc, Indented)).ConfigureAwait(false);
                return 0;
            }

            var o = Console.Out;
            await o.WriteLineAsync($"outbox       {shown}{(note is null ? "" : "  (" + note + ")")}").ConfigureAwait(false);
            await o.WriteLineAsync(stats.Depth == 0
                ? $"entries      0 (last sequence {stats.LastSequence})"
                : $"entries      {stats.Depth} (sequences {stats.FirstSequence}..{stats.LastSequence})").ConfigureAwait(false);
            await o.WriteLineAsync(stats.OldestTimestampUnixMs is { } oldest
                ? $"oldest       {DateTimeOffset.FromUnixTimeMilliseconds(oldest):yyyy-MM-dd'T'HH:mm:ss'Z'} ({Age(stats.OldestAge(now)!.Value)} ago)"
                : "oldest       -").ConfigureAwait(false);
            await o.WriteLineAsync($"bytes        {Size(stats.Bytes)} on disk, {Size(stats.EntryBytes)} in entries").ConfigureAwait(false);
            await o.WriteLineAsync($"condensed    {stats.Condensed} raw entries into summaries").ConfigureAwait(false);
            await o.WriteLineAsync($"dropped      {stats.Dropped} entries (budget or max age)").ConfigureAwait(false);
            if (stats.PendingEntries > 0)
            {
                await o.WriteLineAsync($"pending      {PendingPieces(stats)}").ConfigureAwait(false);
            }
            if (stats.UplinkPositions.Count == 0)
            {
                await o.WriteLineAsync("uplinks      none registered (nothing is removed until one acknowledges)").ConfigureAwait(false);
            }

            foreach (var (uplink, acked) in stats.UplinkPositions.OrderBy(p => p.Key, StringComparer.Ordinal))
            {
                await o.WriteLineAsync($"uplink       {uplink}: acknowledged {acked}, {Math.Clamp(stats.LastSequence - acked, 0, stats.Depth)} behind").ConfigureAwait(false);
            }

            return 0;
        }, ct));
        return command;
    }

    private static Command Peek()
    {
        var command = new Command("peek", "Print the oldest entries (or those after --after).");
        var (config, path, json) = CommonOptions(command);
        var count = new Option<int>("--count", "-n") { Description = "How many entries (at least 1).", DefaultValueFactory = _ => 10 }.AtLeast(1);
        var after = new Option<long>("--after") { Description = "Start after this sequence (default: the oldest held)." };
        command.Options.Add(count);
        command.Options.Add(after);
        command.SetAction((parse, ct) => WithOutboxAsync(parse.GetValue(config), parse.GetValue(path), async (outbox, shown, note) =>
        {
            var entries = await outbox.ReadFromAsync(parse.GetValue(after), parse.GetValue(count), ct).ConfigureAwait(false);
            if (note is not null && !parse.GetValue(json))
            {
                await Console.Error.WriteLineAsync(note).ConfigureAwait(false);
            }

            foreach (var entry in entries)
            {
                var line = parse.GetValue(json)
                    ? ExportLine(entry)
                    : $"{entry.Sequence,8} {entry.Record.Kind,-10} {entry.Record.DeviceId,-20} {DateTimeOffset.FromUnixTimeMilliseconds(entry.Record.TimestampUnixMs):yyyy-MM-dd'T'HH:mm:ss.fff'Z'} {System.Text.Encoding.UTF8.GetString(entry.Record.Payload.Span)}";
                await Console.Out.WriteLineAsync(line).ConfigureAwait(false);
            }

            return 0;
        }, ct));
        return command;
    }

    private static Command Export()
    {
        var command = new Command("export", "Write every held entry as JSON lines: {\"seq\",\"kind\",\"device\",\"time_ms\",\"body\"}.");
        var (config, path, _) = CommonOptions(command);
        var output = new Option<FileInfo?>("--output", "-o") { Description = "File to write (default: stdout)." };
        var after = new Option<long>("--after") { Description = "Start after this sequence." };
        var salvage = new Option<bool>("--salvage")
        {
            Description = "Read a damaged file (e.g. a moved-aside outbox.db.corrupt-*): export what is readable and count what is not. Automatic for a corrupt file.",
        };
        command.Options.Add(output);
        command.Options.Add(after);
        command.Options.Add(salvage);
        command.SetAction(async (parse, ct) =>
        {
            var file = parse.GetValue(path);
            // A moved-aside file is read by the salvage alone: a normal open is a LiteDB open for writing.
            if (file is not null && File.Exists(file)
                && (parse.GetValue(salvage) || Path.GetFileName(file).Contains(".corrupt-", StringComparison.Ordinal) || await IsCorruptAsync(file, ct).ConfigureAwait(false)))
            {
                return await SalvageExportAsync(file, parse.GetValue(output), parse.GetValue(after), ct).ConfigureAwait(false);
            }

            return await ExportHeldAsync(parse, config, path, output, after, ct).ConfigureAwait(false);
        });
        return command;
    }

    /// <summary>Whether the normal open refuses <paramref name="file"/> as corrupt (the moved-aside files always are).</summary>
    private static async Task<bool> IsCorruptAsync(string file, CancellationToken ct)
    {
        try
        {
            var outbox = await LiteDbOutbox.OpenAsync(Inspect(file), cancellationToken: ct).ConfigureAwait(false);
            await outbox.DisposeAsync().ConfigureAwait(false);
            return false;
        }
        catch (OutboxStorageException ex)
        {
            return ex.Corrupt;
        }
    }

    /// <summary>
    /// Regression: <c>outbox export --path outbox.db.corrupt-…</c> refused the moved-aside file ("is corrupt; the agent will
    /// move it aside"), so what it still held could not be shipped by hand. Its journal is <c>FILE-log</c> (moved aside
    /// with it) or LiteDB's own name.
    /// </summary>
    private static async Task<int> SalvageExportAsync(string file, FileInfo? output, long after, CancellationToken ct)
    {
        var journal = File.Exists(file + "-log") ? file + "-log" : LiteDbOutbox.JournalPath(file);
        OutboxSalvageResult result;
        try
        {
            result = LiteDbOutbox.Salvage(file, journal, TimeSpan.FromMinutes(2), ct);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            await Console.Error.WriteLineAsync($"edgetwin outbox: cannot read {file}: {ex.Message}").ConfigureAwait(false);
            return 1;
        }

        foreach (var problem in result.Problems)
        {
            await Console.Error.WriteLineAsync($"edgetwin outbox: {file}: {problem}").ConfigureAwait(false);
        }

        if (await OpenOutputAsync(output).ConfigureAwait(false) is not { } writer)
        {
            return 1;
        }

        long written = 0;
        try
        {
            foreach (var entry in result.Entries.Where(e => e.Sequence > after))
            {
                await writer.WriteLineAsync(ExportLine(entry)).ConfigureAwait(false);
                written++;
            }
        }
        finally
        {
            await writer.FlushAsync(ct).ConfigureAwait(false);
            if (output is not null)
            {
                await writer.DisposeAsync().ConfigureAwait(false);
            }
        }

        var bound = result.Incomplete ? " (at least: part of the file could not be read at all)" : "";
        var pending = result.PendingDropped > 0
            ? $"; not exported: {result.PendingDropped} entries ({result.PendingBytes} bytes) of an append that never completed (never accepted: its caller retries it)"
            : "";
        await Console.Error.WriteLineAsync($"salvaged {written} entries{(output is null ? "" : " to " + output.FullName)}; {result.Lost} entries unreadable{bound}{pending}").ConfigureAwait(false);
        return written > 0 || (result.Lost == 0 && !result.Incomplete) ? 0 : 1;
    }

    private static Task<int> ExportHeldAsync(ParseResult parse, Option<FileInfo?> config, Option<string?> path, Option<FileInfo?> output, Option<long> after, CancellationToken ct) =>
        WithOutboxAsync(parse.GetValue(config), parse.GetValue(path), async (outbox, shown, note) =>
        {
            if (note is not null)
            {
                await Console.Error.WriteLineAsync(note).ConfigureAwait(false);
            }

            var file = parse.GetValue(output);
            if (await OpenOutputAsync(file).ConfigureAwait(false) is not { } writer)
            {
                return 1;
            }

            long position = parse.GetValue(after), written = 0;
            try
            {
                while (true)
                {
                    var page = await outbox.ReadFromAsync(position, 1000, ct).ConfigureAwait(false);
                    if (page.Count == 0)
                    {
                        break;
                    }

                    foreach (var entry in page)
                    {
                        await writer.WriteLineAsync(ExportLine(entry)).ConfigureAwait(false);
                    }

                    written += page.Count;
                    position = page[^1].Sequence;
                }
            }
            finally
            {
                await writer.FlushAsync(ct).ConfigureAwait(false);
                if (file is not null)
                {
                    await writer.DisposeAsync().ConfigureAwait(false);
                }
            }

            var pending = outbox.GetStats();
            await Console.Error.WriteLineAsync($"exported {written} entries{(file is null ? "" : " to " + file.FullName)}{(pending.PendingEntries > 0 ? "; not exported: " + PendingPieces(pending) : "")}").ConfigureAwait(false);
            return 0;
        }, ct);

    /// <summary>
    /// Standard output, or the <c>--output</c> file; null after a one-line reason naming it when it cannot be created (a
    /// missing directory, a directory, no permission), which escaped as an unhandled exception with its stack trace.
    /// </summary>
    private static async Task<TextWriter?> OpenOutputAsync(FileInfo? output)
    {
        if (output is null)
        {
            return Console.Out;
        }

        try
        {
            return new StreamWriter(output.FullName, append: false);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            var why = Directory.Exists(output.FullName) ? "it is a directory (give a file name)"
                : ex is DirectoryNotFoundException ? $"no directory {output.DirectoryName}"
                : ex is UnauthorizedAccessException ? "permission denied"
                : ex.Message;
            await Console.Error.WriteLineAsync($"edgetwin outbox: cannot write --output {output.FullName}: {why}").ConfigureAwait(false);
            return null;
        }
    }

    private static Command Soak()
    {
        var command = new Command("soak", "Crash-test load: append (and with --consume, read and acknowledge) until killed; prints durable sequences.")
        {
            Hidden = true,
        };
        var path = new Option<string>("--path") { Description = "Outbox file.", Required = true };
        var consume = new Option<bool>("--consume") { Description = "Also run a consumer that acknowledges." };
        command.Options.Add(path);
        command.Options.Add(consume);
        command.SetAction(async (parse, ct) =>
        {
            await OutboxSoak.RunAsync(parse.GetValue(path)!, parse.GetValue(consume), Console.Out, ct).ConfigureAwait(false);
            return 0;
        });
        return command;
    }

    private static string ExportLine(OutboxEntry entry)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(entry.Record.Payload.Length + 128);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteNumber("seq", entry.Sequence);
            w.WriteString("kind", entry.Record.Kind.ToString().ToLowerInvariant());
            w.WriteString("device", entry.Record.DeviceId);
            w.WriteNumber("time_ms", entry.Record.TimestampUnixMs);
            w.WritePropertyName("body");
            try
            {
                w.WriteRawValue(entry.Record.Payload.Span);
            }
            catch (JsonException)
            {
                w.WriteBase64StringValue(entry.Record.Payload.Span); // not JSON: keep the bytes, visibly encoded
            }

            w.WriteEndObject();
        }

        return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>Resolves the file, opens it (or a snapshot copy when the agent holds it) and runs <paramref name="action"/>.</summary>
    private static async Task<int> WithOutboxAsync(FileInfo? config, string? path, Func<LiteDbOutbox, string, string?, Task<int>> action, CancellationToken ct)
    {
        var file = path;
        var hint = "";
        if (file is null && config is not null)
        {
            var loaded = AgentConfigFile.LoadSite(config.FullName);
            if (loaded.Config is null)
            {
                foreach (var problem in loaded.Problems)
                {
                    await Console.Error.WriteLineAsync(problem.ToString()).ConfigureAwait(false);
                }

                return 2;
            }

            file = loaded.Config.Outbox.Path;
            hint = RelativeStatePath.Hint(file, "outbox.path");
        }

        if (file is null)
        {
            await Console.Error.WriteLineAsync("edgetwin outbox: give --config FILE or --path OUTBOX.db").ConfigureAwait(false);
            return 2;
        }

        if (!File.Exists(file))
        {
            await Console.Error.WriteLineAsync($"edgetwin outbox: no outbox at {Path.GetFullPath(file)}{hint}").ConfigureAwait(false);
            return 1;
        }

        string? snapshot = null;
        try
        {
            LiteDbOutbox outbox;
            string? note = null;
            try
            {
                outbox = await LiteDbOutbox.OpenAsync(Inspect(file), cancellationToken: ct).ConfigureAwait(false);
            }
            catch (OutboxStorageException ex) when (ex.InUse)
            {
                // The agent is running: read a copy. Its journal replays committed transactions, so the copy is consistent.
                var temp = Path.GetTempPath();
                snapshot = Path.Combine(temp, "edgetwin-outbox-snapshot-" + Guid.NewGuid().ToString("N"));
                if (await SnapshotAsync(file, temp, snapshot, ct).ConfigureAwait(false) is not { } copy)
                {
                    return 1;
                }

                outbox = await LiteDbOutbox.OpenAsync(Inspect(copy), cancellationToken: ct).ConfigureAwait(false);
                note = "the agent holds the outbox: figures are from a snapshot copy taken now";
            }

            await using (outbox.ConfigureAwait(false))
            {
                return await action(outbox, file, note).ConfigureAwait(false);
            }
        }
        catch (OutboxStorageException ex)
        {
            await Console.Error.WriteLineAsync($"edgetwin outbox: {ex.Message}").ConfigureAwait(false);
            return 1;
        }
        finally
        {
            if (snapshot is not null && Directory.Exists(snapshot))
            {
                try
                {
                    Directory.Delete(snapshot, recursive: true);
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    await Console.Error.WriteLineAsync($"edgetwin outbox: could not remove the snapshot {snapshot}: {ex.Message}").ConfigureAwait(false);
                }
            }
        }
    }

    /// <summary>
    /// Copies the outbox and its journal into <paramref name="snapshot"/> under <paramref name="temp"/>; null after a
    /// one-line reason when it cannot. During a long outage the file is as large as the budget, and <c>/tmp</c> may be a
    /// small tmpfs: a copy that does not fit is refused before it fills it, and a failed one (no room, no permission)
    /// says where and what instead of an unhandled exception.
    /// </summary>
    private static async Task<string?> SnapshotAsync(string file, string temp, string snapshot, CancellationToken ct)
    {
        var journal = LiteDbOutbox.JournalPath(file);
        string why;
        try
        {
            var needed = new FileInfo(file).Length + (File.Exists(journal) ? new FileInfo(journal).Length : 0);
            var free = FreeBytes(temp);
            if (free is { } room && room < needed + (16L << 20))
            {
                why = $"it needs {Size(needed)} and {temp} has {Size(room)} free";
            }
            else
            {
                Directory.CreateDirectory(snapshot);
                var copy = Path.Combine(snapshot, Path.GetFileName(file));
                if (File.Exists(journal))
                {
                    File.Copy(journal, LiteDbOutbox.JournalPath(copy));
                }

                File.Copy(file, copy);
                return copy;
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            why = ex.Message;
        }

        await Console.Error.WriteLineAsync(
            $"edgetwin outbox: the agent holds {file}, and a snapshot copy into {temp} failed: {why}. "
            + "`edgetwin status` shows the backlog from the running agent without a copy; or set TMPDIR to a directory with room.").ConfigureAwait(false);
        return null;
    }

    private static long? FreeBytes(string directory)
    {
        try
        {
            return new DriveInfo(Path.GetFullPath(directory)).AvailableFreeSpace;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return null; // unknown: the copy's own failure says it
        }
    }

    // Generous budget and age: inspecting must never condense, drop or move anything.
    private static LiteDbOutboxOptions Inspect(string file) => new()
    {
        Path = file,
        MoveCorruptFileAside = false,
        DiskBudgetBytes = long.MaxValue / 2,
        MaxAge = TimeSpan.FromDays(365 * 100),
    };

    /// <summary>Pieces of an unfinished append are on disk but not entries: say so, or a file looks larger than what it holds.</summary>
    private static string PendingPieces(OutboxStats stats) =>
        $"{stats.PendingEntries} entries in pending pieces of an unfinished append ({stats.PendingBytes} bytes): not entries to send, dropped at the agent's next open";

    private static string Age(TimeSpan age) => age < TimeSpan.FromMinutes(1) ? $"0m {age.Seconds}s" : Durations.Approximate(age);

    private static string Size(long bytes) => bytes >= 1024 * 1024
        ? (bytes / 1048576.0).ToString("0.0", CultureInfo.InvariantCulture) + " MiB"
        : (bytes / 1024.0).ToString("0.0", CultureInfo.InvariantCulture) + " KiB";
}
