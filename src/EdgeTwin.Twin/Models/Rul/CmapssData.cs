using System.Globalization;

namespace EdgeTwin.Twin.Models.Rul;

/// <summary>Readers for NASA's C-MAPSS text files (train_/test_FDxxx.txt, RUL_FDxxx.txt).</summary>
public static class CmapssData
{
    /// <summary>Rows of a train or test file grouped by unit (in file order), each row the 26 columns.</summary>
    /// <exception cref="FormatException">A line that is not 26 numbers; the message names file and line.</exception>
    public static IReadOnlyList<(int Unit, List<double[]> Rows)> ReadUnits(string path)
    {
        var units = new List<(int Unit, List<double[]> Rows)>();
        var lineNo = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }

            var parts = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length < CmapssPreprocessor.RowColumns)
            {
                throw new FormatException($"{path}:{lineNo}: expected {CmapssPreprocessor.RowColumns} columns, found {parts.Length}");
            }

            var row = new double[CmapssPreprocessor.RowColumns];
            for (var i = 0; i < row.Length; i++)
            {
                if (!double.TryParse(parts[i], NumberStyles.Float, CultureInfo.InvariantCulture, out row[i]))
                {
                    throw new FormatException($"{path}:{lineNo}: column {i + 1} '{parts[i]}' is not a number");
                }
            }

            var unit = (int)row[0];
            if (units.Count == 0 || units[^1].Unit != unit)
            {
                units.Add((unit, []));
            }

            units[^1].Rows.Add(row);
        }

        return units;
    }

    /// <summary>One true RUL per line, in test-unit order.</summary>
    public static IReadOnlyList<double> ReadRul(string path)
    {
        var list = new List<double>();
        var lineNo = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }

            if (!double.TryParse(line.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || v < 0)
            {
                throw new FormatException($"{path}:{lineNo}: '{line.Trim()}' is not a RUL");
            }

            list.Add(v);
        }

        return list;
    }
}
