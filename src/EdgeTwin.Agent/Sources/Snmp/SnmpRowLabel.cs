using System.Text;
using EdgeTwin.Core.Profiles;
using EdgeTwin.Snmp;

namespace EdgeTwin.Agent.Sources.Snmp;

/// <summary>
/// The text a table row's label column gives: an OctetString as UTF-8; an OBJECT IDENTIFIER by the profile's
/// <c>label_names</c>, else as the OID itself (-On style), so rows stay apart and the value can be named in the profile.
/// LIEBERT-GP-ENVIRONMENTAL-MIB names each temperature sensor by an OID (lgpEnvSupplyAirTemperature): read as text
/// only, every row of a real unit had no label, and neither the thermal twin nor the set-point control found its supply air.
/// </summary>
internal static class SnmpRowLabel
{
    /// <summary>The label, or "" for a value of another type (a number, null, noSuchInstance).</summary>
    public static string Of(ProfileTable table, SnmpValue value)
    {
        switch (value.Type)
        {
            case SnmpType.OctetString:
                return Encoding.UTF8.GetString(value.AsBytes().Span).TrimEnd('\0');
            case SnmpType.ObjectIdentifier:
                var oid = value.AsOid().ToNumericString();
                return table.LabelNames.TryGetValue(oid, out var name) ? name : oid;
            default:
                return "";
        }
    }
}
