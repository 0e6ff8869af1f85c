using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

// The one list logger of the test projects (linked into each; they kept six copies that had drifted apart). Each csproj
// has a global using of EdgeTwin.Tests.Shared.
namespace EdgeTwin.Tests.Shared;

/// <summary>
/// Keeps every log line (level, formatted text, exception) for the tests to read: in its own <see cref="Lines"/> and,
/// when given one, in a queue the test owns (with or without the exception) and shares with other loggers.
/// </summary>
internal class ListLogger : ILogger
{
    private readonly ConcurrentQueue<(LogLevel Level, string Message)> _lines = new();
    private readonly ConcurrentQueue<(LogLevel Level, string Message)>? _messages;
    private readonly ConcurrentQueue<(LogLevel Level, string Message, Exception? Exception)>? _withExceptions;

    public ListLogger()
    {
    }

    public ListLogger(ConcurrentQueue<(LogLevel Level, string Message)> logs) => _messages = logs;

    public ListLogger(ConcurrentQueue<(LogLevel Level, string Message, Exception? Exception)> logs) => _withExceptions = logs;

    /// <summary>Every line this logger was given, oldest first.</summary>
    public IReadOnlyList<(LogLevel Level, string Message)> Lines => [.. _lines];

    /// <summary>The texts of the lines at <paramref name="level"/>, oldest first.</summary>
    public IEnumerable<string> At(LogLevel level) => Lines.Where(l => l.Level == level).Select(l => l.Message);

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        var message = formatter(state, exception);
        _lines.Enqueue((logLevel, message));
        _messages?.Enqueue((logLevel, message));
        _withExceptions?.Enqueue((logLevel, message, exception));
    }
}

/// <summary>The same, as the typed logger a class takes (<c>ILogger&lt;PollScheduler&gt;</c>).</summary>
internal sealed class ListLogger<T> : ListLogger, ILogger<T>
{
    public ListLogger()
    {
    }

    public ListLogger(ConcurrentQueue<(LogLevel Level, string Message)> logs)
        : base(logs)
    {
    }

    public ListLogger(ConcurrentQueue<(LogLevel Level, string Message, Exception? Exception)> logs)
        : base(logs)
    {
    }
}

/// <summary>Hands out loggers that keep every message in one queue, for code that takes an <see cref="ILoggerFactory"/>.</summary>
internal sealed class ListLoggerProvider(ConcurrentQueue<(LogLevel Level, string Message)> logs) : ILoggerProvider
{
    public ILogger CreateLogger(string categoryName) => new ListLogger(logs);

    public void Dispose()
    {
    }
}
