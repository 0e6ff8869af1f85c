namespace EdgeTwin.Twin.Multivariate;

/// <summary>The last <c>window</c> rows of one group's series (raw units), in a ring allocated once.</summary>
public sealed class MultivariateWindow
{
    private readonly double[] _rows;
    private int _next;

    public MultivariateWindow(int window, int features)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(window, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(features, 1);
        Window = window;
        Features = features;
        _rows = new double[window * features];
    }

    public int Window { get; }

    public int Features { get; }

    /// <summary>Rows pushed so far (saturates at nothing: a long count).</summary>
    public long Count { get; private set; }

    public bool IsFull => Count >= Window;

    public void Push(ReadOnlySpan<double> row)
    {
        if (row.Length != Features)
        {
            throw new ArgumentException($"a row has {Features} values, got {row.Length}", nameof(row));
        }

        row.CopyTo(_rows.AsSpan(_next * Features, Features));
        _next = (_next + 1) % Window;
        Count++;
    }

    public void Clear()
    {
        Count = 0;
        _next = 0;
    }

    /// <summary>Writes the window oldest row first, z-scored with the model's normalisation.</summary>
    public void CopyNormalised(Span<float> destination, MultivariateModelSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var k = 0;
        for (var r = 0; r < Window; r++)
        {
            var row = (_next + r) % Window * Features;
            for (var f = 0; f < Features; f++)
            {
                destination[k++] = (float)((_rows[row + f] - spec.Mean[f]) / spec.Std[f]);
            }
        }
    }
}
