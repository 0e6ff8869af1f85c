namespace EdgeTwin.Core.Samples;

/// <summary>Interned handle of a series, issued by <see cref="SeriesRegistry"/>. Dense from 0, so it indexes arrays.</summary>
public readonly record struct SeriesId(int Value) : IComparable<SeriesId>
{
    public static readonly SeriesId None = new(-1);

    public bool IsNone => Value < 0;

    public int CompareTo(SeriesId other) => Value.CompareTo(other.Value);

    public static bool operator <(SeriesId left, SeriesId right) => left.Value < right.Value;

    public static bool operator >(SeriesId left, SeriesId right) => left.Value > right.Value;

    public static bool operator <=(SeriesId left, SeriesId right) => left.Value <= right.Value;

    public static bool operator >=(SeriesId left, SeriesId right) => left.Value >= right.Value;

    public override string ToString() => Value.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
