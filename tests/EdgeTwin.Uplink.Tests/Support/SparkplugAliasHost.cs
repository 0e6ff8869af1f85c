using EdgeTwin.Uplink.Sparkplug.Proto;

namespace EdgeTwin.Uplink.Tests.Support;

/// <summary>
/// A Sparkplug host's alias table for one edge node: an NBIRTH starts a birth (node aliases), each DBIRTH (re)declares its
/// device's; DATA must carry aliases only, each declared in this birth for the node or that device. Across births, a
/// (device, name) keeps its alias and an alias its meaning, so a host's tags stay put through rebirths.
/// </summary>
internal sealed class SparkplugAliasHost
{
    private readonly Dictionary<ulong, (string Device, string Name)> _birth = [];

    public Dictionary<(string Device, string Name), ulong> Ever { get; } = [];

    public List<(string Topic, Payload Resolved)> Data { get; } = [];

    public int NodeBirths { get; private set; }

    public void Take(Received message)
    {
        var parts = message.Topic.Split('/');
        var device = parts.Length > 4 ? parts[4] : "";
        var payload = Payload.Parser.ParseFrom(message.Payload);
        switch (parts[2])
        {
            case "NBIRTH":
                NodeBirths++;
                _birth.Clear();
                Declare("", payload);
                break;
            case "DBIRTH":
                Forget(device);
                Declare(device, payload);
                break;
            case "DDEATH":
                Forget(device); // its next DDATA needs a DBIRTH first
                break;
            case "NDATA" or "DDATA":
                var resolved = payload.Clone();
                foreach (var m in resolved.Metrics)
                {
                    Assert.False(m.HasName, $"{message.Topic}: a data metric with its name {m.Name}");
                    Assert.True(m.HasAlias, $"{message.Topic}: a data metric without alias");
                    Assert.True(_birth.TryGetValue(m.Alias, out var owner), $"{message.Topic}: alias {m.Alias} was not declared in this birth");
                    Assert.Equal(device, owner.Device);
                    m.Name = owner.Name;
                    m.ClearAlias();
                }

                Data.Add((message.Topic, resolved));
                break;
        }
    }

    private void Forget(string device)
    {
        foreach (var stale in _birth.Where(kv => kv.Value.Device == device).Select(kv => kv.Key).ToList())
        {
            _birth.Remove(stale);
        }
    }

    private void Declare(string device, Payload birth)
    {
        foreach (var m in birth.Metrics)
        {
            Assert.True(m.HasName && m.HasAlias, $"a birth metric without name or alias: {m}");
            Assert.False(_birth.TryGetValue(m.Alias, out var other) && other != (device, m.Name),
                $"alias {m.Alias} of {device}:{m.Name} is already {other.Device}:{other.Name} in this birth");
            _birth[m.Alias] = (device, m.Name);
            if (Ever.TryGetValue((device, m.Name), out var before))
            {
                Assert.Equal(before, m.Alias);
            }

            Assert.DoesNotContain(Ever, kv => kv.Value == m.Alias && kv.Key != (device, m.Name));
            Ever[(device, m.Name)] = m.Alias;
        }
    }
}
