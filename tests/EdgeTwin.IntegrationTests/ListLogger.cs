using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.IntegrationTests;

/// <summary>A logger that keeps every message with its level, for tests that assert what an operator would read.</summary>
internal sealed class ListLogger<T>(ConcurrentQueue<(LogLevel Level, string Message)> logs) : ILogger<T>
{
    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
        logs.Enqueue((logLevel, formatter(state, exception)));
}

/// <summary>Hands out loggers that keep every message in one list, for code that takes an <see cref="ILoggerFactory"/>.</summary>
internal sealed class ListLoggerProvider(ConcurrentQueue<(LogLevel Level, string Message)> logs) : ILoggerProvider
{
    public ILogger CreateLogger(string categoryName) => new ListLogger<ListLoggerProvider>(logs);

    public void Dispose()
    {
    }
}
