using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using EdgeTwin.Agent.Hosting;
using EdgeTwin.Core.Config;
using EdgeTwin.Core.Profiles;
using EdgeTwin.Core.Samples;
using EdgeTwin.Core.Scheduling;
using EdgeTwin.Core.Sources;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Agent.Cli;

/// <summary>
/// <c>edgetwin poll DEVICE --config FILE [--json]</c>: reads one device once through the same source the agent uses and
/// prints every metric with its unit, role and quality (like <c>telegraf --once</c>). Exit codes: 0 read, 1 the device
/// could not be read (error named), 2 config problem or unknown device. The config's warnings go to standard error as
/// <c>check</c> prints them (<c>FILE:LINE:COL: warning: key: message</c>); they change neither the output nor the exit code.
/// A device that pushes its readings (GPIO contact, S0 meter) runs until its first ones: a contact's state at once, a
/// meter's total and rate after one <c>interval</c>.
/// </summary>
internal sealed class PollCommand : ICliCommand
{
    public Command Create()
    {
        var file = new AgentConfigFile();
        var device = new Argument<string>("DEVICE") { Description = "Device id from the site config." };
        var json = new Option<bool>("--json") { Description = "Print the reading as JSON." };
        var command = new Command("poll", "Read one device once and print its metrics with units.");
        command.Arguments.Add(device);
        file.AddTo(command);
        command.Options.Add(json);
        command.SetAction(async (parse, ct) =>
        {
            var output = parse.InvocationConfiguration.Output;
            var error = parse.InvocationConfiguration.Error;
            var config = file.Load(parse, error, ConfigWarningOutput.Always);
            if (config is null)
            {
                return ExitCodes.InvalidConfig;
            }

            var services = new ServiceCollection();
            // Source warnings go to stderr, one line each, so stdout stays the reading (and valid JSON).
            services.AddLogging(b => b.AddSimpleConsole(o => o.SingleLine = true).AddFilter(l => l >= LogLevel.Warning)
                .AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace));
            AgentHostBuilder.AddDiscoveredSourceFactories(services);
            await using var provider = services.BuildServiceProvider();
            return await PollAsync(
                config,
                parse.GetValue(device)!,
                provider.GetRequiredService<SourceFactories>(),
                provider.GetRequiredService<ILoggerFactory>(),
                TimeProvider.System,
                parse.GetValue(json),
                output,
                error,
                ct).ConfigureAwait(false);
        });
        return command;
    }

    /// <summary>Reads <paramref name="deviceId"/> once and prints the result; returns the exit code.</summary>
    internal static async Task<int> PollAsync(
        SiteConfig config,
        string deviceId,
        SourceFactories factories,
        ILoggerFactory loggerFactory,
        TimeProvider time,
        bool json,
        TextWriter output,
        TextWriter error,
        CancellationToken cancellationToken)
    {
        var device = config.FindDevice(deviceId);
        if (device is null)
        {
            var known = string.Join(", ", config.Devices.Select(d => d.Id));
            await error.WriteLineAsync($"edgetwin: no device '{deviceId}' in {config.SourcePath ?? "the config"} (devices: {known})").ConfigureAwait(false);
            return ExitCodes.InvalidConfig;
        }

        var profile = config.ProfileOf(device);
        DeviceSources sources;
        try
        {
            sources = factories.Create(config, device, loggerFactory, time);
        }
        catch (SourceCreationException ex)
        {
            await error.WriteLineAsync(ex.Message).ConfigureAwait(false);
            return ExitCodes.InvalidConfig;
        }

        await using var _ = new AsyncDisposer(sources);
        var registry = new SeriesRegistry(timeProvider: time);
        var budget = AgentService.LimitSeries(registry, device, config);
        var sink = new CollectingSink();
        var acquiredAt = time.GetUtcNow();
        var started = time.GetTimestamp();
        IPolledSource? polled = sources.Polled;
        if (polled is null && sources.Push is { } push)
        {
            // A contact, door or S0 meter pushes its readings: run it until its first ones (a contact's state at once, a
            // meter's after one report interval). It refused before, and the technician wiring a leak contact had to
            // start the whole agent to see whether it reads wet.
            push.RegisterSeries(registry);
            if (await FirstPushAsync(push, sink, device, time, error, cancellationToken).ConfigureAwait(false) is { } failed)
            {
                return failed;
            }
        }
        else if (polled is null)
        {
            await error.WriteLineAsync($"edgetwin: device '{device.Id}' ({profile.Id}) has no source to read; watch it with `edgetwin run`").ConfigureAwait(false);
            return ExitCodes.InvalidConfig;
        }
        else
        {
            polled.RegisterSeries(registry);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(device.Timeout);
            try
            {
                await polled.PollAsync(sink, acquiredAt.ToUnixTimeMilliseconds(), timeout.Token).ConfigureAwait(false);
                if (RateMetrics(profile) is { Count: > 0 } rates)
                {
                    // A counter rate needs two readings: the first poll only primes it, so one poll of ietf-if-mib
                    // printed no traffic at all (in_octets, out_octets … missing) and looked like a broken profile.
                    await error.WriteLineAsync($"edgetwin: {rates.Count} rate metric(s) ({string.Join(", ", rates.Take(4))}{(rates.Count > 4 ? ", …" : "")}) need two readings: polled again after {Durations(RateGap)}; the agent's rates are over its interval").ConfigureAwait(false);
                    await Task.Delay(RateGap, time, cancellationToken).ConfigureAwait(false);
                    using var again = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                    again.CancelAfter(device.Timeout);
                    try
                    {
                        await polled.PollAsync(sink, time.GetUtcNow().ToUnixTimeMilliseconds(), again.Token).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException) when (again.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
                    {
                        await error.WriteLineAsync($"edgetwin: device '{device.Id}' at {device.Address}: no answer within {Durations(device.Timeout)} on the second reading").ConfigureAwait(false);
                        return ExitCodes.Failure;
                    }
                }
            }
            catch (OperationCanceledException) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
                await error.WriteLineAsync($"edgetwin: device '{device.Id}' at {device.Address}: no answer within {Durations(device.Timeout)}").ConfigureAwait(false);
                return ExitCodes.Failure;
            }
            catch (DeviceException ex)
            {
                await error.WriteLineAsync($"edgetwin: {ex.Message}").ConfigureAwait(false);
                return ExitCodes.Failure;
            }
        }

        var source = (object?)polled ?? sources.Push;

        var elapsed = time.GetElapsedTime(started);
        if (budget.Dropped > 0)
        {
            // What the agent would also drop: one poll already finds more rows than the cap allows.
            await error.WriteLineAsync($"edgetwin: device '{device.Id}' has more series than its max_series ({device.MaxSeries}): {budget.Dropped} sample(s) of further series not shown; raise {budget.RaiseAt}").ConfigureAwait(false);
        }

        var rules = AgentService.QualityRulesOf(profile);
        var reasons = source as EdgeTwin.Agent.Sources.ISampleReasons;
        // A push source may have published more than once before it stopped: its latest value per series.
        var latest = sink.Samples.GroupBy(s => s.Series).Select(g => g.Last());
        var rows = latest.Select(s => Row.Of(s, registry[s.Series], profile, rules, reasons)).ToList();
        if (json)
        {
            await output.WriteAsync(Json(device, profile, acquiredAt, elapsed, rows)).ConfigureAwait(false);
            await output.WriteLineAsync().ConfigureAwait(false);
        }
        else
        {
            await output.WriteAsync(Text(device, profile, acquiredAt, elapsed, rows)).ConfigureAwait(false);
        }

        return ExitCodes.Ok;
    }

    private static readonly TimeSpan RateGap = TimeSpan.FromSeconds(1);

    private static List<string> RateMetrics(DeviceProfile profile) =>
        [.. profile.AllMetrics.Where(m => m.Rate).Select(m => m.Name)];

    /// <summary>
    /// Runs a push source until it has published (at most one report interval plus the timeout); null when it did,
    /// else the exit code after the error is written. A line the running agent holds fails here with the reason.
    /// </summary>
    private static async Task<int?> FirstPushAsync(IPushSource push, CollectingSink sink, DeviceConfig device, TimeProvider time, TextWriter error, CancellationToken cancellationToken)
    {
        var wait = device.Interval + device.Timeout;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var run = push.RunAsync(sink, new DiscardingEvents(), stop.Token);
        using (var timer = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
        {
            await Task.WhenAny(sink.First, run, Task.Delay(wait, time, timer.Token)).ConfigureAwait(false);
            await timer.CancelAsync().ConfigureAwait(false);
        }

        await stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await run.ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
        }
        catch (DeviceException ex)
        {
            await error.WriteLineAsync($"edgetwin: {ex.Message} (a running agent holds its GPIO lines: stop it first, or watch it with `edgetwin run`)").ConfigureAwait(false);
            return ExitCodes.Failure;
        }

        cancellationToken.ThrowIfCancellationRequested();
        if (sink.Samples.Count == 0)
        {
            await error.WriteLineAsync($"edgetwin: device '{device.Id}' at {device.Address}: no reading within {Durations(wait)} (its interval plus its timeout)").ConfigureAwait(false);
            return ExitCodes.Failure;
        }

        return null;
    }

    private static string Durations(TimeSpan t) => t.TotalSeconds >= 1
        ? t.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture) + "s"
        : t.TotalMilliseconds.ToString("0", CultureInfo.InvariantCulture) + "ms";

    private static string Text(DeviceConfig device, DeviceProfile profile, DateTimeOffset at, TimeSpan elapsed, List<Row> rows)
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"# {device.Id} ({profile.Id}: {profile.Vendor} {profile.Model}) at {device.Address}, read {at:yyyy-MM-ddTHH:mm:ss.fffZ} in {elapsed.TotalMilliseconds:0} ms, {rows.Count} metrics\n");
        var nameWidth = rows.Count == 0 ? 0 : rows.Max(r => r.Name.Length);
        var valueWidth = rows.Count == 0 ? 0 : rows.Max(r => r.ValueText.Length);
        var unitWidth = rows.Count == 0 ? 0 : rows.Max(r => r.Unit.Length);
        var roleWidth = rows.Count == 0 ? 0 : rows.Max(r => r.Role.Length);
        foreach (var r in rows)
        {
            sb.Append(r.Name.PadRight(nameWidth)).Append("  ")
              .Append(r.ValueText.PadLeft(valueWidth)).Append(' ')
              .Append(r.Unit.PadRight(unitWidth)).Append("  ")
              .Append(r.Quality != SampleQuality.Good || r.Raw is not null ? r.Role.PadRight(roleWidth) : r.Role);
            if (r.Quality != SampleQuality.Good)
            {
                sb.Append("  [").Append(QualityName(r.Quality)).Append(']');
                if (r.Reason is not null)
                {
                    sb.Append(' ').Append(r.Reason);
                }
            }

            if (r.Raw is not null)
            {
                sb.Append("  (").Append(r.Raw).Append(')');
            }

            sb.Append('\n');
        }

        return sb.ToString();
    }

    private static string Json(DeviceConfig device, DeviceProfile profile, DateTimeOffset at, TimeSpan elapsed, List<Row> rows)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = false }))
        {
            w.WriteStartObject();
            w.WriteString("device", device.Id);
            w.WriteString("profile", profile.Id);
            w.WriteString("address", device.Address.ToString());
            w.WriteString("time", at.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture));
            w.WriteNumber("duration_ms", Math.Round(elapsed.TotalMilliseconds, 1));
            w.WriteStartArray("metrics");
            foreach (var r in rows)
            {
                w.WriteStartObject();
                w.WriteString("series", r.Key);
                w.WriteString("metric", r.Metric);
                if (r.Tags.Count > 0)
                {
                    w.WriteStartObject("tags");
                    foreach (var (k, v) in r.Tags)
                    {
                        w.WriteString(k, v);
                    }

                    w.WriteEndObject();
                }

                if (double.IsFinite(r.Value))
                {
                    w.WriteNumber("value", r.Value);
                }
                else
                {
                    w.WriteNull("value");
                }

                w.WriteString("unit", r.Unit);
                w.WriteString("kind", r.Kind.ToString().ToLowerInvariant());
                if (r.Role.Length > 0)
                {
                    w.WriteString("role", r.Role);
                }

                if (r.State is not null)
                {
                    w.WriteString("state", r.State);
                }

                w.WriteString("quality", QualityName(r.Quality));
                if (r.Reason is not null)
                {
                    w.WriteString("reason", r.Reason);
                }

                if (r.Raw is not null)
                {
                    w.WriteString("raw", r.Raw);
                }

                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(stream.ToArray());
    }

    internal static string QualityName(SampleQuality q) => q switch
    {
        SampleQuality.Good => "good",
        SampleQuality.Stale => "stale",
        SampleQuality.OutOfRange => "out_of_range",
        SampleQuality.Stuck => "stuck",
        SampleQuality.DeviceError => "device_error",
        _ => q.ToString().ToLowerInvariant(),
    };

    private sealed record Row(string Key, string Name, string Metric, IReadOnlyList<KeyValuePair<string, string>> Tags, double Value, string ValueText, string Unit, MetricKind Kind, string Role, string? State, SampleQuality Quality, string? Reason, string? Raw)
    {
        public static Row Of(Sample s, SeriesDescriptor d, DeviceProfile profile, Func<SeriesDescriptor, QualityRule> rules, EdgeTwin.Agent.Sources.ISampleReasons? reasons)
        {
            var quality = s.Quality;
            var rule = rules(d);
            if (quality == SampleQuality.Good && (double.IsNaN(s.Value) || s.Value < rule.Min || s.Value > rule.Max))
            {
                quality = SampleQuality.OutOfRange;
            }

            var tags = d.Tags ?? [];
            var name = tags.Count == 0 ? d.Metric : d.Metric + "{" + string.Join(',', tags.Select(t => t.Key + "=" + t.Value)) + "}";
            string? state = null;
            var metric = profile.AllMetrics.FirstOrDefault(m => m.Name == d.Metric);
            if (metric?.States is { } states && double.IsFinite(s.Value) && states.TryGetValue((long)Math.Round(s.Value), out var label))
            {
                state = label;
            }

            var text = FormatValue(s.Value);
            if (state is not null)
            {
                text += " (" + state + ")";
            }

            var reason = s.Quality == SampleQuality.DeviceError ? reasons?.ReasonOf(s.Series) : null;
            return new Row(d.Key, name, d.Metric, tags, s.Value, text, d.Unit, d.Kind, d.Role ?? metric?.Role ?? "", state, quality, reason, reasons?.RawOf(s.Series));
        }

        /// <summary>
        /// Six decimals, but a value too small or too large for them in exponent form: a float32 read in the wrong word
        /// order (2.3e-41 A) printed as a plausible "0".
        /// </summary>
        internal static string FormatValue(double value)
        {
            double magnitude = Math.Abs(value);
            return double.IsNaN(value) ? "NaN"
                : magnitude != 0 && (magnitude < 0.000001 || magnitude >= 1e15) ? value.ToString("G6", CultureInfo.InvariantCulture)
                : value.ToString("0.######", CultureInfo.InvariantCulture);
        }
    }

    private sealed class CollectingSink : ISampleSink
    {
        private readonly Lock _lock = new();
        private readonly TaskCompletionSource _first = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public List<Sample> Samples { get; } = [];

        /// <summary>Completes with the first write.</summary>
        public Task First => _first.Task;

        public ValueTask WriteAsync(ReadOnlyMemory<Sample> samples, CancellationToken cancellationToken)
        {
            lock (_lock)
            {
                Samples.AddRange(samples.Span);
            }

            _first.TrySetResult();
            return ValueTask.CompletedTask;
        }
    }

    /// <summary>poll prints readings; a contact's events (its initial alarm) are the agent's business.</summary>
    private sealed class DiscardingEvents : EdgeTwin.Core.Events.IEventSink
    {
        public ValueTask PublishAsync(EdgeTwin.Core.Events.EdgeEvent edgeEvent, CancellationToken cancellationToken) => ValueTask.CompletedTask;
    }

    private sealed class AsyncDisposer(DeviceSources sources) : IAsyncDisposable
    {
        public ValueTask DisposeAsync() => sources.DisposeAsync();
    }
}
