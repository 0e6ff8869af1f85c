using EdgeTwin.Core.Config;
using EdgeTwin.Core.Events;
using EdgeTwin.Core.Profiles;
using EdgeTwin.Core.Samples;
using EdgeTwin.Core.Sources;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeTwin.Core.Tests.Sources;

public sealed class SourceFactoriesTests
{
    private sealed class NullPolled(string id) : IPolledSource
    {
        public string DeviceId { get; } = id;

        public void RegisterSeries(SeriesRegistry registry)
        {
        }

        public ValueTask PollAsync(ISampleSink sink, long acquiredAtUnixMs, CancellationToken cancellationToken) => ValueTask.CompletedTask;

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    private sealed class NullPush(string name) : IPushSource
    {
        public string Name { get; } = name;

        public void RegisterSeries(SeriesRegistry registry)
        {
        }

        public Task RunAsync(ISampleSink samples, IEventSink events, CancellationToken cancellationToken) => Task.Delay(Timeout.Infinite, cancellationToken);

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    private sealed class SnmpLike : ISourceFactory
    {
        public IReadOnlyCollection<DeviceProtocol> Protocols => [DeviceProtocol.Snmp];

        public DeviceSources Create(SourceContext context) =>
            context.Credentials is null
                ? throw new ArgumentException("SNMP needs credentials")
                : DeviceSources.Of(new NullPolled(context.Device.Id));
    }

    private sealed class GpioLike : ISourceFactory
    {
        public IReadOnlyCollection<DeviceProtocol> Protocols => [DeviceProtocol.Gpio, DeviceProtocol.I2c];

        public DeviceSources Create(SourceContext context) => DeviceSources.Of(new NullPush(context.Device.Id));
    }

    private sealed class OtherSnmp : ISourceFactory
    {
        public IReadOnlyCollection<DeviceProtocol> Protocols => [DeviceProtocol.Snmp];

        public DeviceSources Create(SourceContext context) => throw new NotSupportedException();
    }

    private static readonly DeviceProfile Pdu = new("apc-rpdu2", "APC", "Rack PDU", DeviceProtocol.Snmp, "PowerNet-MIB", [], []);
    private static readonly DeviceProfile Leak = new("generic-leak-detector", "Generic", "Leak", DeviceProtocol.Gpio, "-", [], []);
    private static readonly DeviceProfile Meter = new("eastron-sdm630", "Eastron", "SDM630", DeviceProtocol.Modbus, "-", [], []);

    private static SiteConfig Site(params DeviceConfig[] devices) =>
        new(new SiteTopology("dc1", "gw1", [], [], new PowerChainConfig([], []), []), devices,
            new Dictionary<string, CredentialsConfig> { ["public"] = CredentialsConfig.V2c("public", "public") }, OutboxSettings.Default)
        {
            Profiles = new Dictionary<string, DeviceProfile> { [Pdu.Id] = Pdu, [Leak.Id] = Leak, [Meter.Id] = Meter },
        };

    private static SourceFactories Build(params ISourceFactory[] factories) => new(factories);

    [Fact]
    public void The_factory_is_picked_by_the_profiles_protocol()
    {
        var factories = Build(new SnmpLike(), new GpioLike(), new SnmpLike());
        var pdu = new DeviceConfig("pdu-1", Pdu.Id, DeviceAddress.Udp("127.0.0.1")) { Credentials = "public" };
        var leak = new DeviceConfig("leak-1", Leak.Id, DeviceAddress.Gpio(17));
        var site = Site(pdu, leak);

        var a = factories.Create(site, pdu, NullLoggerFactory.Instance, TimeProvider.System);
        var b = factories.Create(site, leak, NullLoggerFactory.Instance, TimeProvider.System);

        Assert.Equal("pdu-1", a.Polled!.DeviceId);
        Assert.Null(a.Push);
        Assert.Equal("leak-1", b.Push!.Name);
        Assert.Equal([DeviceProtocol.Snmp, DeviceProtocol.I2c, DeviceProtocol.Gpio], factories.Protocols.Order());
    }

    [Fact]
    public void A_protocol_without_a_factory_names_the_device_the_protocol_and_what_is_available()
    {
        var factories = Build(new SnmpLike());
        var meter = new DeviceConfig("meter-1", Meter.Id, DeviceAddress.Tcp("127.0.0.1"));

        var ex = Assert.Throws<SourceCreationException>(() => factories.Create(Site(meter), meter, NullLoggerFactory.Instance, TimeProvider.System));

        Assert.Equal("device 'meter-1': no source factory for protocol 'modbus' (profile 'eastron-sdm630'); this build has: snmp", ex.Message);
        Assert.Equal("meter-1", ex.DeviceId);
    }

    [Fact]
    public void A_factory_refusing_the_config_becomes_a_creation_error_naming_the_device()
    {
        var factories = Build(new SnmpLike());
        var pdu = new DeviceConfig("pdu-1", Pdu.Id, DeviceAddress.Udp("127.0.0.1"));

        var ex = Assert.Throws<SourceCreationException>(() => factories.Create(Site(pdu), pdu, NullLoggerFactory.Instance, TimeProvider.System));

        Assert.Equal("device 'pdu-1': SNMP needs credentials", ex.Message);
    }

    [Fact]
    public void Undefined_credentials_are_reported_before_any_factory_runs()
    {
        var factories = Build(new SnmpLike());
        var pdu = new DeviceConfig("pdu-1", Pdu.Id, DeviceAddress.Udp("127.0.0.1")) { Credentials = "ops" };

        var ex = Assert.Throws<SourceCreationException>(() => factories.Create(Site(pdu), pdu, NullLoggerFactory.Instance, TimeProvider.System));

        Assert.Equal("device 'pdu-1': credentials 'ops' are not defined under credentials:", ex.Message);
    }

    [Fact]
    public void Two_factories_claiming_one_protocol_are_refused()
    {
        var ex = Assert.Throws<InvalidOperationException>(() => Build(new SnmpLike(), new OtherSnmp()));
        Assert.Contains("Protocol 'Snmp' is claimed by two source factories", ex.Message);
    }
}
