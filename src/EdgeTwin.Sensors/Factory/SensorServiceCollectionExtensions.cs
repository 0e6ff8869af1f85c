using EdgeTwin.Core.Sources;
using Microsoft.Extensions.DependencyInjection;

namespace EdgeTwin.Sensors.Factory;

public static class SensorServiceCollectionExtensions
{
    /// <summary>Registers the local sensor factory (protocols onewire, i2c, gpio, system).</summary>
    public static IServiceCollection AddSensorSources(this IServiceCollection services) =>
        services.AddSourceFactory<SensorSourceFactory>();
}
