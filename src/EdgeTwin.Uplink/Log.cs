using Microsoft.Extensions.Logging;

namespace EdgeTwin.Uplink;

internal static partial class Log
{
    // Sequences are not contiguous (condensed and dropped entries keep theirs, a new outbox file jumps), so the span
    // Head − Position is not a count: the outbox's own count of held entries is.
    [LoggerMessage(65, LogLevel.Error, "Uplink {Uplink}: the Kafka uplink cannot run: {Reason}. Nothing is sent to Kafka; the outbox keeps the entries and the other stages run on; checking again every {Every} s (attempt {Attempt})")]
    public static partial void KafkaLibraryMissing(ILogger logger, string uplink, string reason, int attempt, double every);

    [LoggerMessage(66, LogLevel.Information, "Uplink {Uplink}: {Library} loaded (attempt {Attempt})")]
    public static partial void KafkaLibraryLoaded(ILogger logger, string uplink, string library, int attempt);

    [LoggerMessage(1, LogLevel.Information, "Uplink {Uplink} connected to {Peer}; replaying its backlog after sequence {Position} up to {Head} ({Held} entries held in the outbox)")]
    public static partial void Connected(ILogger logger, string uplink, string peer, long position, long head, long held);

    [LoggerMessage(2, LogLevel.Warning, "Uplink {Uplink} could not connect to {Peer} (attempt {Attempt}); retrying in {Delay}")]
    public static partial void ConnectFailed(ILogger logger, Exception exception, string uplink, string peer, int attempt, string delay);

    [LoggerMessage(3, LogLevel.Warning, "Uplink {Uplink} lost its session with {Peer} at position {Position}; reconnecting in {Delay}")]
    public static partial void SessionFailed(ILogger logger, Exception exception, string uplink, string peer, long position, string delay);

    // Expected outage failures: one line with the reason; the exception itself only at Debug (event 16).
    [LoggerMessage(14, LogLevel.Warning, "Uplink {Uplink} could not connect to {Peer} (attempt {Attempt}): {Reason}; retrying in {Delay}")]
    public static partial void ConnectRefused(ILogger logger, string uplink, string peer, int attempt, string reason, string delay);

    [LoggerMessage(18, LogLevel.Warning, "Uplink {Uplink} still cannot connect to {Peer} (attempt {Attempt}, down {Down}, {Unlogged} failed attempts not logged since the last line): {Reason}; retrying in {Delay}")]
    public static partial void StillCannotConnect(ILogger logger, Exception? exception, string uplink, string peer, int attempt, string down, int unlogged, string reason, string delay);

    [LoggerMessage(19, LogLevel.Information, "Uplink {Uplink}: further failed connects to {Peer} are logged once every {Every}, or when the reason changes")]
    public static partial void ConnectFailuresQuiet(ILogger logger, string uplink, string peer, string every);

    [LoggerMessage(20, LogLevel.Information, "Uplink {Uplink} reached {Peer} again after {Failures} failed connects over {Down}")]
    public static partial void ReachedAgain(ILogger logger, string uplink, string peer, int failures, string down);

    [LoggerMessage(51, LogLevel.Warning, "Uplink {Uplink}: {Peer} closed the connection {Sessions} times in a row while our sends awaited their answers, nothing acknowledged (position {Position}, {Awaiting} awaiting, up to entry {Through}); sending one entry at a time up to entry {Through} to find the one it closes on (an MQTT 3.1.1 broker refuses a publish over its size limit or forbidden by its ACL so)")]
    public static partial void Isolating(ILogger logger, string uplink, string peer, int sessions, long position, int awaiting, long through);

    [LoggerMessage(52, LogLevel.Warning, "Uplink {Uplink}: {Peer} closed the connection while outbox entry {Sequence}, sent alone, awaited its answer ({Closes} of {Limit} before it is refused for good)")]
    public static partial void ClosedOnEntryAlone(ILogger logger, string uplink, string peer, long sequence, int closes, int limit);

    [LoggerMessage(53, LogLevel.Information, "Uplink {Uplink}: past entry {Through}, sending to {Peer} with its full window again")]
    public static partial void IsolationEnded(ILogger logger, string uplink, string peer, long through);

