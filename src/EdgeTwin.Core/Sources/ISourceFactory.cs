using EdgeTwin.Core.Config;
using EdgeTwin.Core.Profiles;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Core.Sources;

/// <summary>Everything a factory needs to build the sources of one device.</summary>
/// <param name="Device">The device's entry in the site config (id, address, unit id, serial, interval, timeout).</param>
/// <param name="Profile">Its resolved profile (protocol, metrics, tables, Modbus or sensor settings).</param>
/// <param name="Credentials">The credentials the device names, or null when it names none.</param>
/// <param name="LoggerFactory">For the source's own logger (category = the source type).</param>
/// <param name="TimeProvider">The agent's clock (fake in tests).</param>
public sealed record SourceContext(
    DeviceConfig Device,
    DeviceProfile Profile,
    CredentialsConfig? Credentials,
    ILoggerFactory LoggerFactory,
    TimeProvider TimeProvider)
{
    /// <summary>The site the device belongs to, when the source needs more than its own entry (null in unit tests).</summary>
    public SiteConfig? Site { get; init; }

    /// <summary>
    /// The agent's writable state directory (the outbox's), where a source may keep what must outlive a restart (the
    /// SNMP source's remembered table rows); null keeps nothing (<c>edgetwin poll</c>, an agent without an outbox, tests).
    /// </summary>
    public string? StateDirectory { get; init; }

    /// <summary>Builds the context of <paramref name="device"/> from a loaded site config.</summary>
    public static SourceContext For(SiteConfig site, DeviceConfig device, ILoggerFactory loggerFactory, TimeProvider timeProvider)
    {
        ArgumentNullException.ThrowIfNull(site);
        ArgumentNullException.ThrowIfNull(device);
        CredentialsConfig? credentials = null;
        if (device.Credentials is { } name && !site.Credentials.TryGetValue(name, out credentials))
        {
            throw new SourceCreationException(device.Id, $"credentials '{name}' are not defined under credentials:");
        }

        return new SourceContext(device, site.ProfileOf(device), credentials, loggerFactory, timeProvider) { Site = site };
    }
}

/// <summary>
/// What a factory built for one device: a polled source (read on the scheduler's grid), a push source (traps, GPIO
/// edges, pulse counters), or both (a digital input that is also sampled).
/// </summary>
public sealed record DeviceSources(IPolledSource? Polled, IPushSource? Push)
{
    public static DeviceSources Of(IPolledSource polled) => new(polled ?? throw new ArgumentNullException(nameof(polled)), null);

    public static DeviceSources Of(IPushSource push) => new(null, push ?? throw new ArgumentNullException(nameof(push)));

    public async ValueTask DisposeAsync()
    {
        if (Polled is not null)
        {
            await Polled.DisposeAsync().ConfigureAwait(false);
        }

        if (Push is not null)
        {
            await Push.DisposeAsync().ConfigureAwait(false);
        }
    }
}

/// <summary>
/// Builds the sources of devices whose profile uses one of <see cref="Protocols"/>. One implementation per protocol
/// family (SNMP, Modbus, local sensors), found through DI: register with
/// <c>services.AddSourceFactory&lt;T&gt;()</c>, or, inside the agent assembly, just add the class (it is discovered).
/// <para>
/// <see cref="Create"/> validates and allocates but does no I/O: connections open lazily on the first poll, so an
/// unreachable device at start is a down device, not a failed start. Configuration that cannot work (wrong address
/// scheme, missing credentials, unsupported metric type) throws <see cref="SourceCreationException"/> naming the
/// device, which the agent reports like a config problem.
/// </para>
/// </summary>
public interface ISourceFactory
{
    /// <summary>The profile protocols this factory serves. Two factories may not claim the same protocol.</summary>
    IReadOnlyCollection<DeviceProtocol> Protocols { get; }

    DeviceSources Create(SourceContext context);
}

/// <summary>A device's sources could not be built from its config (not an I/O failure).</summary>
public sealed class SourceCreationException : Exception
{
    public SourceCreationException(string deviceId, string message, Exception? inner = null)
        : base($"device '{deviceId}': {message}", inner)
    {
        DeviceId = deviceId;
    }

    public string DeviceId { get; }
}
