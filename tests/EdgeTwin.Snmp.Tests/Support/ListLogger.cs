using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Snmp.Tests.Support;

/// <summary>Keeps every log line (level, text, exception) for the tests to read.</summary>
internal sealed class ListLogger(ConcurrentQueue<(LogLevel Level, string Message, Exception? Exception)> logs) : ILogger
{
    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
        logs.Enqueue((logLevel, formatter(state, exception), exception));
}