    [LoggerMessage(54, LogLevel.Error, "Uplink {Uplink}: {Peer} closes the connection on every entry we send: {Refused} were refused for it in a row with nothing delivered between, and entry {Sequence} too; not refusing more — check the broker's ACL and size limit for this client (an MQTT 3.1.1 broker closes the connection on a publish it forbids); the entries stay in the outbox, reconnecting with backoff ({Times} times so far)")]
    public static partial void ClosesOnEverything(ILogger logger, string uplink, string peer, int refused, long sequence, int times);

    [LoggerMessage(50, LogLevel.Error, "Uplink {Uplink}: {Reason} (taken over {Count} times since start); reconnecting in {Delay}")]
    public static partial void SessionTakenOver(ILogger logger, string uplink, string reason, long count, string delay);

    [LoggerMessage(15, LogLevel.Warning, "Uplink {Uplink} lost its session with {Peer} at position {Position}: {Reason}; reconnecting in {Delay}")]
    public static partial void SessionLost(ILogger logger, string uplink, string peer, long position, string reason, string delay);

    [LoggerMessage(16, LogLevel.Debug, "Uplink {Uplink}: the failure with {Peer} in full")]
    public static partial void FailureDetail(ILogger logger, Exception exception, string uplink, string peer);

    [LoggerMessage(4, LogLevel.Error, "Uplink {Uplink}: {Peer} rejected outbox entry {Sequence} ({Kind}, device {Device}) for good: {Reason}; passing over it")]
    public static partial void Rejected(ILogger logger, string uplink, string peer, long sequence, string kind, string device, string reason);

    [LoggerMessage(47, LogLevel.Error, "Uplink {Uplink}: {Peer} rejected outbox entry {Sequence}, a data_gap event, for good: {Reason}; passing over it without another data_gap about it (the peer would likely refuse that too)")]
    public static partial void RejectedDataGap(ILogger logger, string uplink, string peer, long sequence, string reason);

    [LoggerMessage(48, LogLevel.Information, "Uplink {Uplink}: data_gap event {Sequence} (rejected_by_peer) names the refused entries {Sequences}")]
    public static partial void RefusalGapWritten(ILogger logger, string uplink, long sequence, string sequences);

    [LoggerMessage(49, LogLevel.Warning, "Uplink {Uplink}: the data_gap event for {Count} refused entries could not be written to the outbox (attempt {Attempt}); they stay unacknowledged and it is tried again")]
    public static partial void RefusalGapFailed(ILogger logger, Exception exception, string uplink, int count, int attempt);

    [LoggerMessage(5, LogLevel.Warning, "Uplink {Uplink} could not store its acknowledged position {Position} in the outbox; will retry")]
    public static partial void AckWriteFailed(ILogger logger, Exception exception, string uplink, long position);

    [LoggerMessage(6, LogLevel.Information, "Uplink {Uplink} finished replaying its backlog up to sequence {Head}")]
    public static partial void BacklogDone(ILogger logger, string uplink, long head);

    [LoggerMessage(7, LogLevel.Information, "Uplink {Uplink} stopped at acknowledged position {Position}")]
    public static partial void Stopped(ILogger logger, string uplink, long position);

    [LoggerMessage(8, LogLevel.Warning, "Uplink {Uplink}: {Peer} did not close cleanly")]
    public static partial void CloseFailed(ILogger logger, Exception exception, string uplink, string peer);

    [LoggerMessage(9, LogLevel.Information, "Uplink {Uplink}: Sparkplug bdSeq {BdSeq} for this session (state file {Path})")]
    public static partial void BdSeq(ILogger logger, string uplink, long bdSeq, string path);

    [LoggerMessage(10, LogLevel.Error, "Uplink {Uplink} cannot encode outbox entry {Sequence}; passing over it")]
    public static partial void EncodeFailed(ILogger logger, Exception exception, string uplink, long sequence);

