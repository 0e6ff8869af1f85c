using System.Globalization;
using EdgeTwin.Core.Config;
using EdgeTwin.Modbus.Transport;

namespace EdgeTwin.Agent.Hosting;

/// <summary>
/// The file descriptors a site config needs, against the process's soft RLIMIT_NOFILE, for <c>edgetwin check</c> and the
/// start. Measured on /proc/PID/fd of a running agent (src/EdgeTwin.Agent/deploy/README.md, "Open files"): one socket per
/// Modbus TCP or RTU-over-TCP endpoint (host:port, shared by its units), one serial port per RTU line, one UDP socket for
/// every SNMP device together, and about 185 the agent holds with no device (mapped assemblies, outbox, alert store,
/// control socket, epoll, pipes).
/// </summary>
internal static class DescriptorBudget
{
    /// <summary>
    /// What the agent holds with no device: 183 measured framework-dependent (154 of them mapped assemblies; a single-file
    /// build maps fewer), rounded up for an uplink connection, the Prometheus listener and the trap listener.
    /// </summary>
    public const int Fixed = 200;

    /// <summary>The descriptors <paramref name="config"/>'s enabled devices hold at once with the fixed part and the reserve, and how they add up.</summary>
    public static (int Total, string Breakdown) Estimate(SiteConfig config)
    {
        var tcp = new HashSet<(string, int)>();
        var rtuTcp = new HashSet<(string, int)>();
        var rtu = new HashSet<string>(StringComparer.Ordinal);
        var snmp = 0;
        var other = 0;
        foreach (var device in config.Devices)
        {
            if (!device.Enabled)
            {
                continue;
            }

            var a = device.Address;
            switch (a.Scheme)
            {
                case AddressScheme.Tcp:
                    tcp.Add((a.Host ?? "", a.Port ?? 0));
                    break;
                case AddressScheme.RtuTcp:
                    rtuTcp.Add((a.Host ?? "", a.Port ?? 0));
                    break;
                case AddressScheme.Rtu:
                    rtu.Add(a.Path ?? "");
                    break;
                case AddressScheme.Udp or AddressScheme.Udp6:
                    snmp = 1; // one socket for every SNMP device
                    break;
                default:
                    other++; // a sensor file or GPIO line, open while it is read
                    break;
            }
        }

        // An RTU line holds the port and its lock file's descriptor.
        var devices = tcp.Count + rtuTcp.Count + (2 * rtu.Count) + snmp + other;
        var breakdown = string.Create(CultureInfo.InvariantCulture,
            $"{tcp.Count} Modbus TCP connections, {rtuTcp.Count} RTU-over-TCP, {rtu.Count} serial lines, {snmp} SNMP socket, {other} sensors, {Fixed} fixed and {ProcessDescriptors.Reserve} kept in reserve");
        return (devices + Fixed + ProcessDescriptors.Reserve, breakdown);
    }

    /// <summary>A warning when <paramref name="softLimit"/> is below what <paramref name="config"/> needs, else null.</summary>
    public static string? Warning(SiteConfig config, long? softLimit)
    {
        var (total, breakdown) = Estimate(config);
        if (softLimit is not { } limit || limit >= total)
        {
            return null;
        }

        return string.Create(CultureInfo.InvariantCulture,
            $"the devices need about {total} open files ({breakdown}), but this process may open only {limit} (soft RLIMIT_NOFILE): devices past it cannot connect. Set LimitNOFILE={Suggested(total)} (at least {total}) in the edgetwin unit (Ansible: edgetwin_limit_nofile)");
    }

    /// <summary>The figure to set: twice the need, rounded up to a power of two, so the site can grow.</summary>
    public static long Suggested(int total) => (long)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)Math.Max(1024, 2 * total));
}
