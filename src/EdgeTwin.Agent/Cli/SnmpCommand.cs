using System.CommandLine;
using EdgeTwin.Agent.Cli.Snmp;
using EdgeTwin.Snmp;
using EdgeTwin.Snmp.Client;

namespace EdgeTwin.Agent.Cli;

/// <summary>
/// <c>edgetwin snmp get|getnext|walk|bulkwalk</c>: net-snmp style tools on our SNMP library, so outputs can be compared
/// side by side with snmpget -On. Exit codes: 0 ok, 1 SNMP/security error, 2 timeout, 3 bad arguments.
/// </summary>
internal sealed class SnmpCommand : ICliCommand
{
    public Command Create()
    {
        var snmp = new Command("snmp", "Query SNMP agents the way net-snmp's tools do (numeric OIDs, -On style output).");
        snmp.Subcommands.Add(Operation("get", "GET the given OIDs", Op.Get));
        snmp.Subcommands.Add(Operation("getnext", "GETNEXT the given OIDs", Op.GetNext));
        snmp.Subcommands.Add(Operation("walk", "walk a subtree with GETNEXT (default .1.3.6.1.2.1)", Op.Walk));
        snmp.Subcommands.Add(Operation("bulkwalk", "walk a subtree with GETBULK (GETNEXT for -v 1)", Op.BulkWalk));
        snmp.Subcommands.Add(SnmpBenchCommand.Create());
        snmp.Subcommands.Add(SnmpBenchCommand.CreateAgents());
        return snmp;
    }

    private enum Op
    {
        Get,
        GetNext,
        Walk,
        BulkWalk,
    }

    private static Command Operation(string name, string description, Op op)
    {
        var command = new Command(name, description + ". " + SnmpCliOptions.SecretsHelp);
        var options = new SnmpCliOptions();
        options.AddTo(command);
        var oids = new Argument<string[]>("OID")
        {
            Description = "numeric OIDs",
            Arity = op is Op.Get or Op.GetNext ? ArgumentArity.OneOrMore : ArgumentArity.ZeroOrMore,
        };
        command.Arguments.Add(oids);
        var maxRows = new Option<int>("--max-rows") { Description = "stop a walk after this many rows", DefaultValueFactory = _ => 100_000 };
        var reps = new Option<int>("--max-repetitions") { Description = "GETBULK max-repetitions", DefaultValueFactory = _ => 25 };
        if (op is Op.Walk or Op.BulkWalk)
        {
            command.Options.Add(maxRows);
        }
        if (op == Op.BulkWalk)
        {
            command.Options.Add(reps);
        }
        command.SetAction(async (parse, ct) =>
        {
            var output = parse.InvocationConfiguration.Output;
            var error = parse.InvocationConfiguration.Error;
            var json = parse.GetValue(options.Json);
            SnmpTarget target;
            Oid[] oidList;
            try
            {
                target = await options.TargetAsync(parse, ct).ConfigureAwait(false);
                oidList = (parse.GetValue(oids) ?? []).Select(SnmpCliOptions.ParseOid).ToArray();
                if (op is Op.Walk or Op.BulkWalk && oidList.Length > 1)
                {
                    throw new ArgumentException($"{name} takes one root OID, got {oidList.Length}");
                }
                if (op == Op.BulkWalk)
                {
                    target = target with { MaxRepetitions = Math.Clamp(parse.GetValue(reps), 1, 1000) };
                }
            }
            catch (ArgumentException ex)
            {
                return SnmpCliOutput.Fail(error, output, json, "usage", ex.Message, SnmpCliOutput.ExitUsage);
            }
            catch (SnmpCommunicationException ex)
            {
                return SnmpCliOutput.Fail(error, output, json, "communication", ex.Message, SnmpCliOutput.ExitSnmpError);
            }
            try
            {
                await using var client = new SnmpClient();
                var root = oidList.Length > 0 ? oidList[0] : Oid.Parse("1.3.6.1.2.1");
                IReadOnlyList<VarBind> result = op switch
                {
                    Op.Get => await client.GetAsync(target, oidList, ct).ConfigureAwait(false),
                    Op.GetNext => await client.GetNextAsync(target, oidList, ct).ConfigureAwait(false),
                    Op.Walk => await WalkOrExactAsync(client, target, root, parse.GetValue(maxRows), bulk: false, ct).ConfigureAwait(false),
                    _ => await WalkOrExactAsync(client, target, root, parse.GetValue(maxRows), bulk: true, ct).ConfigureAwait(false),
                };
                SnmpCliOutput.Write(output, result, json);
                if (op is Op.Walk or Op.BulkWalk && result.Count >= parse.GetValue(maxRows))
                {
                    // An endless (or looping-upward) table looks like a complete walk otherwise.
                    await error.WriteLineAsync($"edgetwin snmp: {name} stopped at --max-rows {parse.GetValue(maxRows)}; the agent may hold more rows under {root.ToNumericString()}").ConfigureAwait(false);
                }
                return SnmpCliOutput.ExitOk;
            }
            catch (SnmpTimeoutException ex)
            {
                return SnmpCliOutput.Fail(error, output, json, "timeout", ex.Message, SnmpCliOutput.ExitTimeout);
            }
            catch (SnmpUsmException ex)
            {
                return SnmpCliOutput.Fail(error, output, json, "usm:" + ex.Error, ex.Message, SnmpCliOutput.ExitSnmpError);
            }
            catch (SnmpErrorStatusException ex)
            {
                return SnmpCliOutput.Fail(error, output, json, "error-status:" + ex.Status, ex.Message, SnmpCliOutput.ExitSnmpError);
            }
            catch (SnmpException ex)
            {
                return SnmpCliOutput.Fail(error, output, json, "snmp", ex.Message, SnmpCliOutput.ExitSnmpError);
            }
        });
        return command;
    }

    /// <summary>Like snmpwalk: when the subtree is empty, GET the root itself (it may be a scalar instance).</summary>
    private static async Task<IReadOnlyList<VarBind>> WalkOrExactAsync(SnmpClient client, SnmpTarget target, Oid root, int maxRows, bool bulk, CancellationToken ct)
    {
        var rows = bulk
            ? await client.BulkWalkAsync(target, root, ct, maxRows).ConfigureAwait(false)
            : await client.WalkAsync(target, root, ct, maxRows).ConfigureAwait(false);
        if (rows.Count > 0)
        {
            return rows;
        }
        try
        {
            var exact = await client.GetAsync(target, [root], ct).ConfigureAwait(false);
            return exact.Where(v => !v.Value.IsException).ToArray();
        }
        catch (SnmpErrorStatusException)
        {
            return rows; // v1 noSuchName: nothing there
        }
    }
}