    [LoggerMessage(11, LogLevel.Warning, "Uplink {Uplink}: Kafka reported {Code}: {Reason} (fatal: {Fatal})")]
    public static partial void KafkaError(ILogger logger, string uplink, string code, string reason, bool fatal);

    [LoggerMessage(46, LogLevel.Error, "Uplink {Uplink}: outbox entry {Sequence} makes a {Size}-byte packet on '{Topic}', over the {Maximum} bytes {Peer} accepts (its MQTT 5 maximum packet size)")]
    public static partial void PacketTooLarge(ILogger logger, string uplink, long sequence, long size, string topic, string peer, long maximum);

    [LoggerMessage(45, LogLevel.Warning, "Uplink {Uplink}: Kafka reported {Code}: {Reason} (fatal: {Fatal}); {Held} more like it since the last one were not logged (at most one line per error every {Every})")]
    public static partial void KafkaErrorRepeated(ILogger logger, string uplink, string code, string reason, bool fatal, int held, TimeSpan every);

    [LoggerMessage(12, LogLevel.Information, "Uplink {Uplink}: gateway facts changed (models reloaded); publishing the birth again")]
    public static partial void Rebirth(ILogger logger, string uplink);

    [LoggerMessage(55, LogLevel.Information, "Uplink {Uplink}: the host asked for a rebirth (NCMD Node Control/Rebirth); publishing NBIRTH again, each device's DBIRTH before its next DDATA")]
    public static partial void RebirthRequested(ILogger logger, string uplink);

    [LoggerMessage(56, LogLevel.Warning, "Uplink {Uplink}: an NCMD on '{Topic}' is not a Sparkplug B payload; ignored")]
    public static partial void CommandUnreadable(ILogger logger, Exception exception, string uplink, string topic);

    [LoggerMessage(57, LogLevel.Warning, "Uplink {Uplink}: {Peer} refused the subscription to '{Topic}' ({Reason}); host rebirth requests will not reach this edge node (check the broker ACL)")]
    public static partial void CommandSubscribeRefused(ILogger logger, string uplink, string peer, string topic, string reason);

    [LoggerMessage(13, LogLevel.Warning, "Uplink {Uplink}: the repeated birth on '{Topic}' was not delivered; the next connection publishes a fresh one")]
    public static partial void RebirthFailed(ILogger logger, Exception? exception, string uplink, string topic);

    [LoggerMessage(17, LogLevel.Warning, "Uplink {Uplink}: {Peer}: {Reason}")]
    public static partial void CertificateRejected(ILogger logger, string uplink, string peer, string reason);

    [LoggerMessage(40, LogLevel.Information, "Uplink {Uplink}: {Peer} is reachable again (connectivity probe); reconnecting now instead of waiting out the backoff")]
    public static partial void ReconnectWoken(ILogger logger, string uplink, string peer);

    [LoggerMessage(41, LogLevel.Information, "Uplink {Uplink}: its backlog up to sequence {Head} is acknowledged (position {Position}); status published with backlog 0")]
    public static partial void ReplayComplete(ILogger logger, string uplink, long head, long position);

    [LoggerMessage(42, LogLevel.Warning, "Uplink {Uplink}: publishing its progress (acknowledged through {Position}) to {Peer} failed; the data is not affected")]
    public static partial void ProgressFailed(ILogger logger, Exception exception, string uplink, string peer, long position);

    [LoggerMessage(73, LogLevel.Warning, "Uplink {Uplink}: publishing its progress (acknowledged through {Position}) to {Peer} failed: {Reason}; the data is not affected")]
    public static partial void ProgressNotPublished(ILogger logger, string uplink, string peer, long position, string reason);

    [LoggerMessage(43, LogLevel.Warning, "Uplink {Uplink}: the offline status record to {Peer} was not acknowledged within 3 s at the end of the session; consumers see the last online status until the next connect")]
    public static partial void OfflineStatusFailed(ILogger logger, Exception exception, string uplink, string peer);

