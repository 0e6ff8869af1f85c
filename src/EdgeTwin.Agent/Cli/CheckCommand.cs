using System.CommandLine;
using System.Text;
using EdgeTwin.Core.Config;

namespace EdgeTwin.Agent.Cli;

/// <summary>
/// <c>edgetwin check --config FILE [--profiles-dir DIR] [--json]</c>: validates the site config and the device
/// profiles it uses, prints every problem as <c>FILE:LINE:COL: key: message</c> and exits 1 when there is any;
/// otherwise prints a one-line summary and exits 0 (like <c>nginx -t</c>).
/// </summary>
internal sealed class CheckCommand : ICliCommand
{
    public Command Create()
    {
        var config = new Option<FileInfo>("--config", "-c")
        {
            Description = "Site config file (YAML).",
            Required = true,
        };
        var profilesDir = new Option<DirectoryInfo?>("--profiles-dir")
        {
            Description = "Device profile directory; overrides profiles_dir in the config and the default search.",
        };
        var json = new Option<bool>("--json") { Description = "Print the result as JSON." };

        var command = new Command("check", "Validate a site config and its device profiles; print every problem with file, line and key.");
        command.Options.Add(config);
        command.Options.Add(profilesDir);
        command.Options.Add(json);
        command.SetAction(async (parseResult, cancellationToken) =>
        {
            var file = parseResult.GetValue(config)!;
            var dir = parseResult.GetValue(profilesDir);
            var options = new SiteConfigLoadOptions
            {
                ProfilesDir = dir?.FullName,
                // uplinks/alerts/models are validated by their owners' IConfigSectionValidator implementations.
                SectionValidators = ConfigSectionValidators.Discover(typeof(CheckCommand).Assembly),
            };
            var report = ConfigCheck.Run(file.ToString(), options);
            if (report.Config is { } site && Hosting.DescriptorBudget.Warning(site, EdgeTwin.Modbus.Transport.ProcessDescriptors.SoftLimit()) is { } low)
            {
                // This process's limit: run under the unit's (`systemd-run -p LimitNOFILE=...`) to check the service's.
                report = report with { Warnings = [.. report.Warnings, new ConfigDiagnostic(file.ToString(), 0, 0, "devices", low) { IsWarning = true }] };
            }

            // A Kafka uplink needs librdkafka to load on this machine (a gateway's check runs there): a shared library it
            // lacks (libsasl2.so.3 on a minimal Debian) left the uplink retrying what looked like an unreachable cluster.
            if (report.Ok && report.Config?.Uplinks is { } uplinks && uplinks["kafka"] is ConfigMapping && uplinks.KeyMark("kafka") is var mark
                && EdgeTwin.Uplink.Kafka.KafkaNativeLibrary.TryLoad(out _) is { } unloadable)
            {
                report = report with { Problems = [.. report.Problems, new ConfigDiagnostic(file.ToString(), mark.Line, mark.Column, "uplinks.kafka", unloadable)] };
            }

            // The invocation's writer (stdout by default), so an in-process caller gets the report as other commands do.
            var output = parseResult.InvocationConfiguration.Output;
            if (parseResult.GetValue(json))
            {
                using var buffer = new MemoryStream();
                ConfigCheck.WriteJson(report, buffer);
                await output.WriteAsync(Encoding.UTF8.GetString(buffer.ToArray())).ConfigureAwait(false);
            }
            else
            {
                ConfigCheck.WriteText(report, output);
            }

            await output.FlushAsync(cancellationToken).ConfigureAwait(false);
            return report.ExitCode;
        });
        return command;
    }
}
