namespace EdgeTwin.Outbox;

internal static class OutboxRecordValidation
{
    /// <summary>Rejects a record before anything of its batch is stored, so a bad batch is never half-appended.</summary>
    public static void Validate(in OutboxRecord record)
    {
        if (string.IsNullOrWhiteSpace(record.DeviceId))
        {
            throw new ArgumentException($"Outbox record of kind {record.Kind} at {record.TimestampUnixMs} has no device id.", nameof(record));
        }

        if (!Enum.IsDefined(record.Kind))
        {
            throw new ArgumentException($"Outbox record for '{record.DeviceId}' has unknown kind {(byte)record.Kind}.", nameof(record));
        }
    }
}
