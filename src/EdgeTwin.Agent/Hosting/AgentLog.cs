using Microsoft.Extensions.Logging;

namespace EdgeTwin.Agent.Hosting;

internal static partial class AgentLog
{
    [LoggerMessage(EventId = 2000, Level = LogLevel.Information, Message = "EdgeTwin agent starting: site {Site}, gateway {Gateway}, {Devices} devices enabled ({Disabled} disabled), config {ConfigPath}")]
    public static partial void Starting(ILogger logger, string site, string gateway, int devices, int disabled, string configPath);

    [LoggerMessage(EventId = 2010, Level = LogLevel.Warning, Message = "Config: {Warning}")]
    public static partial void ConfigWarning(ILogger logger, string warning);

    [LoggerMessage(EventId = 2017, Level = LogLevel.Warning, Message = "Open files: {Warning}")]
    public static partial void DescriptorLimitLow(ILogger logger, string warning);

    [LoggerMessage(EventId = 2001, Level = LogLevel.Information, Message = "EdgeTwin agent running: {Polled} polled and {Push} push sources, {Series} series known before the first polls, stages [{Stages}]")]
    public static partial void Started(ILogger logger, int polled, int push, int series, string stages);

    [LoggerMessage(EventId = 2009, Level = LogLevel.Information, Message = "Every device polled once in {Elapsed}: {Up} up, {Down} down; {Series} series (SNMP table rows included)")]
    public static partial void FirstRound(ILogger logger, string elapsed, int up, int down, int series);

    [LoggerMessage(EventId = 2002, Level = LogLevel.Information, Message = "EdgeTwin agent stopping: finishing polls in flight and draining the pipeline")]
    public static partial void Stopping(ILogger logger);

    [LoggerMessage(EventId = 2003, Level = LogLevel.Information, Message = "EdgeTwin agent stopped: {Samples} samples in {Uptime}")]
    public static partial void Stopped(ILogger logger, long samples, string uptime);

    [LoggerMessage(EventId = 2004, Level = LogLevel.Error, Message = "Push source {Source} failed: {Reason}; restarting in {Delay} (the same failure again is logged at Debug, with a Warning every hour while it lasts)")]
    public static partial void PushSourceFailed(ILogger logger, string source, string reason, string delay, Exception exception);

    [LoggerMessage(EventId = 2012, Level = LogLevel.Debug, Message = "Push source {Source} failed again ({Count} times since {Since:u}): {Reason}; restarting in {Delay}")]
    public static partial void PushSourceFailedAgain(ILogger logger, string source, int count, DateTimeOffset since, string reason, string delay);

    [LoggerMessage(EventId = 2013, Level = LogLevel.Warning, Message = "Push source {Source} still fails: {Count} failed starts since {Since:u}, the last: {Reason}; next try in {Delay}")]
    public static partial void PushSourceStillFailing(ILogger logger, string source, int count, DateTimeOffset since, string reason, string delay);

    [LoggerMessage(EventId = 2014, Level = LogLevel.Information, Message = "Push source {Source} runs again after {Count} failed starts since {Since:u}")]
    public static partial void PushSourceRecovered(ILogger logger, string source, int count, DateTimeOffset since);

    [LoggerMessage(EventId = 2005, Level = LogLevel.Information, Message = "Status: {Up} devices up, {Down} down, {Unknown} not yet polled; {SamplesPerSecond:F1} samples/s; queues {Queues}{SeriesCapped}")]
    public static partial void Status(ILogger logger, int up, int down, int unknown, double samplesPerSecond, string queues, string seriesCapped);

    [LoggerMessage(EventId = 2006, Level = LogLevel.Critical, Message = "The poll scheduler failed; stopping the agent")]
    public static partial void SchedulerFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 2007, Level = LogLevel.Error, Message = "Disposing the sources of {Source} failed")]
    public static partial void DisposeFailed(ILogger logger, string source, Exception exception);

    [LoggerMessage(EventId = 2011, Level = LogLevel.Warning, Message = "SIGHUP: configuration reload is not supported; restart the service to apply changes (the agent keeps running with {ConfigPath} as it was read at start)")]
    public static partial void SighupIgnored(ILogger logger, string configPath);

    [LoggerMessage(EventId = 2008, Level = LogLevel.Warning, Message = "Shutdown deadline reached: polls in flight or queued batches were cut off")]
    public static partial void ShutdownCut(ILogger logger);

    [LoggerMessage(EventId = 2015, Level = LogLevel.Information, Message = "Prometheus metrics at {Url}{Note}")]
    public static partial void MetricsListening(ILogger logger, string url, string note);

    [LoggerMessage(EventId = 2016, Level = LogLevel.Warning, Message = "Prometheus endpoint: an instrument's callback failed during a scrape ({Failure}); its metric is missing from the scrapes while it fails, the rest are served (logged once per distinct failure)")]
    public static partial void MetricsCallbackFailed(ILogger logger, string failure, Exception exception);
}
