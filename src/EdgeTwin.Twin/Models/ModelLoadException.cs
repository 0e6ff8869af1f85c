namespace EdgeTwin.Twin.Models;

/// <summary>A manifest or model file that cannot be used, naming the file and the field at fault.</summary>
public sealed class ModelLoadException : Exception
{
    public ModelLoadException(string file, string field, string problem, Exception? inner = null)
        : base(Format(file, field, problem), inner)
    {
        File = file;
        Field = field;
        Problem = problem;
    }

    public ModelLoadException()
        : this("", "", "model load failed")
    {
    }

    public ModelLoadException(string message)
        : this("", "", message)
    {
    }

    public ModelLoadException(string message, Exception innerException)
        : this("", "", message, innerException)
    {
    }

    /// <summary>The manifest or model file.</summary>
    public string File { get; }

    /// <summary>JSON path of the field (<c>models[0].sha256</c>) or the model's part (<c>inputs.window</c>); empty for the whole file.</summary>
    public string Field { get; }

    /// <summary>What is wrong, without the location.</summary>
    public string Problem { get; }

    private static string Format(string file, string field, string problem) =>
        (file.Length, field.Length) switch
        {
            (0, 0) => problem,
            (_, 0) => $"{file}: {problem}",
            _ => $"{file}: {field}: {problem}",
        };
}
