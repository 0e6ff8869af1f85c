using System.Collections;
using System.Globalization;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;

namespace EdgeTwin.Twin.State;

/// <summary>
/// Writes and reads every instance field of a graph of learning objects (detectors, OEE books, learners), so that a
/// restarted agent goes on from where it stopped. Walks fields in declaration order, recursing into the structs,
/// classes, arrays and lists they hold: a field added to one of these types is saved without anyone remembering to,
/// and a field of a type the codec cannot save fails the constructor (and so every test) instead of being skipped.
/// <para>
/// Reading fills an object built from the present configuration. Read-only scalars are the configuration: they are
/// checked, not set, and a mismatch (<see cref="InvalidDataException"/> naming the field) means the state was learned
/// under other settings. Read-only arrays keep their length (a different saved length is a mismatch); other arrays are
/// replaced when the saved length differs. <see cref="LayoutFingerprint"/> hashes the field names and types, so a state
/// written by a build whose types differ is recognised and not misread. Arrays of primitives are raw little-endian bytes
/// (x64 and ARM64 alike).
/// </para>
/// </summary>
public sealed class FieldStateCodec
{
    private readonly Dictionary<Type, FieldPlan[]> _fields = [];
    private readonly Dictionary<Type, Kind> _kinds = [];
    private readonly Func<FieldInfo, bool> _skip;

    private enum Kind : byte { Scalar, String, Array, List, Struct, Object }

    // What is known of a field before any value is read: its kind and, for a scalar or an array of scalars, the
    // underlying type code and size, so that the common cases do not look at the type again.
    private sealed record FieldPlan(FieldInfo Field, Kind Kind, TypeCode Code, int Size, Type? Element)
    {
        public bool Fixed => Field.IsInitOnly;
    }

    /// <param name="roots">The types whose instances are written; the types their fields hold are planned too.</param>
    /// <param name="skip">Fields that are not state (a reference to a collaborator, configuration kept as an object).</param>
    public FieldStateCodec(IEnumerable<Type> roots, Func<FieldInfo, bool>? skip = null)
    {
        ArgumentNullException.ThrowIfNull(roots);
        _skip = skip ?? (_ => false);
        var layout = new StringBuilder();
        var queue = new Queue<Type>(roots);
        foreach (var root in queue)
        {
            _kinds[root] = root.IsValueType ? Kind.Struct : Kind.Object;
        }

        while (queue.Count > 0)
        {
            var type = queue.Dequeue();
            if (_fields.ContainsKey(type))
            {
                continue;
            }

            var fields = type.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic)
                .Where(f => !_skip(f))
                .OrderBy(f => f.MetadataToken)
                .ToArray();
            foreach (var field in fields)
            {
                layout.Append(type.FullName).Append('.').Append(field.Name).Append(':').Append(field.FieldType.FullName).Append(';');
                foreach (var nested in Composites(field.FieldType, $"{type.Name}.{field.Name}"))
                {
                    queue.Enqueue(nested);
                }
            }

            _fields[type] = [.. fields.Select(Plan)];
        }

