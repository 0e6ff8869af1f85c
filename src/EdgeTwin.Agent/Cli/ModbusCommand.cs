using System.CommandLine;
using System.Text.Json;
using EdgeTwin.Agent.Cli.Modbus;
using EdgeTwin.Modbus.Data;
using EdgeTwin.Modbus.Protocol;

namespace EdgeTwin.Agent.Cli;

/// <summary>
/// <c>edgetwin modbus read</c>: read registers or bits from a device and print them decoded.
/// <c>edgetwin modbus probe</c>: find the type, word order and address base that make a register read sensibly.
/// Exit codes: 0 ok, 1 usage, 2 communication/timeout, 3 Modbus exception response, 4 protocol error, 5 probe found nothing.
/// </summary>
internal sealed class ModbusCommand : ICliCommand
{
    public Command Create()
    {
        var modbus = new Command("modbus", "Talk to Modbus TCP / RTU devices: read values, probe a register's encoding");
        modbus.Subcommands.Add(CreateRead());
        modbus.Subcommands.Add(CreateProbe());
        return modbus;
    }

    private static Command CreateRead()
    {
        var connection = new ModbusCliConnection();
        var address = new Argument<string>("address") { Description = "First address (decimal or 0x hex)" };
        var count = new Option<int>("--count") { Description = "Number of values to read (more than one request allows are read in several)", DefaultValueFactory = _ => 1 };
        var type = new Option<string>("--type") { Description = "uint16|int16|uint32|int32|uint64|int64|float32|float64|string|bit", DefaultValueFactory = _ => "uint16" };
        var order = new Option<string>("--order") { Description = "Byte/word order: ABCD|CDAB|BADC|DCBA", DefaultValueFactory = _ => "ABCD" };
        var oneBased = new Option<bool>("--one-based") { Description = "ADDRESS counts from 1, as in most vendor manuals" };
        var scale = new Option<double>("--scale") { Description = "Multiply raw values by this", DefaultValueFactory = _ => 1 };
        var command = new Command("read", "Read and decode values: one line per value, ADDRESS = VALUE");
        connection.AddTo(command);
        command.Arguments.Add(address);
        foreach (var o in new Option[] { count, type, order, oneBased, scale })
        {
            command.Options.Add(o);
        }

        command.SetAction(async (result, ct) =>
        {
            bool json = result.GetValue(connection.Json);
            var table = connection.Table(result, out var tableError);
            if (tableError is not null)
            {
                return Fail(ModbusExitCodes.Usage, tableError);
            }

            if (!ModbusCliConnection.TryParseAddress(result.GetValue(address)!, out int first))
            {
                return Fail(ModbusExitCodes.Usage, $"address must be a number, got '{result.GetValue(address)}'");
            }

            if (!ModbusDataTypes.TryParse(result.GetValue(type), out var dataType))
            {
                return Fail(ModbusExitCodes.Usage, $"unknown --type '{result.GetValue(type)}'");
            }

            if (!ModbusDataTypes.TryParseOrder(result.GetValue(order), out var wordOrder))
            {
                return Fail(ModbusExitCodes.Usage, $"--order must be ABCD, CDAB, BADC or DCBA, got '{result.GetValue(order)}'");
            }

            int n = result.GetValue(count);
            bool bits = table!.Value.IsBitTable();
            var addressBase = result.GetValue(oneBased) ? ModbusAddressBase.One : ModbusAddressBase.Zero;
            var point = new ModbusPoint(table.Value, first, bits ? ModbusDataType.Bit : dataType)
            {
                Order = wordOrder,
                AddressBase = addressBase,
                Scale = result.GetValue(scale),
                StringRegisters = dataType == ModbusDataType.Ascii ? n : 0,
            };
            if (n > 0x10000)
            {
                return Fail(ModbusExitCodes.Usage, $"--count {n} runs past address 65535");
            }

            int values = dataType == ModbusDataType.Ascii && !bits ? 1 : n;
            int perValue = point.Length;
            int total = values * perValue;
            int max = table.Value.MaxReadCount();
            // More than one read allows is read in several (a parameter group of 200 registers is one command), each
            // a whole number of values; a string is one value and must fit one read.
            if (n < 1 || (total > max && (perValue > max || (dataType == ModbusDataType.Ascii && !bits))))
            {
                return Fail(ModbusExitCodes.Usage, $"--count {n} of {point.Type.Name()} needs {total} items; one read allows 1..{max}");
            }

            var problems = (point with { StringRegisters = Math.Max(point.StringRegisters, 1) }).Validate();
            if (problems.Count > 0 || point.ProtocolAddress + total > 0x10000)
            {
                return Fail(ModbusExitCodes.Usage, problems.Count > 0 ? problems[0] : $"address {first} + {total} runs past 65535");
            }

            await using var client = connection.Connect(result, out byte unit, out var connectError);
            if (client is null)
            {
                return Fail(ModbusExitCodes.Usage, connectError!);
            }

            var raw = new ushort[total];
            int chunk = max / perValue * perValue;
            for (int done = 0; done < total; done += chunk)
            {
                int take = Math.Min(chunk, total - done);
                try
                {
                    (await client.ReadAsync(unit, table.Value, (ushort)(point.ProtocolAddress + done), (ushort)take, ct)).CopyTo(raw, done);
                }
                catch (Exception ex) when (ex is ModbusDeviceException or ModbusCommunicationException or ModbusProtocolException)
                {
                    var (code, message) = connection.Describe(ex);
                    string part = take == total ? "" : $"read {(done / chunk) + 1} of {(total + chunk - 1) / chunk} ({take} at wire address {point.ProtocolAddress + done}): ";
                    return Fail(code, $"{client.Endpoint} unit {unit}: {part}{message}");
                }
            }

            var rows = new List<(int Address, object Value)>();
            for (int i = 0; i < values; i++)
            {
                var slice = raw.AsSpan(i * perValue, perValue);
                object value = bits ? (slice[0] != 0 ? 1 : 0)
                    : dataType == ModbusDataType.Ascii ? ModbusValueCodec.DecodeString(slice, wordOrder)
                    : point.Decode(slice);
                rows.Add((first + (i * perValue), value));
            }

            if (json)
            {
                var doc = new
                {
                    endpoint = client.Endpoint,
                    unit,
                    table = table.Value.ToString(),
                    type = point.Type.Name(),
                    order = wordOrder.ToString(),
                    values = rows.Select(r => new { address = r.Address, value = r.Value }),
                };
                Console.Out.WriteLine(JsonSerializer.Serialize(doc));
            }
            else
            {
                foreach (var (a, v) in rows)
                {
                    Console.Out.WriteLine($"{a} = {(v is double d ? ModbusCliConnection.Format(d) : v)}");
                }
            }

            return ModbusExitCodes.Ok;
        });
        return command;
    }

