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
/// <para>
/// Layout evolution: <see cref="Description"/> describes the layout (every planned type with its fields in order, every
/// field's type with its kind, scalar size, element type), and a state file keeps it next to the fingerprint. A build whose
/// fingerprint differs reads such a state with <see cref="Read(BinaryReader, object, SavedLayout?)"/>: fields are matched
/// by declaring type, name and type; a matched field is read, a field the writer had and this build lacks is skipped by
/// the writer's description, a field this build has and the writer lacked (or whose type changed) keeps the value the
/// constructor gave it. Rule for whoever adds a field: its constructor value must be one that is safe to resume with
/// (a counter at 0, "not seen yet"), since an upgrade goes on from the old state with it. Read-only scalars are still
/// checked against the configuration.
/// </para>
/// </summary>
public sealed class FieldStateCodec
{
    private readonly Dictionary<Type, FieldPlan[]> _fields = [];
    private readonly Dictionary<Type, Kind> _kinds = [];
    private readonly Func<FieldInfo, bool> _skip;
    private readonly Func<Type, string> _typeName;
    private readonly byte[] _description;

    internal enum Kind : byte { Scalar, String, Array, List, Struct, Object }

    // What is known of a field before any value is read: its kind and, for a scalar or an array of scalars, the
    // underlying type code and size, so that the common cases do not look at the type again.
    private sealed record FieldPlan(FieldInfo Field, Kind Kind, TypeCode Code, int Size, Type? Element)
    {
        public bool Fixed => Field.IsInitOnly;
    }

    /// <param name="roots">The types whose instances are written; the types their fields hold are planned too.</param>
    /// <param name="skip">Fields that are not state (a reference to a collaborator, configuration kept as an object).</param>
    /// <param name="typeName">How a struct, class or enum is named in <see cref="Description"/> (default: its full name);
    /// tests name two versions of a type alike with it, as two builds would.</param>
    public FieldStateCodec(IEnumerable<Type> roots, Func<FieldInfo, bool>? skip = null, Func<Type, string>? typeName = null)
    {
        ArgumentNullException.ThrowIfNull(roots);
        _skip = skip ?? (_ => false);
        _typeName = typeName ?? (t => t.FullName ?? t.Name);
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
        _description = Describe();
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
    public void Read(BinaryReader reader, object target) => Read(reader, target, null);

    /// <summary>
    /// Reads a state written by the build <paramref name="writer"/> describes (null: this build's layout) into
    /// <paramref name="target"/>: fields matched by declaring type, name and type are read, the writer's other fields are
    /// skipped, this build's other fields keep their constructed values. Throws as <see cref="Read(BinaryReader, object)"/>.
    /// </summary>
    public void Read(BinaryReader reader, object target, SavedLayout? writer)
    {
        ArgumentNullException.ThrowIfNull(reader);
        ArgumentNullException.ThrowIfNull(target);
        ReadFields(reader, target, writer);
    }

    /// <summary>
    /// This build's layout, self-described: per type its name, kind, scalar code and size, element type and fields (name,
    /// type name) in order; <see cref="SavedLayout.Parse"/> reads it back. Kept next to <see cref="LayoutFingerprint"/>
    /// in a state file, so that a later build with other fields can still read the state.
    /// </summary>
    public ReadOnlySpan<byte> Description => _description;

    /// <summary>
    /// A string as <see cref="BinaryWriter.Write(string)"/> wrote it. A damaged length prefix is
    /// <see cref="InvalidDataException"/> (not a 7-bit integer, or negative) or <see cref="EndOfStreamException"/> (past the
    /// stream's end), the exceptions every state reader handles: <see cref="BinaryReader.ReadString"/> throws
    /// <see cref="FormatException"/> and a bare <see cref="IOException"/> for them, which escaped the readers (found by
    /// fuzzing). Nothing is allocated beyond what the stream holds.
    /// </summary>
    public static string ReadString(BinaryReader reader)
    {
        ArgumentNullException.ThrowIfNull(reader);
        int length;
        try
        {
            length = reader.Read7BitEncodedInt();
        }
        catch (FormatException ex)
        {
            throw new InvalidDataException("a string's length prefix is not a 7-bit encoded integer", ex);
        }

        if (length < 0)
        {
            throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture, $"a string of {length} bytes"));
        }

        var stream = reader.BaseStream;
        if (stream.CanSeek)
        {
            var bytes = length <= stream.Length - stream.Position ? reader.ReadBytes(length) : throw new EndOfStreamException();
            return bytes.Length == length ? Encoding.UTF8.GetString(bytes) : throw new EndOfStreamException();
        }