    [LoggerMessage(44, LogLevel.Error, "Uplink {Uplink}: {Peer} refused a record on '{Topic}' for its timestamp ({TimestampMs} ms since 1970, the time the message describes): the topic's message.timestamp.before.max.ms / after.max.ms, or this gateway's clock is far off. From now on (until the agent restarts) records carry the time they are sent; the envelope's 'time' still says what they describe")]
    public static partial void KafkaTimestampRefused(ILogger logger, string uplink, string peer, string topic, long timestampMs);
    [LoggerMessage(58, LogLevel.Information, "Uplink {Uplink}: waiting for primary host application '{HostId}' to be online (its STATE on '{Topic}') before publishing NBIRTH; the outbox keeps the entries meanwhile")]
    public static partial void WaitingForHost(ILogger logger, string uplink, string hostId, string topic);

    [LoggerMessage(59, LogLevel.Information, "Uplink {Uplink}: primary host application '{HostId}' is online (STATE timestamp {Timestamp}); publishing NBIRTH (bdSeq {BdSeq}) and the entries held")]
    public static partial void HostOnline(ILogger logger, string uplink, string hostId, long timestamp, long bdSeq);

    [LoggerMessage(60, LogLevel.Warning, "Uplink {Uplink}: primary host application '{HostId}' went offline (STATE timestamp {Timestamp}); stopping the publishes, sending NDEATH and disconnecting, then waiting for it to be online again; the outbox keeps the entries")]
    public static partial void HostOffline(ILogger logger, string uplink, string hostId, long timestamp);

    [LoggerMessage(61, LogLevel.Information, "Uplink {Uplink}: a STATE on '{Topic}' with timestamp {Timestamp} is older than the last one accepted ({Last}); ignored")]
    public static partial void HostStateStale(ILogger logger, string uplink, string topic, long timestamp, long last);

    [LoggerMessage(62, LogLevel.Warning, "Uplink {Uplink}: a STATE on '{Topic}' is not a Sparkplug 3.0 STATE payload ({Reason}; expected JSON {{\"online\": true|false, \"timestamp\": ms}}); ignored")]
    public static partial void HostStateUnreadable(ILogger logger, string uplink, string topic, string reason);

    [LoggerMessage(63, LogLevel.Error, "Uplink {Uplink}: {Peer} refused the subscription to '{Topic}' ({Reason}); the edge node cannot see primary host application '{HostId}' online and publishes nothing until it can (check the broker ACL); the outbox keeps the entries")]
    public static partial void HostSubscribeRefused(ILogger logger, string uplink, string peer, string topic, string reason, string hostId);

    [LoggerMessage(64, LogLevel.Information, "Uplink {Uplink}: DDEATH for Sparkplug device {Device}: the site config no longer has it (its DDATA came from the backlog, written under an earlier config)")]
    public static partial void RetiredDevice(ILogger logger, string uplink, string device);

    [LoggerMessage(67, LogLevel.Warning, "Uplink {Uplink}: server {Peer} failed: {Reason}; trying {Next} now")]
    public static partial void ServerFailed(ILogger logger, string uplink, string peer, string reason, string next);

    [LoggerMessage(68, LogLevel.Warning, "Uplink {Uplink} is now on server {Peer} (was on {Previous}); it stays there while it works")]
    public static partial void ServerSwitched(ILogger logger, string uplink, string peer, string previous);

    [LoggerMessage(69, LogLevel.Warning, "Uplink {Uplink}: Sparkplug primary host {HostId} is not online on {Peer} ({Reason}); leaving it for {Next}")]
    public static partial void HostNotOnlineHere(ILogger logger, string uplink, string hostId, string peer, string reason, string next);

    [LoggerMessage(70, LogLevel.Warning, "Uplink {Uplink}: a Sparkplug host asked for the next server (NCMD Node Control/Next Server); sending NDEATH to {Peer} and moving to {Next}; the entries it has not acknowledged go there")]
    public static partial void NextServerRequested(ILogger logger, string uplink, string peer, string next);

    [LoggerMessage(71, LogLevel.Warning, "Uplink {Uplink}: a Sparkplug host asked for the next server (NCMD Node Control/Next Server), but {Peer} is the only one (uplinks.mqtt.hosts lists no other); staying on it")]
    public static partial void NextServerAlone(ILogger logger, string uplink, string peer);
}
