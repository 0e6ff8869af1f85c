namespace EdgeTwin.Modbus.Transport;

/// <summary>
/// Told when a request on a shared line (an RTU transport: one serial port or serial gateway, several units) queues
/// for the line and when it gets it. A poller uses it to run a device's deadline only over its own exchanges.
/// </summary>
public interface IBusWaitObserver
{
    /// <summary>The request waits for the line (another request is on it); the transport gives up after <paramref name="maxWait"/>.</summary>
    void WaitingForBus(TimeSpan maxWait);

    /// <summary>The request has the line; its own request timeout starts now.</summary>
    void OnBus();
}

/// <summary>
/// The observer of the requests made in the current async flow: set it around a device's reads, and the transport
/// underneath reports to it without every layer (plan, client, transport) carrying it as a parameter.
/// </summary>
public static class BusWait
{
    private static readonly AsyncLocal<IBusWaitObserver?> Observer = new();

    internal static IBusWaitObserver? Current => Observer.Value;

    /// <summary>Reports the requests of this flow to <paramref name="observer"/> until the scope is disposed.</summary>
    public static Scope Observe(IBusWaitObserver observer)
    {
        var previous = Observer.Value;
        Observer.Value = observer;
        return new Scope(previous, active: true);
    }

    /// <summary>Restores the previous observer; <c>default</c> is a scope that changes nothing.</summary>
    public readonly struct Scope(IBusWaitObserver? previous, bool active) : IDisposable
    {
        public void Dispose()
        {
            if (active)
            {
                Observer.Value = previous;
            }
        }
    }
}
