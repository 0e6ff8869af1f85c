using System.Globalization;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;

namespace EdgeTwin.Twin.Anomaly;

/// <summary>
/// Writes and reads everything a <see cref="StreamingAnomalyDetector"/> has learned, so that a restarted agent goes on
/// from where it stopped instead of learning every series anew (and raising a wave of warm-up anomalies).
/// <para>
/// The state is every instance field of the detector and of its parts (<see cref="ContextNoveltyDetector"/>,
/// <see cref="ResonanceDetector"/>), walked in declaration order: a field added to a detector is saved without anyone
/// remembering to, and a field of a type the codec cannot save fails the type initialiser (and every test) instead of
/// being skipped. <see cref="LayoutFingerprint"/> hashes the field names and types, so a state saved by a build whose
/// detectors differ is recognised and not misread. Read-only fields (sizes fixed by the options) are checked, not set:
/// a mismatch means the options differ. Arrays are written as raw little-endian bytes (x64 and ARM64 alike).
/// </para>
/// </summary>
public static class DetectorStateCodec
{
    private static readonly Dictionary<Type, FieldPlan[]> Plans = [];

    /// <summary>SHA-256 of the detector types' field layout (names and types, in order).</summary>
    public static ReadOnlyMemory<byte> LayoutFingerprint { get; }

    static DetectorStateCodec()
    {
        var layout = new StringBuilder();
        foreach (var type in new[] { typeof(StreamingAnomalyDetector), typeof(ContextNoveltyDetector), typeof(ResonanceDetector) })
        {
            Plans[type] = Plan(type, layout);
        }

        LayoutFingerprint = SHA256.HashData(Encoding.UTF8.GetBytes(layout.ToString()));
    }

    /// <summary>
    /// A fingerprint of the options that shape what a detector learns (all of them but the alarm threshold, which only
    /// the caller's episode logic reads): state learned under other options is not restored.
    /// </summary>
    public static ulong OptionsFingerprint(AnomalyDetectorOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var text = new StringBuilder();
        foreach (var p in typeof(AnomalyDetectorOptions).GetProperties(BindingFlags.Instance | BindingFlags.Public).OrderBy(p => p.Name, StringComparer.Ordinal))
        {
            if (p.Name == nameof(AnomalyDetectorOptions.Threshold) || p.GetIndexParameters().Length > 0)
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
        WriteObject(writer, detector);
    }

    /// <summary>The bytes <see cref="Write"/> writes for <paramref name="detector"/> (to write into an exact buffer).</summary>
    public static int Size(StreamingAnomalyDetector detector)
    {
        ArgumentNullException.ThrowIfNull(detector);
        return SizeOf(detector);
    }

    private static int SizeOf(object o)
    {
        var size = 0;
        foreach (var plan in Plans[o.GetType()])
        {
            size += plan.Kind switch
            {
                FieldKind.Bool => 1,
                FieldKind.Int or FieldKind.UInt or FieldKind.Float => 4,
                FieldKind.Long or FieldKind.Double => 8,
                FieldKind.Part => 1 + (plan.Field.GetValue(o) is { } part ? SizeOf(part) : 0),
                _ => 4 + (plan.Field.GetValue(o) is Array a ? Buffer.ByteLength(a) : 0),
            };
        }

        return size;
    }

    /// <summary>
    /// A detector for <paramref name="options"/> holding the state <see cref="Write"/> saved. Throws
    /// <see cref="InvalidDataException"/> (what did not match) or <see cref="EndOfStreamException"/> (truncated); the
    /// reader's position is then undefined.
    /// </summary>
    public static StreamingAnomalyDetector Read(BinaryReader reader, AnomalyDetectorOptions options)
    {
        ArgumentNullException.ThrowIfNull(reader);
        var detector = new StreamingAnomalyDetector(options);
        ReadObject(reader, detector);
        return detector;
    }

    private static FieldPlan[] Plan(Type type, StringBuilder layout)
    {
        var plans = new List<FieldPlan>();
        foreach (var field in type.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic).OrderBy(f => f.MetadataToken))
        {
            if (field.FieldType == typeof(AnomalyDetectorOptions))
            {
                // Saved as OptionsFingerprint by the caller; the detector is rebuilt from the options.
                continue;
            }

            var kind = KindOf(field.FieldType)
                ?? throw new NotSupportedException($"{type.Name}.{field.Name} is a {field.FieldType.Name}, which DetectorStateCodec cannot save: teach it the type");
            layout.Append(type.FullName).Append('.').Append(field.Name).Append(':').Append(field.FieldType.FullName).Append(';');
            plans.Add(new FieldPlan(field, kind, field.IsInitOnly));
        }

        return [.. plans];
    }

    private static FieldKind? KindOf(Type t) => t switch
    {
        _ when t == typeof(bool) => FieldKind.Bool,
        _ when t == typeof(int) => FieldKind.Int,
        _ when t == typeof(uint) => FieldKind.UInt,
        _ when t == typeof(long) => FieldKind.Long,
        _ when t == typeof(float) => FieldKind.Float,
        _ when t == typeof(double) => FieldKind.Double,
        _ when t == typeof(byte[]) => FieldKind.Bytes,
        _ when t == typeof(int[]) => FieldKind.Ints,
        _ when t == typeof(uint[]) => FieldKind.UInts,
        _ when t == typeof(long[]) => FieldKind.Longs,
        _ when t == typeof(float[]) => FieldKind.Floats,
        _ when t == typeof(double[]) => FieldKind.Doubles,
        _ when t == typeof(ContextNoveltyDetector) || t == typeof(ResonanceDetector) => FieldKind.Part,
        _ => null,
    };