    private static Command CreateProbe()
    {
        var connection = new ModbusCliConnection();
        var address = new Argument<string>("address") { Description = "The register as your manual gives it" };
        var expect = new Option<string>("--expect") { Description = "Expected range MIN..MAX of the reading, e.g. 200..250 for a mains voltage", Required = true };
        var scales = new Option<string>("--scales") { Description = "Comma-separated scales to try as well, e.g. 1,0.1,0.01", DefaultValueFactory = _ => "1" };
        var command = new Command("probe", "Try types, byte/word orders and 0/1-based addressing; list the combinations whose reading falls in --expect");
        connection.AddTo(command);
        command.Arguments.Add(address);
        command.Options.Add(expect);
        command.Options.Add(scales);
        command.SetAction(async (result, ct) =>
        {
            bool json = result.GetValue(connection.Json);
            var table = connection.Table(result, out var tableError);
            if (tableError is not null || table!.Value.IsBitTable())
            {
                return Fail(ModbusExitCodes.Usage, tableError ?? "probe works on registers: use --holding or --input");
            }

            if (!ModbusCliConnection.TryParseAddress(result.GetValue(address)!, out int given) || given is < 0 or > 65535)
            {
                return Fail(ModbusExitCodes.Usage, $"address must be 0..65535, got '{result.GetValue(address)}'");
            }

            if (!ModbusProbe.TryParseRange(result.GetValue(expect), out double min, out double max))
            {
                return Fail(ModbusExitCodes.Usage, $"--expect must be MIN..MAX, got '{result.GetValue(expect)}'");
            }

            if (!ModbusProbe.TryParseScales(result.GetValue(scales), out var scaleList))
            {
                return Fail(ModbusExitCodes.Usage, $"--scales must be comma-separated non-zero numbers, got '{result.GetValue(scales)}'");
            }

            await using var client = connection.Connect(result, out byte unit, out var connectError);
            if (client is null)
            {
                return Fail(ModbusExitCodes.Usage, connectError!);
            }

            ModbusProbe.Outcome outcome;
            try
            {
                outcome = await ModbusProbe.RunAsync(client, unit, table.Value, given, min, max, scaleList, ct);
            }
            catch (Exception ex) when (ex is ModbusDeviceException or ModbusCommunicationException or ModbusProtocolException)
            {
                var (code, message) = connection.Describe(ex);
                return Fail(code, $"{client.Endpoint} unit {unit}: {message}");
            }

            if (json)
            {
                Console.Out.WriteLine(JsonSerializer.Serialize(new
                {
                    endpoint = client.Endpoint,
                    unit,
                    table = table.Value.ToString(),
                    address = given,
                    expect = new { min, max },
                    matches = outcome.Matches.Select(m => new
                    {
                        type = m.Type.Name(),
                        order = m.Order.ToString(),
                        addressing = m.Base == ModbusAddressBase.One ? "1-based" : "0-based",
                        protocolAddress = m.ProtocolAddress,
                        scale = m.Scale,
                        value = m.Value,
                    }),
                    registers = outcome.Registers.ToDictionary(kv => kv.Key.ToString(System.Globalization.CultureInfo.InvariantCulture), kv => kv.Value),
                }));
            }
            else
            {
                foreach (var m in outcome.Matches)
                {
                    string scaled = m.Scale == 1 ? "" : $" scale {ModbusCliConnection.Format(m.Scale)}";
                    Console.Out.WriteLine($"{m.Type.Name(),-8} {m.Order} {(m.Base == ModbusAddressBase.One ? "1-based" : "0-based")} (wire address {m.ProtocolAddress}){scaled} = {ModbusCliConnection.Format(m.Value)}");
                }
            }

            if (outcome.Matches.Count == 0)
            {
                string regs = string.Join(' ', outcome.Registers.Select(kv => $"{kv.Key}:{kv.Value:X4}"));
                return Fail(ModbusExitCodes.NoMatch, $"no type/order/addressing reads within {ModbusCliConnection.Format(min)}..{ModbusCliConnection.Format(max)}; registers read: {(regs.Length > 0 ? regs : "none")}");
            }

            return ModbusExitCodes.Ok;
        });
        return command;
    }

    private static int Fail(int code, string message)
    {
        Console.Error.WriteLine($"edgetwin modbus: {message}");
        return code;
    }
}
