using System.CommandLine;
using System.Text;
using System.Text.RegularExpressions;
using EdgeTwin.Agent.Cli;
using EdgeTwin.Core.Config;
using EdgeTwin.IntegrationTests.Simulator;
using EdgeTwin.Modbus.Client;
using EdgeTwin.Modbus.Transport;

namespace EdgeTwin.IntegrationTests.Line;

/// <summary>
/// <c>edgetwin sim --line</c> in process: it serves a PackML PLC per station on a free TCP port, prints them, writes a
/// site config with the devices and the matching <c>line:</c> section; a Modbus client reads the PLCs over real TCP while
/// it runs, and <c>edgetwin check</c> passes the written config.
/// </summary>
public sealed class SimLineCommandTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>A writer the command writes to while the test reads it.</summary>
    private sealed class SharedWriter : StringWriter
    {
        private readonly Lock _gate = new();

        public override Encoding Encoding => Encoding.UTF8;

        public override void Write(char value)
        {
            lock (_gate)
            {
                base.Write(value);
            }
        }

        public override void Write(string? value)
        {
            lock (_gate)
            {
                base.Write(value);
            }
        }

        public override void WriteLine(string? value)
        {
            lock (_gate)
            {
                base.WriteLine(value);
            }
        }

        public override Task WriteLineAsync(string? value)
        {
            WriteLine(value);
            return Task.CompletedTask;
        }

        public override Task WriteAsync(string? value)
        {
            Write(value);
            return Task.CompletedTask;
        }

        public override string ToString()
        {
            lock (_gate)
            {
                return base.ToString();
            }
        }
    }

    [Fact]
    public async Task Sim_line_serves_plcs_a_modbus_client_reads_and_writes_a_config_that_passes_check()
    {
        var path = Path.Combine(Path.GetTempPath(), $"edgetwin-sim-line-{Guid.NewGuid():N}.yaml");
        var output = new SharedWriter();
        var error = new SharedWriter();
        try
        {
            var run = InProcessCli.Root().Parse(["sim", "--racks", "1", "--cooling-units", "1", "--machines", "1", "--line", "--seed", "4", "--profiles-dir", SimPaths.Profiles, "--config-out", path, "--interval", "1s", "--duration", "12"])
                .InvokeAsync(new InvocationConfiguration { Output = output, Error = error }, Ct);

            // The PLCs are printed before the config is written; wait for the config line.
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
            while (!output.ToString().Contains("site config written to", StringComparison.Ordinal))
            {
                Assert.False(run.IsCompleted, $"sim ended early: {error}\n{output}");
                Assert.True(DateTime.UtcNow < deadline, $"no config written: {output}");
                await Task.Delay(100, Ct);
            }

            var text = output.ToString();
            Assert.Matches(@"line line1: 4 stations, one PackML PLC each .*true bottleneck S\d", text);
            var plcs = Regex.Matches(text, @"(plc-s\d)\s+generic-packml-plc\s+tcp:127\.0\.0\.1:(\d+)");
            Assert.Equal(4, plcs.Count);

            // A Modbus client reads each PLC while the line runs: a PackML state, and part counters that count.
            async Task<long> PartsAsync()
            {
                long parts = 0;
                foreach (Match m in plcs)
                {
                    var port = int.Parse(m.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture);
                    await using var client = new ModbusClient(new ModbusTcpTransport(new ModbusTcpOptions { Host = "127.0.0.1", Port = port, RequestTimeout = TimeSpan.FromSeconds(5) }));
                    var state = await client.ReadHoldingRegistersAsync(1, 0, 1, Ct);
                    Assert.Contains(state[0], new ushort[] { 5, 6, 9, 11, 15 }); // Suspended, Execute, Aborted, Held, Resetting
                    var counters = await client.ReadHoldingRegistersAsync(1, 2, 4, Ct);
                    parts += ((long)counters[0] << 16 | counters[1]) + ((long)counters[2] << 16 | counters[3]); // good + reject, uint32 high word first
                }

                return parts;
            }

            var before = await PartsAsync();
            await Task.Delay(TimeSpan.FromSeconds(5), Ct);
            var after = await PartsAsync();
            Assert.True(after > before, $"parts made by the line: {before} then {after} five seconds later");

            // The written config holds the PLCs and the line section, and passes `edgetwin check`.
            var loaded = SiteConfigLoader.Load(path, new SiteConfigLoadOptions { SectionValidators = ConfigSectionValidators.Discover(typeof(CheckCommand).Assembly) });
            Assert.True(loaded.IsValid, string.Join(Environment.NewLine, loaded.Problems));
            Assert.Equal(4, loaded.Config!.Devices.Count(d => d.Profile == "generic-packml-plc"));
            Assert.True(loaded.Config.Sections.ContainsKey("line"));
            var checkOut = new StringWriter();
            var checkErr = new StringWriter();
            var check = await InProcessCli.Root().Parse(["check", "--config", path, "--profiles-dir", SimPaths.Profiles])
                .InvokeAsync(new InvocationConfiguration { Output = checkOut, Error = checkErr }, Ct);
            Assert.True(check == 0, $"check exit {check}: {checkErr}\n{checkOut}");

            // The line section is what `edgetwin line status` reads.
            var statusOut = new StringWriter();
            var status = await InProcessCli.Root().Parse(["line", "status", "--config", path, "--replications", "5"])
                .InvokeAsync(new InvocationConfiguration { Output = statusOut, Error = new StringWriter() }, Ct);
            Assert.Equal(0, status);
            Assert.Contains("line line1: 4 stations, 3 buffers", statusOut.ToString(), StringComparison.Ordinal);

            var exit = await run.WaitAsync(TimeSpan.FromSeconds(60), Ct);
            Assert.True(exit == 0, $"exit {exit}: {error}");
            Assert.Matches(@"line line1: S1 \w+ \d+ {2}S2 \w+ \d+ {2}S3 \w+ \d+ {2}S4 \w+ \d+; buffers B1 \d+/20", output.ToString());
        }
        finally
        {
            File.Delete(path);
        }
    }
}
