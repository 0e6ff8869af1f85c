using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace EdgeTwin.Alerting.Tests.Support;

/// <summary>Keeps every log entry as the console would print it: level, formatted message and the exception with its stack.</summary>
internal sealed class CapturingLogger : ILogger
{
    private readonly ConcurrentQueue<(LogLevel Level, string Text)> _entries = new();

    public IReadOnlyList<(LogLevel Level, string Text)> Entries => [.. _entries];

    /// <summary>Everything logged, one entry per line group.</summary>
    public string Text => string.Join("\n", _entries.Select(e => $"{e.Level}: {e.Text}"));

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        ArgumentNullException.ThrowIfNull(formatter);
        _entries.Enqueue((logLevel, formatter(state, exception) + (exception is null ? "" : "\n" + exception)));
    }
}
