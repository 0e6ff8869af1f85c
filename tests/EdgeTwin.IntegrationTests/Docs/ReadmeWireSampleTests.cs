using System.Text.Json.Nodes;
using Json.Schema;

namespace EdgeTwin.IntegrationTests.Docs;

/// <summary>
/// The READMEs' uplink message samples (<c>```json</c> blocks opening <c>{"v":1,</c>: an envelope, a status, or an
/// outbox body, which is checked inside an envelope) satisfy the machine-readable contract a consumer codes against,
/// <c>src/EdgeTwin.Uplink/schema/uplink-message.v1.schema.json</c>.
/// </summary>
public sealed class ReadmeWireSampleTests
{
    [Fact]
    public void Regression_readme_event_samples_lacked_the_model_version_the_agent_sends_and_the_schema_requires()
    {
        // The Outbox README's anomaly and line-quality samples had no model/model_version (the stages send both), and
        // the Uplink README's envelope carried a body without its own "v", type and statistics.
        var root = ReadmeSnippets.RepoRoot();
        var schema = JsonSchema.FromFile(Path.Combine(root, "src", "EdgeTwin.Uplink", "schema", "uplink-message.v1.schema.json"));
        var failures = new List<string>();
        var samples = 0;
        foreach (var block in ReadmeSnippets.Files().SelectMany(ReadmeSnippets.Blocks).Where(b => b.Language == "json"))
        {
            if (!block.Text.TrimStart().StartsWith("{\"v\":1,", StringComparison.Ordinal))
            {
                continue;
            }

            samples++;
            JsonObject message;
            try
            {
                message = JsonNode.Parse(block.Text)!.AsObject();
            }
            catch (System.Text.Json.JsonException e)
            {
                failures.Add($"{block.Where}: not JSON: {e.Message}");
                continue;
            }

            if (message["type"] is not null)
            {
                // An outbox body: the uplink sends it as the envelope's body, verbatim.
                message = new JsonObject
                {
                    ["v"] = 1,
                    ["site"] = message["site"]?.GetValue<string>(),
                    ["gateway"] = message["gateway"]?.GetValue<string>(),
                    ["seq"] = 1,
                    ["kind"] = message["type"]?.GetValue<string>(),
                    ["device"] = message["device"]?.GetValue<string>(),
                    ["time"] = DateTimeOffset.FromUnixTimeMilliseconds(message["time_ms"]!.GetValue<long>()).ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", System.Globalization.CultureInfo.InvariantCulture),
                    ["historical"] = false,
                    ["body"] = message,
                };
            }

            var result = schema.Evaluate(message, new EvaluationOptions { OutputFormat = OutputFormat.List });
            if (!result.IsValid)
            {
                failures.AddRange(result.Details
                    .Where(d => d.Errors is { Count: > 0 })
                    .SelectMany(d => d.Errors!.Select(e => $"{block.Where}: {d.InstanceLocation}: {e.Key}: {e.Value}")));
            }
        }

        Assert.True(samples >= 8, $"only {samples} uplink message samples found in the READMEs");
        Assert.True(failures.Count == 0, string.Join('\n', failures));
    }
}