        // Not seekable: read in chunks, so a length claiming 2 GB costs what actually arrives.
        using var text = new MemoryStream();
        var chunk = new byte[Math.Min(length, 1 << 16)];
        for (var left = length; left > 0; )
        {
            var n = reader.Read(chunk, 0, Math.Min(chunk.Length, left));
            if (n == 0)
            {
                throw new EndOfStreamException();
            }

            text.Write(chunk, 0, n);
            left -= n;
        }

        return Encoding.UTF8.GetString(text.GetBuffer(), 0, (int)text.Length);
    }

    private SavedLayout? _own;

    private SavedLayout Own => _own ??= SavedLayout.Parse(_description);

    // A type's name in the description: the hook names structs, classes and enums; arrays and lists are named by their
    // element (a List's FullName carries assembly versions, which a runtime upgrade would change).
    private string Name(Type t) =>
        t.IsArray ? Name(t.GetElementType()!) + "[]"
        : t.IsGenericType && t.GetGenericTypeDefinition() == typeof(List<>) ? "List<" + Name(t.GetGenericArguments()[0]) + ">"
        : t.IsPrimitive || t == typeof(string) ? t.FullName!
        : t.IsGenericType ? t.Name + "<" + string.Join(",", t.GetGenericArguments().Select(Name)) + ">" // value tuples
        : _typeName(t);

    private byte[] Describe()
    {
        using var ms = new MemoryStream();
        using (var w = new BinaryWriter(ms, Encoding.UTF8, leaveOpen: true))
        {
            w.Write(_kinds.Count);
            foreach (var (t, kind) in _kinds)
            {
                w.Write(Name(t));
                w.Write((byte)kind);
                w.Write((byte)(kind == Kind.Scalar ? Type.GetTypeCode(ScalarType(t)) : TypeCode.Empty));
                w.Write((byte)(kind == Kind.Scalar ? ScalarSize(t) : 0));
                w.Write(kind == Kind.Array ? Name(t.GetElementType()!) : kind == Kind.List ? Name(t.GetGenericArguments()[0]) : "");
                var fields = _fields.GetValueOrDefault(t) ?? [];
                w.Write(fields.Length);
                foreach (var f in fields)
                {
                    w.Write(f.Field.Name);
                    w.Write(Name(f.Field.FieldType));
                }
            }
        }

        return ms.ToArray();
    }

    /// <summary>
    /// What differs between the writer's layout and this build's, per type: e.g. <c>OeeTracker: new _goodSinceRejectMoved</c>,
    /// <c>Counter: dropped _old; changed type _n</c>. Empty when the fields are the same.
    /// </summary>
    public IReadOnlyList<string> Differences(SavedLayout writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        var result = new List<string>();
        foreach (var type in _fields.Keys)
        {
            if (!writer.Types.TryGetValue(Name(type), out var was))
            {
                continue; // a new type: the field holding it is named new in its owner
            }

            var ours = Own.Types[Name(type)].Fields;
            var added = ours.Where(f => !was.Fields.Any(g => g.Name == f.Name)).Select(f => f.Name).ToList();
            var dropped = was.Fields.Where(g => !ours.Any(f => f.Name == g.Name)).Select(g => g.Name).ToList();
            var changed = ours.Where(f => was.Fields.Any(g => g.Name == f.Name) && !Matches(writer, f, was.Fields.First(g => g.Name == f.Name))).Select(f => f.Name).ToList();
            var parts = new List<string>();
            if (added.Count > 0) parts.Add("new " + string.Join(", ", added));
            if (dropped.Count > 0) parts.Add("dropped " + string.Join(", ", dropped));
            if (changed.Count > 0) parts.Add("changed type " + string.Join(", ", changed));
            if (parts.Count > 0) result.Add(type.Name + ": " + string.Join("; ", parts));
        }

        return result;
    }

    /// <summary>
    /// Whether <paramref name="type"/> and every type its fields lead to are laid out in <paramref name="writer"/> as in
    /// this build (what the writer wrote for it is then the same bytes this build would write).
    /// </summary>
    public bool SameLayout(SavedLayout writer, Type type)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(type);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var todo = new Stack<string>([Name(type)]);
        while (todo.TryPop(out var name))
        {
            if (!seen.Add(name)) continue;
            if (!Own.Types.TryGetValue(name, out var ours) || !writer.Types.TryGetValue(name, out var was)) return false;
            if (ours.Kind != was.Kind || ours.Code != was.Code || ours.Size != was.Size || ours.Element != was.Element || !ours.Fields.SequenceEqual(was.Fields)) return false;
            if (ours.Element.Length > 0) todo.Push(ours.Element);
            foreach (var f in ours.Fields) todo.Push(f.Type);
        }

        return true;
    }

    // Whether the writer's field holds what this build's does: same type name, and the same scalar (an enum whose
    // underlying type changed keeps its name) down through arrays and lists.
    private bool Matches(SavedLayout writer, SavedField ours, SavedField was) => ours.Type == was.Type && SameValueType(writer, ours.Type, 0);

    private bool SameValueType(SavedLayout writer, string name, int depth)
    {
        if (!Own.Types.TryGetValue(name, out var ours) || !writer.Types.TryGetValue(name, out var was) || ours.Kind != was.Kind || depth > 16) return false;
        return ours.Kind switch
        {
            Kind.Scalar => ours.Code == was.Code && ours.Size == was.Size,
            Kind.Array or Kind.List => ours.Element == was.Element && SameValueType(writer, ours.Element, depth + 1),
            _ => true, // strings; structs and classes evolve field by field
        };
    }

    /// <summary>One field as a layout description names it.</summary>
    public readonly record struct SavedField(string Name, string Type);

    /// <summary>One type as a layout description names it.</summary>
    internal sealed record SavedType(string Name, Kind Kind, TypeCode Code, int Size, string Element, SavedField[] Fields);

    /// <summary>A layout as <see cref="Description"/> wrote it (another build's): what <see cref="Read(BinaryReader, object, SavedLayout?)"/> reads by.</summary>
    public sealed class SavedLayout
    {
        private SavedLayout(Dictionary<string, SavedType> types) => Types = types;

        internal Dictionary<string, SavedType> Types { get; }

        /// <summary>Reads a description; <see cref="InvalidDataException"/> when it is not one (damaged, or cut short).</summary>
        public static SavedLayout Parse(ReadOnlySpan<byte> description)
        {
            try
            {
                using var r = new BinaryReader(new MemoryStream(description.ToArray(), writable: false), Encoding.UTF8);
                var count = r.ReadInt32();
                if (count < 0 || count > description.Length)
                {
                    throw new InvalidDataException($"layout description of {count} types");
                }

                var types = new Dictionary<string, SavedType>(count, StringComparer.Ordinal);
                for (var i = 0; i < count; i++)
                {
                    var name = ReadString(r);
                    var kind = (Kind)r.ReadByte();
                    var code = (TypeCode)r.ReadByte();
                    var size = r.ReadByte();
                    var element = ReadString(r);
                    var n = r.ReadInt32();
                    if (kind > Kind.Object || n < 0 || n > description.Length || (kind == Kind.Scalar && size is not (1 or 2 or 4 or 8)) || (kind is Kind.Array or Kind.List && element.Length == 0))
                    {
                        throw new InvalidDataException($"layout description: {name} is not described as a type can be");
                    }

                    var fields = new SavedField[n];
                    for (var j = 0; j < n; j++)
                    {
                        fields[j] = new SavedField(ReadString(r), ReadString(r));
                    }

                    types[name] = new SavedType(name, kind, code, size, element, fields);
                }

                return r.BaseStream.Position == description.Length ? new SavedLayout(types) : throw new InvalidDataException("layout description: bytes left after it");
            }
            catch (EndOfStreamException)
            {
                throw new InvalidDataException("layout description cut short");
            }
        }
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

    private void ReadFields(BinaryReader r, object o, SavedLayout? saved)
    {
        var plans = _fields[o.GetType()];
        if (saved is null)
        {
            foreach (var plan in plans)
            {
                ReadField(r, o, plan, null);
            }

            return;
        }

        // Another build's layout: its fields in its order, each read into this build's field of the same name and type,
        // or skipped; this build's fields it lacks keep what the constructor gave them.
        var type = o.GetType();
        if (!saved.Types.TryGetValue(Name(type), out var was) || was.Kind is not (Kind.Struct or Kind.Object))
        {
            throw new InvalidDataException($"{type.Name}: the saved layout does not describe it");
        }

        var ours = Own.Types[Name(type)].Fields;
        foreach (var field in was.Fields)
        {
            var i = Array.FindIndex(ours, f => f.Name == field.Name);
            if (i >= 0 && Matches(saved, ours[i], field))
            {
                ReadField(r, o, plans[i], saved);
            }
            else
            {
                Skip(r, saved, field.Type, 0);
            }
        }
    }

    private void ReadField(BinaryReader r, object o, FieldPlan plan, SavedLayout? saved)
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

                return;
            }
        }
        else if (plan.Element is not null)
        {
            value = ReadArray(r, plan.Element, (Array?)field.GetValue(o), plan.Fixed, new Where(field), plan.Size, saved);
        }
        else
        {
            value = ReadValue(r, field.FieldType, field.GetValue(o), plan.Fixed, new Where(field), saved);
        }

        if (!plan.Fixed)
        {
            field.SetValue(o, value);
        }
    }

    // Passes over a value the writer saved for a field this build does not have, by the writer's description of its type.
    private static void Skip(BinaryReader r, SavedLayout saved, string typeName, int depth)
    {
        if (depth > 64 || !saved.Types.TryGetValue(typeName, out var t))
        {
            throw new InvalidDataException($"the saved layout does not describe {typeName}");
        }

        switch (t.Kind)
        {
            case Kind.Scalar:
                SkipBytes(r, t.Size);
                break;
            case Kind.String:
                if (r.ReadBoolean())
                {
                    SkipBytes(r, r.Read7BitEncodedInt());
                }

                break;
            case Kind.Array or Kind.List:
                var count = r.ReadInt32();
                if (count < -1 || (r.BaseStream.CanSeek && count > r.BaseStream.Length - r.BaseStream.Position))
                {
                    throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture, $"{typeName}: saved {count} elements, more than the state holds"));
                }

                if (saved.Types.TryGetValue(t.Element, out var e) && e.Kind == Kind.Scalar)
                {
                    SkipBytes(r, (long)Math.Max(0, count) * e.Size);
                    break;
                }

                for (var i = 0; i < count; i++)
                {
                    Skip(r, saved, t.Element, depth + 1);
                }

                break;
            case Kind.Struct:
                foreach (var f in t.Fields)
                {
                    Skip(r, saved, f.Type, depth + 1);
                }

                break;
            default:
                if (r.ReadBoolean())
                {
                    foreach (var f in t.Fields)
                    {
                        Skip(r, saved, f.Type, depth + 1);
                    }
                }

                break;
        }
    }

    private static void SkipBytes(BinaryReader r, long count)
    {
        if (count < 0)
        {
            throw new InvalidDataException("negative length");
        }

        if (r.BaseStream.CanSeek)
        {
            if (count > r.BaseStream.Length - r.BaseStream.Position)
            {
                throw new EndOfStreamException();
            }

            r.BaseStream.Seek(count, SeekOrigin.Current);
            return;
        }

        Span<byte> buffer = stackalloc byte[256];
        for (; count > 0; count -= buffer.Length)
        {
            r.BaseStream.ReadExactly(buffer[..(int)Math.Min(count, buffer.Length)]);
        }
    }

    /// <summary>The field (and element) a value is read for: named only when a message needs it.</summary>
    private readonly record struct Where(FieldInfo Field, int Index = -1)
    {
        public override string ToString() =>
            $"{Field.DeclaringType!.Name}.{Field.Name}" + (Index >= 0 ? string.Create(CultureInfo.InvariantCulture, $"[{Index}]") : "");
    }

    // Reads one value; `current` is what the target holds (filled in place where it can be); `fixedHere` = a read-only field.
    private object? ReadValue(BinaryReader r, Type t, object? current, bool fixedHere, Where where, SavedLayout? saved)
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
                var text = r.ReadBoolean() ? ReadString(r) : null;
                if (fixedHere && !string.Equals((string?)current, text, StringComparison.Ordinal))
                {
                    throw new InvalidDataException($"{where}: saved '{text}', the configuration now gives '{current}'");
                }

                return text;
            case Kind.Array:
                var element = t.GetElementType()!;
                return ReadArray(r, element, (Array?)current, fixedHere, where, _kinds[element] == Kind.Scalar ? ScalarSize(element) : 0, saved);
            case Kind.List:
                return ReadList(r, t, (IList?)current, fixedHere, where, saved);
            case Kind.Struct:
                // Boxed: the fields are set in the box, which the caller stores back.
                var boxed = current ?? Activator.CreateInstance(t)!;
                ReadFields(r, boxed, saved);
                return boxed;
            default:
                var present = r.ReadBoolean();
                if (present != current is not null)
                {
                    throw new InvalidDataException($"{where}: saved {(present ? "with" : "without")} it, the configuration now {(current is null ? "does not use" : "uses")} it");
                }

                if (current is not null)
                {
                    ReadFields(r, current, saved);
                }

                return current;
        }
    }

    private IList? ReadList(BinaryReader r, Type t, IList? current, bool fixedHere, Where where, SavedLayout? saved)
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
            list.Add(ReadValue(r, element, null, false, where with { Index = i }, saved));
        }

        return list;
    }

    // elementSize: the size of a scalar element, 0 for elements read one by one.
    private Array? ReadArray(BinaryReader r, Type element, Array? current, bool fixedHere, Where where, int elementSize, SavedLayout? saved)
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
            array.SetValue(ReadValue(r, element, array.GetValue(i), fixedHere: false, where with { Index = i }, saved), i);
        }

        return array;
    }
}
