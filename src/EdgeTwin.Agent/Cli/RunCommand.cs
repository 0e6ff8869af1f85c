using System.CommandLine;
using EdgeTwin.Agent.Alerting;
using EdgeTwin.Agent.Hosting;
using EdgeTwin.Agent.Line;
using EdgeTwin.Agent.StoreAndForward;
using EdgeTwin.Agent.Twin;
using EdgeTwin.Agent.Twin.Models;
using EdgeTwin.Agent.Twin.Thermal;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Agent.Cli;

/// <summary>
/// <c>edgetwin run --config FILE</c>: the service. Validates the config (every problem printed, exit 2), builds every
/// device's sources (same), starts, tells systemd READY=1, and on SIGTERM/SIGINT finishes the polls in flight and drains
/// the pipeline before exiting 0. A crashed background service exits 1, so <c>Restart=on-failure</c> restarts it.
/// </summary>
internal sealed class RunCommand : ICliCommand
{
    public Command Create()
    {
        var file = new AgentConfigFile();
        var logLevel = new Option<LogLevel>("--log-level")
        {
            Description = "Lowest level written to the log (Trace, Debug, Information, Warning, Error).",
            DefaultValueFactory = _ => LogLevel.Information,
        };
        var shutdown = new Option<TimeSpan>("--shutdown-timeout")
        {
            Description = "How long a stop may take to finish polls in flight and drain queues: 20, 20s or 00:00:20; above 0 and under 45 s, after which the process is cut.",
            DefaultValueFactory = _ => TimeSpan.FromSeconds(20),
        }.Below(CliUsage.ProcessTerminationTimeout);
        var command = new Command("run", "Run the agent as a service: poll every device, feed the pipeline, until stopped.");
        file.AddTo(command);
        command.Options.Add(logLevel);
        command.Options.Add(shutdown);
        command.SetAction(async (parse, ct) =>
        {
            var error = parse.InvocationConfiguration.Error;
            var config = file.Load(parse, error, ConfigWarningOutput.WithProblems);
            if (config is null)
            {
                return ExitCodes.InvalidConfig;
            }

            var options = new AgentHostOptions
            {
                MinimumLogLevel = parse.GetValue(logLevel),
                ShutdownTimeout = parse.GetValue(shutdown),
                ConfigureServices = services => services.AddStoreAndForward().AddTwinModels().AddModels().AddMultivariateAnomaly().AddMaintenance().AddLineTwin(config).AddThermalTwin().AddPue().AddTwinRequests().AddAlerting(),
            };
            return await RunAsync(config, options, error, ct).ConfigureAwait(false);
        });
        return command;
    }

    private const string HostCategory = "Microsoft.Extensions.Hosting.Internal.Host";

    /// <summary>The problems of a start that failed on settings (uplink options, a section's config), else empty.</summary>
    private static IReadOnlyList<string> InvalidSettings(Exception ex) => ex switch
    {
        Uplink.UplinkOptionsException u => u.Errors,
        Core.Config.ConfigException c => c.Problems.Count > 0 ? [.. c.Problems.Select(p => p.ToString())] : [c.Message],
        // Several services failed to start: a settings failure only when every one of them is.
        AggregateException a when a.InnerExceptions.Select(InvalidSettings).ToList() is var each && each.All(e => e.Count > 0) => [.. each.SelectMany(e => e)],
        _ => [],
    };

    /// <summary>Runs the agent until <paramref name="stop"/> fires or the host stops itself; returns the exit code.</summary>
    internal static async Task<int> RunAsync(Core.Config.SiteConfig config, AgentHostOptions options, TextWriter error, CancellationToken stop)
    {
        // A failed start is reported below in one line that says what and where; the host's own Error for it came first,
        // with the whole stack trace. Its Critical (a crashed background service, with the trace) stays.
        options.ConfigureLogging += logging => logging.AddFilter(HostCategory, LogLevel.Critical);
        using var host = AgentHostBuilder.Build(config, options);
        var runtime = host.Services.GetRequiredService<AgentRuntime>();
        try
        {
            // Not RunAsync: it disposes the host, and the exit code needs the services afterwards.
            await host.StartAsync(stop).ConfigureAwait(false);
            await host.WaitForShutdownAsync(stop).ConfigureAwait(false);
        }
        catch (AgentStartException ex)
        {
            foreach (var problem in ex.Problems)
            {
                await error.WriteLineAsync(problem).ConfigureAwait(false);
            }

            var count = ex.Problems.Count;
            await error.WriteLineAsync($"edgetwin: {count} device{(count == 1 ? "" : "s")} cannot be read with this config; not starting").ConfigureAwait(false);
            return ExitCodes.InvalidConfig;
        }
        catch (Exception ex) when (InvalidSettings(ex) is { Count: > 0 } problems)
        {
            // A TLS file that went bad after loading (check parses them too) is still the config's fault: exit 2, so
            // systemd's RestartPreventExitStatus=2 stops rather than restart-loops on it.
            foreach (var problem in problems)
            {
                await error.WriteLineAsync(problem).ConfigureAwait(false);
            }

            await error.WriteLineAsync($"edgetwin: {problems.Count} problem{(problems.Count == 1 ? "" : "s")} in the config; not starting").ConfigureAwait(false);
            return ExitCodes.InvalidConfig;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            var cause = ex is AggregateException { InnerExceptions.Count: 1 } one ? one.InnerExceptions[0] : ex;
            await error.WriteLineAsync($"edgetwin: fatal: {cause.GetType().Name}: {cause.Message}").ConfigureAwait(false);
            if (cause is not (IOException or UnauthorizedAccessException))
            {
                // Not the gateway's disk or permissions but a fault of the agent: the trace is what a bug report needs.
                await error.WriteLineAsync(cause.ToString()).ConfigureAwait(false);
            }

            return ExitCodes.Failure;
        }

        // The host stops (exit 0 by default) when a BackgroundService crashes; systemd must see a failure.
        var crashed = host.Services.GetServices<IHostedService>()
            .OfType<BackgroundService>()
            .FirstOrDefault(s => s.ExecuteTask is { IsFaulted: true });
        var fatal = runtime.Fatal ?? crashed?.ExecuteTask?.Exception?.GetBaseException();
        if (fatal is not null)
        {
            await error.WriteLineAsync($"edgetwin: stopped after a fatal error: {fatal.GetType().Name}: {fatal.Message}").ConfigureAwait(false);
            return ExitCodes.Failure;
        }

        return ExitCodes.Ok;
    }
}
