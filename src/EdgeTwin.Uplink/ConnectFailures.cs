using System.Net.Sockets;

namespace EdgeTwin.Uplink;

/// <summary>
/// Tells the failures an outage is expected to cause (refused or reset connections, timeouts, a broker that answers
/// with an error) from bugs. The expected ones are logged as one line with their message: a stack trace every retry of a
/// long outage buries the lines an operator is looking for. Anything else keeps its trace.
/// </summary>
public static class ConnectFailures
{
    /// <summary>True when <paramref name="exception"/> (or one it wraps) is a network or peer failure a retry may cure.</summary>
    public static bool IsExpected(Exception exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is SocketException or IOException or TimeoutException or OperationCanceledException
                or MQTTnet.Exceptions.MqttCommunicationException or Confluent.Kafka.KafkaException
                or UplinkConnectException or UplinkPeerException or UplinkTakenOverException)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// The messages of the exception and those it wraps, each once, joined by ": " and without their closing full stops
    /// (the lines they go into go on with "; retrying in …"): <c>Connection refused</c>.
    /// </summary>
    public static string Describe(Exception exception)
    {
        var parts = new List<string>(2);
        for (var e = exception; e is not null; e = e.InnerException)
        {
            var m = e.Message.Trim().TrimEnd('.');
            if (m.Length > 0 && !parts.Exists(p => p.Contains(m, StringComparison.Ordinal)))
            {
                parts.Add(m);
            }
        }

        return parts.Count == 0 ? exception.GetType().Name : string.Join(": ", parts);
    }
}
