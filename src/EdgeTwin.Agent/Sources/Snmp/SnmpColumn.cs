using EdgeTwin.Core.Profiles;
using EdgeTwin.Snmp;

namespace EdgeTwin.Agent.Sources.Snmp;

internal sealed partial class SnmpSource
{
    /// <summary>
    /// Everything the source keeps about one column of a table: what the profile says, resolved once at start (its OID,
    /// its fallback, the row columns that qualify each of its rows, the step texts), and what this poll read for it. Before,
    /// each of these was an array per table of arrays per column (sixteen of them), and a setting meant one more.
    /// </summary>
    private sealed class SnmpColumn
    {
        /// <summary>How many kinds of row column there are; <see cref="RowColumnOf"/> takes 0 to this minus one.</summary>
        public const int RowColumnKinds = 3;

        public SnmpColumn(ProfileTable table, Oid oid, ProfileMetric metric)
        {
            Oid = oid;
            Metric = metric;
            Step = $"the walk of table {table.Name} column {metric.Name} ({oid.ToNumericString()})";
            if (metric.Fallback is { } f)
            {
                FallbackOid = Oid.Parse(f.Oid);
                FallbackMetric = metric with { Oid = f.Oid, Scale = f.Scale ?? metric.Scale, Fallback = null };
                FallbackStep = $"the walk of table {table.Name} column {metric.Name} fallback ({f.Oid})";
            }
            // A new per-row setting that reads a column of its own is one more line here (and RowColumnKinds), walked
            // and shared like these without further change.
            Scale = metric.RowScale is { } rs ? new RowColumn(Oid.Parse(rs.Oid)) : null;
            Unit = metric.RowUnit is { } ru ? new RowColumn(Oid.Parse(ru.Oid)) : null;
            Status = metric.RowStatus is { } st ? new RowColumn(Oid.Parse(st.Oid)) : null;
            RowColumns = [.. Enumerable.Range(0, RowColumnKinds).Select(RowColumnOf).OfType<RowColumn>()];
            RootLength = oid.Length;
        }

        public Oid Oid { get; }

        public ProfileMetric Metric { get; }

        /// <summary>The poll's step while this column is walked alone.</summary>
        public string Step { get; }

        /// <summary>The fallback's OID (ifInOctets for ifHCInOctets), or null.</summary>
        public Oid? FallbackOid { get; }

        /// <summary>The column as read from its fallback: its OID and scale, the same name and series.</summary>
        public ProfileMetric? FallbackMetric { get; }

        public string? FallbackStep { get; }

        /// <summary>The row_scale column (cmcIIIVarScale), or null.</summary>
        public RowColumn? Scale { get; }

        /// <summary>The row_unit column (cmcIIIVarUnit), or null.</summary>
        public RowColumn? Unit { get; }

        /// <summary>The row_status column (cmcIIIVarQuality, entPhySensorOperStatus), or null.</summary>
        public RowColumn? Status { get; }

        /// <summary>The row columns it has, in kind order (scale, unit, status): what a poll walks for it besides its own OID.</summary>
        public RowColumn[] RowColumns { get; }

        public RowColumn? RowColumnOf(int kind) => kind switch
        {
            0 => Scale,
            1 => Unit,
            2 => Status,
            _ => throw new ArgumentOutOfRangeException(nameof(kind)),
        };

        /// <summary>Where its OID is among its table's walk's roots when the columns are walked together.</summary>
        public int WalkRoot { get; set; } = -1;

        /// <summary>This poll's rows (from its own OID or its fallback's).</summary>
        public IReadOnlyList<VarBind> Walk { get; set; } = [];

        /// <summary>The length of the OID <see cref="Walk"/> was read under: its own, or its fallback's.</summary>
        public int RootLength { get; set; }

        /// <summary>Whether this poll's rows came from the fallback.</summary>
        public bool FromFallback { get; set; }

        /// <summary>The column as read this poll: its own, or its fallback's.</summary>
        public ProfileMetric Read => FromFallback ? FallbackMetric! : Metric;

        /// <summary>This poll's rows taken (at most max_rows), and whether the walk went past max_rows.</summary>
        public int RowCount { get; set; }

        public bool Cut { get; set; }

        /// <summary>The note last logged about it.</summary>
        public ColumnNote Note { get; set; }
    }

    /// <summary>A column whose cells qualify the rows of another (its scale, unit or status), and this poll's walk of it.</summary>
    private sealed class RowColumn(Oid oid)
    {
        public Oid Oid { get; } = oid;

        /// <summary>Where it is among its table's walk's roots when the columns are walked together.</summary>
        public int WalkRoot { get; set; } = -1;

        /// <summary>When it reads a longer walk of its table (a column of the same OID): that walk's first max_rows rows.</summary>
        public CappedRows? Cut { get; set; }

        /// <summary>This poll's rows (null before its first walk).</summary>
        public IReadOnlyList<VarBind>? Rows { get; set; }
    }
}
