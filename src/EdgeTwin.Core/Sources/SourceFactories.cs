using EdgeTwin.Core.Config;
using EdgeTwin.Core.Profiles;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Core.Sources;

/// <summary>Every registered <see cref="ISourceFactory"/>, keyed by protocol.</summary>
public sealed class SourceFactories
{
    private readonly Dictionary<DeviceProtocol, ISourceFactory> _byProtocol = [];

    public SourceFactories(IEnumerable<ISourceFactory> factories)
    {
        ArgumentNullException.ThrowIfNull(factories);
        foreach (var factory in factories)
        {
            foreach (var protocol in factory.Protocols)
            {
                if (_byProtocol.TryGetValue(protocol, out var other) && other.GetType() != factory.GetType())
                {
                    throw new InvalidOperationException(
                        $"Protocol '{protocol}' is claimed by two source factories: {other.GetType().FullName} and {factory.GetType().FullName}.");
                }

                _byProtocol[protocol] = factory;
            }
        }
    }

    public IReadOnlyCollection<DeviceProtocol> Protocols => _byProtocol.Keys;

    public bool Supports(DeviceProtocol protocol) => _byProtocol.ContainsKey(protocol);

    /// <summary>Builds the sources of <paramref name="context"/>'s device with the factory of its profile's protocol.</summary>
    public DeviceSources Create(SourceContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var protocol = context.Profile.Protocol;
        if (!_byProtocol.TryGetValue(protocol, out var factory))
        {
            var known = _byProtocol.Count == 0 ? "none" : string.Join(", ", _byProtocol.Keys.Order());
            throw new SourceCreationException(
                context.Device.Id,
                $"no source factory for protocol '{protocol.ToString().ToLowerInvariant()}' (profile '{context.Profile.Id}'); this build has: {known.ToLowerInvariant()}");
        }

        try
        {
            return factory.Create(context) ?? throw new SourceCreationException(context.Device.Id, $"{factory.GetType().Name} returned no sources");
        }
        catch (SourceCreationException)
        {
            throw;
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or FormatException or NotSupportedException or KeyNotFoundException)
        {
            throw new SourceCreationException(context.Device.Id, ex.Message, ex);
        }
    }

    /// <summary>Builds the sources of one device of <paramref name="site"/>.</summary>
    public DeviceSources Create(SiteConfig site, DeviceConfig device, ILoggerFactory loggerFactory, TimeProvider timeProvider) =>
        Create(SourceContext.For(site, device, loggerFactory, timeProvider));
}

public static class SourceFactoryServiceCollectionExtensions
{
    /// <summary>Registers a source factory (idempotent per type). Implementing assemblies wrap this in their own <c>AddXSources()</c>.</summary>
    public static IServiceCollection AddSourceFactory<T>(this IServiceCollection services)
        where T : class, ISourceFactory
    {
        ArgumentNullException.ThrowIfNull(services);
        services.TryAddEnumerable(ServiceDescriptor.Singleton<ISourceFactory, T>());
        services.TryAddSingleton<SourceFactories>();
        return services;
    }

    /// <summary>Registers a source factory instance (tests, the demo).</summary>
    public static IServiceCollection AddSourceFactory(this IServiceCollection services, ISourceFactory factory)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddSingleton(factory);
        services.TryAddSingleton<SourceFactories>();
        return services;
    }
}
