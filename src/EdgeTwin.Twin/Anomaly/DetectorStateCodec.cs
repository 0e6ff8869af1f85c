using System.Globalization;
using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using EdgeTwin.Twin.State;

namespace EdgeTwin.Twin.Anomaly;

/// <summary>
/// Writes and reads everything a <see cref="StreamingAnomalyDetector"/> has learned, so that a restarted agent goes on
/// from where it stopped instead of learning every series anew (and raising a wave of warm-up anomalies).
/// <para>
/// The state is every instance field of the detector and of its parts (<see cref="ContextNoveltyDetector"/>,
/// <see cref="ResonanceDetector"/>), walked by <see cref="FieldStateCodec"/>: a field added to a detector is saved
/// without anyone remembering to. <see cref="LayoutFingerprint"/> hashes the field names and types, so a state saved
/// by a build whose detectors differ is recognised and not misread. Read-only fields (sizes fixed by the options) are
/// checked, not set: a mismatch means the options differ.
/// </para>
/// </summary>
public static class DetectorStateCodec
{
    // The options object is saved as OptionsFingerprint by the caller; the detector is rebuilt from the options.
    private static readonly FieldStateCodec Codec = new(
        [typeof(StreamingAnomalyDetector), typeof(ContextNoveltyDetector), typeof(ResonanceDetector)],
        skip: f => f.FieldType == typeof(AnomalyDetectorOptions));

    /// <summary>SHA-256 of the detector types' field layout (names and types, in order).</summary>
    public static ReadOnlyMemory<byte> LayoutFingerprint => Codec.LayoutFingerprint;

    /// <summary>
    /// The detector types' layout, self-described (<see cref="FieldStateCodec.Description"/>): kept in the state file, so
    /// that a later build whose detectors gained or lost fields reads the state instead of learning anew.
    /// </summary>
    public static ReadOnlySpan<byte> LayoutDescription => Codec.Description;

    /// <summary>What differs between the detectors of the build that described <paramref name="writer"/> and this build's, per type.</summary>
    public static IReadOnlyList<string> Differences(FieldStateCodec.SavedLayout writer) => Codec.Differences(writer);

    /// <summary>
    /// A fingerprint of the options that shape what a detector learns (all of them but the alarm threshold and its interval,
    /// which only the caller's episode logic reads): state learned under other options is not restored.
    /// </summary>
    public static ulong OptionsFingerprint(AnomalyDetectorOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var text = new StringBuilder();
        foreach (var p in typeof(AnomalyDetectorOptions).GetProperties(BindingFlags.Instance | BindingFlags.Public).OrderBy(p => p.Name, StringComparer.Ordinal))
        {
            if (p.Name is nameof(AnomalyDetectorOptions.Threshold) or nameof(AnomalyDetectorOptions.ThresholdInterval) || p.GetIndexParameters().Length > 0)
            {
                continue;
            }

            var value = p.GetValue(options);
            text.Append(p.Name).Append('=').Append(value is IFormattable f ? f.ToString(value is double or float ? "R" : null, CultureInfo.InvariantCulture) : value?.ToString()).Append(';');
        }

        return BitConverter.ToUInt64(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())));
    }

    /// <summary>Writes the detector's learned state.</summary>
    public static void Write(BinaryWriter writer, StreamingAnomalyDetector detector)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(detector);
        Codec.Write(writer, detector);
    }

    /// <summary>The bytes <see cref="Write"/> writes for <paramref name="detector"/> (to write into an exact buffer).</summary>
    public static int Size(StreamingAnomalyDetector detector)
    {
        ArgumentNullException.ThrowIfNull(detector);
        return Codec.Size(detector);
    }

    /// <summary>
    /// A detector for <paramref name="options"/> holding the state <see cref="Write"/> saved. Throws
    /// <see cref="InvalidDataException"/> (what did not match) or <see cref="EndOfStreamException"/> (truncated); the
    /// reader's position is then undefined.
    /// </summary>
    public static StreamingAnomalyDetector Read(BinaryReader reader, AnomalyDetectorOptions options) => Read(reader, options, null);

    /// <summary>
    /// As <see cref="Read(BinaryReader, AnomalyDetectorOptions)"/>, for a state written by the build whose layout
    /// <paramref name="writer"/> describes (null: this build's): fields this build added keep the values a new detector
    /// starts with, fields it dropped are skipped.
    /// </summary>
    public static StreamingAnomalyDetector Read(BinaryReader reader, AnomalyDetectorOptions options, FieldStateCodec.SavedLayout? writer)
    {
        ArgumentNullException.ThrowIfNull(reader);
        var detector = new StreamingAnomalyDetector(options);
        Codec.Read(reader, detector, writer);
        return detector;
    }
}
