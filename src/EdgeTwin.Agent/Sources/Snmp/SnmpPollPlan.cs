using EdgeTwin.Core.Profiles;
using EdgeTwin.Core.Sources;
using EdgeTwin.Snmp;

namespace EdgeTwin.Agent.Sources.Snmp;

/// <summary>A profile turned into OIDs once, at start: scalars read with GETs, tables walked column by column.</summary>
internal sealed record SnmpPollPlan(IReadOnlyList<(Oid Oid, ProfileMetric Metric)> Scalars, IReadOnlyList<SnmpTablePlan> Tables)
{
    public static SnmpPollPlan Build(string deviceId, DeviceProfile profile)
    {
        Oid Parse(ProfileMetric m, string what)
        {
            if (m.Oid is null || !Oid.TryParse(m.Oid, out var oid))
            {
                throw new SourceCreationException(deviceId, $"profile '{profile.Id}' {what} '{m.Name}': '{m.Oid}' is not a numeric OID");
            }
            return oid;
        }
        var scalars = profile.Metrics.Select(m => (Parse(m, "metric"), m)).ToArray();
        var tables = profile.Tables.Select(t => new SnmpTablePlan(
            t,
            t.Columns.Select(c => (Parse(c, $"table '{t.Name}' column"), c)).ToArray(),
            t.LabelOid is null ? null : Oid.TryParse(t.LabelOid, out var l) ? l : throw new SourceCreationException(deviceId, $"table '{t.Name}': label_oid '{t.LabelOid}' is not a numeric OID"),
            t.Filter is null ? null : Oid.TryParse(t.Filter.Oid, out var f) ? f : throw new SourceCreationException(deviceId, $"table '{t.Name}': filter oid '{t.Filter.Oid}' is not a numeric OID"))).ToArray();
        return new SnmpPollPlan(scalars, tables);
    }
}

internal sealed record SnmpTablePlan(ProfileTable Table, IReadOnlyList<(Oid Oid, ProfileMetric Metric)> Columns, Oid? Label, Oid? Filter);