    private static void WriteObject(BinaryWriter w, object o)
    {
        foreach (var plan in Plans[o.GetType()])
        {
            var value = plan.Field.GetValue(o);
            switch (plan.Kind)
            {
                case FieldKind.Bool: w.Write((bool)value!); break;
                case FieldKind.Int: w.Write((int)value!); break;
                case FieldKind.UInt: w.Write((uint)value!); break;
                case FieldKind.Long: w.Write((long)value!); break;
                case FieldKind.Float: w.Write((float)value!); break;
                case FieldKind.Double: w.Write((double)value!); break;
                case FieldKind.Part:
                    w.Write(value is not null);
                    if (value is not null)
                    {
                        WriteObject(w, value);
                    }

                    break;
                default:
                    WriteArray(w, (Array?)value, plan.Kind);
                    break;
            }
        }
    }

    private static void WriteArray(BinaryWriter w, Array? array, FieldKind kind)
    {
        if (array is null)
        {
            w.Write(-1);
            return;
        }

        w.Write(array.Length);
        w.Write(Bytes(array, kind));
    }

    private static ReadOnlySpan<byte> Bytes(Array array, FieldKind kind) => kind switch
    {
        FieldKind.Bytes => (byte[])array,
        FieldKind.Ints => MemoryMarshal.AsBytes<int>((int[])array),
        FieldKind.UInts => MemoryMarshal.AsBytes<uint>((uint[])array),
        FieldKind.Longs => MemoryMarshal.AsBytes<long>((long[])array),
        FieldKind.Floats => MemoryMarshal.AsBytes<float>((float[])array),
        FieldKind.Doubles => MemoryMarshal.AsBytes<double>((double[])array),
        _ => throw new InvalidOperationException(kind.ToString()),
    };

    private static void ReadObject(BinaryReader r, object o)
    {
        foreach (var plan in Plans[o.GetType()])
        {
            switch (plan.Kind)
            {
                case FieldKind.Bool: Set(o, plan, r.ReadBoolean()); break;
                case FieldKind.Int: Set(o, plan, r.ReadInt32()); break;
                case FieldKind.UInt: Set(o, plan, r.ReadUInt32()); break;
                case FieldKind.Long: Set(o, plan, r.ReadInt64()); break;
                case FieldKind.Float: Set(o, plan, r.ReadSingle()); break;
                case FieldKind.Double: Set(o, plan, r.ReadDouble()); break;
                case FieldKind.Part:
                    var present = r.ReadBoolean();
                    var part = plan.Field.GetValue(o);
                    if (present != part is not null)
                    {
                        throw new InvalidDataException($"{plan.Field.DeclaringType!.Name}.{plan.Field.Name}: saved {(present ? "with" : "without")} it, the options now {(part is null ? "do not use" : "use")} it");
                    }

                    if (part is not null)
                    {
                        ReadObject(r, part);
                    }

                    break;
                default:
                    ReadArray(r, o, plan);
                    break;
            }
        }
    }

    private static void ReadArray(BinaryReader r, object o, FieldPlan plan)
    {
        var length = r.ReadInt32();
        var current = (Array?)plan.Field.GetValue(o);
        if (length == -1 && current is null)
        {
            return;
        }

        if (current is null || length != current.Length)
        {
            throw new InvalidDataException($"{plan.Field.DeclaringType!.Name}.{plan.Field.Name}: saved {length} elements, the options now give {current?.Length.ToString(CultureInfo.InvariantCulture) ?? "none"}");
        }

        Span<byte> target = plan.Kind switch
        {
            FieldKind.Bytes => ((byte[])current).AsSpan(),
            FieldKind.Ints => MemoryMarshal.AsBytes(((int[])current).AsSpan()),
            FieldKind.UInts => MemoryMarshal.AsBytes(((uint[])current).AsSpan()),
            FieldKind.Longs => MemoryMarshal.AsBytes(((long[])current).AsSpan()),
            FieldKind.Floats => MemoryMarshal.AsBytes(((float[])current).AsSpan()),
            FieldKind.Doubles => MemoryMarshal.AsBytes(((double[])current).AsSpan()),
            _ => throw new InvalidOperationException(plan.Kind.ToString()),
        };
        r.BaseStream.ReadExactly(target);
    }

    private static void Set(object o, FieldPlan plan, object value)
    {
        if (!plan.ReadOnly)
        {
            plan.Field.SetValue(o, value);
        }
        else if (!Equals(plan.Field.GetValue(o), value))
        {
            throw new InvalidDataException($"{plan.Field.DeclaringType!.Name}.{plan.Field.Name}: saved {value}, the options now give {plan.Field.GetValue(o)}");
        }
    }

    private enum FieldKind : byte
    {
        Bool,
        Int,
        UInt,
        Long,
        Float,
        Double,
        Bytes,
        Ints,
        UInts,
        Longs,
        Floats,
        Doubles,
        Part,
    }

    private sealed record FieldPlan(FieldInfo Field, FieldKind Kind, bool ReadOnly);
}