        LayoutFingerprint = SHA256.HashData(Encoding.UTF8.GetBytes(layout.ToString()));
    }

    private FieldPlan Plan(FieldInfo field)
    {
        var t = field.FieldType;
        var kind = _kinds[t];
        var scalar = kind == Kind.Scalar ? t : kind == Kind.Array && _kinds[t.GetElementType()!] == Kind.Scalar ? t.GetElementType()! : null;
        return new FieldPlan(field, kind, scalar is null ? TypeCode.Empty : Type.GetTypeCode(ScalarType(scalar)), scalar is null ? 0 : ScalarSize(scalar), scalar is not null && kind == Kind.Array ? scalar : null);
    }

    /// <summary>SHA-256 of the planned types' field layout (names and types, in order).</summary>
    public ReadOnlyMemory<byte> LayoutFingerprint { get; }

    /// <summary>Writes the state of <paramref name="value"/> (an instance of a root type).</summary>
    public void Write(BinaryWriter writer, object value)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(value);
        WriteFields(writer, value);
    }

    /// <summary>
    /// Reads the state <see cref="Write"/> wrote into <paramref name="target"/>, built from the present configuration.
    /// Throws <see cref="InvalidDataException"/> (what did not match) or <see cref="EndOfStreamException"/> (truncated);
    /// the target is then partly overwritten and must be discarded.
    /// </summary>
    public void Read(BinaryReader reader, object target)
    {
        ArgumentNullException.ThrowIfNull(reader);
        ArgumentNullException.ThrowIfNull(target);
        ReadFields(reader, target);
    }

    /// <summary>The bytes <see cref="Write"/> writes for <paramref name="value"/> (to write into an exact buffer).</summary>
    public int Size(object value)
    {
        ArgumentNullException.ThrowIfNull(value);
        var size = 0;
        foreach (var plan in _fields[value.GetType()])
        {
            size += plan.Kind == Kind.Scalar ? plan.Size
                : plan.Element is not null ? 4 + ((plan.Field.GetValue(value) as Array)?.Length ?? 0) * plan.Size
                : SizeOf(plan.Field.FieldType, plan.Field.GetValue(value));
        }

        return size;
    }

    // The struct and class types a field of this type leads to (planned in turn); throws for what cannot be saved.
    // Each type met is given its kind here, so that writing and reading only look it up.
    private IEnumerable<Type> Composites(Type t, string where)
    {
        if (IsScalar(t) || t == typeof(string))
        {
            _kinds[t] = IsScalar(t) ? Kind.Scalar : Kind.String;
            return [];
        }

        if (t.IsArray)
        {
            _kinds[t] = Kind.Array;
            return t.GetArrayRank() == 1
                ? Composites(t.GetElementType()!, where + "[]")
                : throw Unsupported(t, where);
        }

        if (t.IsGenericType && t.GetGenericTypeDefinition() == typeof(List<>))
        {
            // Read back, a list's items are made anew: values only (an object item would have nothing to be read into).
            var item = t.GetGenericArguments()[0];
            if (!item.IsValueType && item != typeof(string))
            {
                throw Unsupported(t, where);
            }

            _kinds[t] = Kind.List;
            return Composites(item, where + "<>");
        }

        if (t.IsValueType && !t.IsGenericTypeDefinition && Nullable.GetUnderlyingType(t) is null)
        {
            _kinds[t] = Kind.Struct;
            return [t];
        }

        if (t.IsClass && t.IsSealed && !typeof(Delegate).IsAssignableFrom(t) && t.Namespace?.StartsWith("EdgeTwin.", StringComparison.Ordinal) == true)
        {
            _kinds[t] = Kind.Object;
            return [t];
        }

        throw Unsupported(t, where);
    }

    private static NotSupportedException Unsupported(Type t, string where) =>
        new($"{where} is a {t.Name}, which FieldStateCodec cannot save: teach it the type, or skip the field if it is not state");

    private static bool IsScalar(Type t) => t.IsPrimitive || t.IsEnum;

    private static Type ScalarType(Type t) => t.IsEnum ? Enum.GetUnderlyingType(t) : t;

    private static int ScalarSize(Type t)
    {
        var s = ScalarType(t);
        return s == typeof(bool) || s == typeof(byte) || s == typeof(sbyte) ? 1
            : s == typeof(short) || s == typeof(ushort) || s == typeof(char) ? 2
            : s == typeof(int) || s == typeof(uint) || s == typeof(float) ? 4
            : 8;
    }

    private void WriteFields(BinaryWriter w, object o)
    {
        foreach (var plan in _fields[o.GetType()])
        {
            var value = plan.Field.GetValue(o);
            if (plan.Kind == Kind.Scalar)
            {
                WriteScalar(w, plan.Code, value!);
            }
            else if (plan.Element is not null)
            {
                var array = (Array?)value;
                w.Write(array?.Length ?? -1);
                if (array is not null)
                {
                    w.Write(RawBytes(array, plan.Size));
                }
            }
            else
            {
                WriteValue(w, plan.Field.FieldType, value);
            }
        }
    }

    private void WriteValue(BinaryWriter w, Type t, object? value)
    {
        switch (_kinds[t])
        {
            case Kind.Scalar:
                WriteScalar(w, Type.GetTypeCode(ScalarType(t)), value!);
                break;
            case Kind.String:
                w.Write(value is not null);
                if (value is not null)
                {
                    w.Write((string)value);
                }

                break;
            case Kind.Array:
                var array = (Array?)value;
                w.Write(array?.Length ?? -1);
                if (array is null)
                {
                    break;
                }

                var element = t.GetElementType()!;
                if (_kinds[element] == Kind.Scalar)
                {
                    w.Write(RawBytes(array, ScalarSize(element)));
                    break;
                }

                foreach (var item in array)
                {
                    WriteValue(w, element, item);
                }

                break;
            case Kind.List:
                var list = (IList?)value;
                w.Write(list?.Count ?? -1);
                if (list is null)
                {
                    break;
                }

                var itemType = t.GetGenericArguments()[0];
                foreach (var item in list)
                {
                    WriteValue(w, itemType, item);
                }

                break;
            case Kind.Struct:
                WriteFields(w, value!);
                break;
            default:
                w.Write(value is not null);
                if (value is not null)
                {
                    WriteFields(w, value);
                }

                break;
        }
    }

    private int SizeOf(Type t, object? value)
    {
        switch (_kinds[t])
        {
            case Kind.Scalar:
                return ScalarSize(t);
            case Kind.String:
                return 1 + (value is string s ? StringSize(s) : 0);
            case Kind.Array or Kind.List:
                var items = (IList?)value;
                if (items is null)
                {
                    return 4;
                }

                var element = t.IsArray ? t.GetElementType()! : t.GetGenericArguments()[0];
                if (t.IsArray && _kinds[element] == Kind.Scalar)
                {
                    return 4 + (items.Count * ScalarSize(element));
                }

                var size = 4;
                foreach (var item in items)
                {
                    size += SizeOf(element, item);
                }

                return size;
            case Kind.Struct:
                return Size(value!);
            default:
                return 1 + (value is null ? 0 : Size(value));
        }
    }

    private static int StringSize(string s)
    {
        var bytes = Encoding.UTF8.GetByteCount(s);
        var prefix = 1;
        for (var v = (uint)bytes; v >= 0x80; v >>= 7)
        {
            prefix++;
        }

        return prefix + bytes;
    }

    private static void WriteScalar(BinaryWriter w, TypeCode code, object v)
    {
        if (v is Enum)
        {
            // A boxed enum unboxes only as itself: take its value as the underlying type.
            v = Convert.ChangeType(v, code, CultureInfo.InvariantCulture);
        }

        switch (code)
        {
            case TypeCode.Boolean: w.Write((bool)v); break;
            case TypeCode.Byte: w.Write((byte)v); break;
            case TypeCode.SByte: w.Write((sbyte)v); break;
            case TypeCode.Int16: w.Write((short)v); break;
            case TypeCode.UInt16: w.Write((ushort)v); break;
            case TypeCode.Char: w.Write((ushort)(char)v); break;
            case TypeCode.Int32: w.Write((int)v); break;
            case TypeCode.UInt32: w.Write((uint)v); break;
            case TypeCode.Int64: w.Write((long)v); break;
            case TypeCode.UInt64: w.Write((ulong)v); break;
            case TypeCode.Single: w.Write((float)v); break;
            case TypeCode.Double: w.Write((double)v); break;
            default: throw new NotSupportedException(code.ToString());
        }
    }

    private static object ReadScalar(BinaryReader r, TypeCode code) => code switch
    {
        TypeCode.Boolean => r.ReadBoolean(),
        TypeCode.Byte => r.ReadByte(),
        TypeCode.SByte => r.ReadSByte(),
        TypeCode.Int16 => r.ReadInt16(),
        TypeCode.UInt16 => r.ReadUInt16(),
        TypeCode.Char => (char)r.ReadUInt16(),
        TypeCode.Int32 => r.ReadInt32(),
        TypeCode.UInt32 => r.ReadUInt32(),
        TypeCode.Int64 => r.ReadInt64(),
        TypeCode.UInt64 => r.ReadUInt64(),
        TypeCode.Single => r.ReadSingle(),
        TypeCode.Double => r.ReadDouble(),
        _ => throw new NotSupportedException(code.ToString()),
    };

    // An array of primitives or enums as its bytes in memory (little-endian on every platform we run on).
    private static Span<byte> RawBytes(Array array, int elementSize) =>
        MemoryMarshal.CreateSpan(ref MemoryMarshal.GetArrayDataReference(array), array.Length * elementSize);

    private void ReadFields(BinaryReader r, object o)
    {
        foreach (var plan in _fields[o.GetType()])
        {
            var field = plan.Field;
            object? value;
            if (plan.Kind == Kind.Scalar)
            {
                var raw = ReadScalar(r, plan.Code);
                value = field.FieldType.IsEnum ? Enum.ToObject(field.FieldType, raw) : raw;
                if (plan.Fixed)
                {
                    // Configuration: checked, not set (a settable scalar's present value is not read: it would only box).
                    var current = field.GetValue(o);
                    if (!Equals(current, value))
                    {
                        throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture, $"{new Where(field)}: saved {value}, the configuration now gives {current}"));
                    }

                    continue;
                }
            }
            else if (plan.Element is not null)
            {
                value = ReadArray(r, plan.Element, (Array?)field.GetValue(o), plan.Fixed, new Where(field), plan.Size);
            }
            else
            {
                value = ReadValue(r, field.FieldType, field.GetValue(o), plan.Fixed, new Where(field));
            }

            if (!plan.Fixed)
            {
                field.SetValue(o, value);
            }
        }
    }

    /// <summary>The field (and element) a value is read for: named only when a message needs it.</summary>
    private readonly record struct Where(FieldInfo Field, int Index = -1)
    {
        public override string ToString() =>
            $"{Field.DeclaringType!.Name}.{Field.Name}" + (Index >= 0 ? string.Create(CultureInfo.InvariantCulture, $"[{Index}]") : "");
    }

    // Reads one value; `current` is what the target holds (filled in place where it can be); `fixedHere` = a read-only field.
    private object? ReadValue(BinaryReader r, Type t, object? current, bool fixedHere, Where where)
    {
        switch (_kinds[t])
        {
            case Kind.Scalar:
                var raw = ReadScalar(r, Type.GetTypeCode(ScalarType(t)));
                var value = t.IsEnum ? Enum.ToObject(t, raw) : raw;
                if (fixedHere && !Equals(current, value))
                {
                    throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture, $"{where}: saved {value}, the configuration now gives {current}"));
                }

                return value;
            case Kind.String:
                var text = r.ReadBoolean() ? r.ReadString() : null;
                if (fixedHere && !string.Equals((string?)current, text, StringComparison.Ordinal))
                {
                    throw new InvalidDataException($"{where}: saved '{text}', the configuration now gives '{current}'");
                }

                return text;
            case Kind.Array:
                var element = t.GetElementType()!;
                return ReadArray(r, element, (Array?)current, fixedHere, where, _kinds[element] == Kind.Scalar ? ScalarSize(element) : 0);
            case Kind.List:
                return ReadList(r, t, (IList?)current, fixedHere, where);
            case Kind.Struct:
                // Boxed: the fields are set in the box, which the caller stores back.
                var boxed = current ?? Activator.CreateInstance(t)!;
                ReadFields(r, boxed);
                return boxed;
            default:
                var present = r.ReadBoolean();
                if (present != current is not null)
                {
                    throw new InvalidDataException($"{where}: saved {(present ? "with" : "without")} it, the configuration now {(current is null ? "does not use" : "uses")} it");
                }

                if (current is not null)
                {
                    ReadFields(r, current);
                }

                return current;
        }
    }

    private IList? ReadList(BinaryReader r, Type t, IList? current, bool fixedHere, Where where)
    {
        var count = r.ReadInt32();
        if (count < -1)
        {
            throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture, $"{where}: saved {count} items"));
        }

        if (count == -1)
        {
            return fixedHere && current is not null ? throw new InvalidDataException($"{where}: saved without it, the configuration now has it") : null;
        }

        var list = current ?? (IList)Activator.CreateInstance(t)!;
        list.Clear();
        var element = t.GetGenericArguments()[0];
        for (var i = 0; i < count; i++)
        {
            list.Add(ReadValue(r, element, null, false, where with { Index = i }));
        }

        return list;
    }

    // elementSize: the size of a scalar element, 0 for elements read one by one.
    private Array? ReadArray(BinaryReader r, Type element, Array? current, bool fixedHere, Where where, int elementSize)
    {
        var length = r.ReadInt32();
        if (length < -1 || (r.BaseStream.CanSeek && length > r.BaseStream.Length - r.BaseStream.Position))
        {
            throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture, $"{where}: saved {length} elements, more than the file holds"));
        }

        if (length == -1 && current is null)
        {
            return null;
        }

        var array = current;
        if (array is null || length == -1 || array.Length != length)
        {
            if (fixedHere)
            {
                throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture, $"{where}: saved {(length == -1 ? "none" : length + " elements")}, the configuration now gives {current?.Length.ToString(CultureInfo.InvariantCulture) ?? "none"}"));
            }

            if (length == -1)
            {
                return null;
            }

            array = Array.CreateInstance(element, length);
        }

        if (elementSize > 0)
        {
            r.BaseStream.ReadExactly(RawBytes(array, elementSize));
            return array;
        }

        for (var i = 0; i < length; i++)
        {
            // Elements are not fixed: an inner array may have grown (a calendar with more stops).
            array.SetValue(ReadValue(r, element, array.GetValue(i), fixedHere: false, where with { Index = i }), i);
        }

        return array;
    }
}
