using System.Diagnostics.Metrics;

namespace EdgeTwin.Snmp;

/// <summary>Counters of the SNMP library (meter "EdgeTwin.Snmp").</summary>
internal static class SnmpMetrics
{
    public static readonly Meter Meter = new("EdgeTwin.Snmp", "1.0");
    public static readonly Counter<long> Requests = Meter.CreateCounter<long>("snmp.client.requests", description: "requests sent (first attempts)");
    public static readonly Counter<long> Retries = Meter.CreateCounter<long>("snmp.client.retries", description: "retransmissions after a timeout");
    public static readonly Counter<long> Timeouts = Meter.CreateCounter<long>("snmp.client.timeouts", description: "requests that got no answer after every retry");
    public static readonly Counter<long> TooBig = Meter.CreateCounter<long>("snmp.client.too_big", description: "tooBig answers (the request is asked again smaller, and the size that fits is kept per agent)");
    public static readonly Counter<long> Malformed = Meter.CreateCounter<long>("snmp.malformed_packets", description: "received packets that failed to decode");
    public static readonly Counter<long> Unmatched = Meter.CreateCounter<long>("snmp.client.unmatched", description: "responses with no pending request (late or spoofed)");
    public static readonly Counter<long> UsmErrors = Meter.CreateCounter<long>("snmp.usm.errors", description: "SNMPv3 security failures by kind");
    public static readonly Counter<long> ResponderRequests = Meter.CreateCounter<long>("snmp.responder.requests", description: "requests served by the responder");
    public static readonly Counter<long> Notifications = Meter.CreateCounter<long>("snmp.notifications.received", description: "traps and informs received");
}
