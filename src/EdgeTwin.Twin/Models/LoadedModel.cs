using System.Security.Cryptography;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace EdgeTwin.Twin.Models;

/// <summary>
/// A verified model: its manifest entry and its one <see cref="InferenceSession"/>. The session is shared by all
/// runners of the model and reference-counted, so a hot reload can retire it while a runner is mid-inference:
/// it is disposed when the last lease is returned.
/// </summary>
public sealed class LoadedModel
{
    private readonly InferenceSession _session;
    private int _leases = 1; // the catalog's own reference
    private int _retired;

    private LoadedModel(ModelEntry entry, string path, InferenceSession session, ModelFileStamp stamp)
    {
        Entry = entry;
        Path = path;
        _session = session;
        Stamp = stamp;
    }

    /// <summary>Size and write time of the file when it was read: a reload re-verifies the model when they change.</summary>
    internal ModelFileStamp Stamp { get; }

    public ModelEntry Entry { get; }

    /// <summary>Full path of the ONNX file.</summary>
    public string Path { get; }

    /// <summary>The session; valid while you hold a lease (<see cref="TryAcquire"/>).</summary>
    public InferenceSession Session => _session;

    /// <summary>
    /// Reads the file once, checks its SHA-256 against the manifest, opens the session from those same bytes (so
    /// the file cannot change between check and load), checks the session's inputs and outputs against the entry, then
    /// the entry's kind-specific metadata (<see cref="ModelKinds.Verify"/>).
    /// </summary>
    /// <exception cref="ModelLoadException">Bad metadata, missing file, wrong hash, not ONNX, or a tensor that does not match.</exception>
    public static LoadedModel Load(ModelEntry entry, string directory, string manifestPath)
    {
        ArgumentNullException.ThrowIfNull(entry);
        var path = System.IO.Path.GetFullPath(System.IO.Path.Combine(directory, entry.File));
        byte[] bytes;
        ModelFileStamp stamp;
        try
        {
            // Stamp before reading: a write that lands after it changes the stamp, so the next reload re-verifies.
            stamp = ModelFileStamp.Of(path);
            bytes = File.ReadAllBytes(path);
        }
        catch (FileNotFoundException e)
        {
            throw new ModelLoadException(path, "", $"missing (named by {manifestPath} model '{entry.Name}')", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ModelLoadException(path, "", $"cannot read: {e.Message}", e);
        }

        var sha = Convert.ToHexStringLower(SHA256.HashData(bytes));
        if (!string.Equals(sha, entry.Sha256, StringComparison.Ordinal))
        {
            throw new ModelLoadException(path, "sha256", $"file hash {sha} does not match the manifest's {entry.Sha256} (model '{entry.Name}' in {manifestPath}); the file is damaged or the manifest is stale");
        }

        InferenceSession session;
        try
        {
            using var options = new SessionOptions
            {
                // One thread per session: the gateway has two cores and many series; latency is ~0.1 ms anyway.
                IntraOpNumThreads = 1,
                InterOpNumThreads = 1,
                ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
                GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
                LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR,
            };
            session = new InferenceSession(bytes, options);
        }
        catch (OnnxRuntimeException e)
        {
            throw new ModelLoadException(path, "", $"not a loadable ONNX model: {e.Message}", e);
        }

        try
        {
            Check(entry.Inputs, session.InputMetadata, path, "inputs");
            Check(entry.Outputs, session.OutputMetadata, path, "outputs");

            // After the session checks (a shape that disagrees with the graph is the more basic fault), before the
            // swap: metadata no runner can bind must not replace a version that serves.
            ModelKinds.Verify(entry, manifestPath);
        }
        catch
        {
            session.Dispose();
            throw;
        }

        return new LoadedModel(entry, path, session, stamp);
    }

    /// <summary>Takes a lease on the session; false when the model was retired and its session disposed.</summary>
    public bool TryAcquire()
    {
        while (true)
        {
            var n = Volatile.Read(ref _leases);
            if (n == 0)
            {
                return false;
            }

            if (Interlocked.CompareExchange(ref _leases, n + 1, n) == n)
            {
                return true;
            }
        }
    }

    /// <summary>Returns a lease taken with <see cref="TryAcquire"/>.</summary>
    public void Release()
    {
        if (Interlocked.Decrement(ref _leases) == 0)
        {
            _session.Dispose();
        }
    }

    /// <summary>Drops the catalog's reference; the session goes when the last runner lets go.</summary>
    internal void Retire()
    {
        if (Interlocked.Exchange(ref _retired, 1) == 0)
        {
            Release();
        }
    }

    private static void Check(IReadOnlyList<TensorSpec> specs, IReadOnlyDictionary<string, NodeMetadata> actual, string path, string what)
    {
        if (specs.Count != actual.Count)
        {
            throw new ModelLoadException(path, what, $"the manifest lists {specs.Count} {what} ({string.Join(", ", specs.Select(s => s.Name))}), the model has {actual.Count} ({string.Join(", ", actual.Keys)})");
        }

        foreach (var spec in specs)
        {
            if (!actual.TryGetValue(spec.Name, out var meta))
            {
                throw new ModelLoadException(path, $"{what}.{spec.Name}", $"the model has no such tensor (it has {string.Join(", ", actual.Keys)})");
            }

            if (!meta.IsTensor || meta.ElementDataType != TensorElementType.Float)
            {
                throw new ModelLoadException(path, $"{what}.{spec.Name}", $"the model's tensor is {meta.ElementDataType}, the manifest says {spec.Type}");
            }

            var dims = meta.Dimensions;
            var ok = dims.Length == spec.Shape.Count;
            for (var i = 0; ok && i < dims.Length; i++)
            {
                // -1 is a symbolic (any-size) dimension; it must be symbolic on both sides.
                ok = (dims[i] < 0 && spec.Shape[i] < 0) || dims[i] == spec.Shape[i];
            }

            if (!ok)
            {
                throw new ModelLoadException(path, $"{what}.{spec.Name}.shape", $"the model's shape is [{string.Join(",", dims)}], the manifest says {spec.ShapeText}");
            }
        }
    }
}

/// <summary>Length and last write time of a model file (missing: length -1).</summary>
internal readonly record struct ModelFileStamp(long Length, DateTime LastWriteUtc)
{
    public static ModelFileStamp Of(string path)
    {
        var info = new FileInfo(path);
        return info.Exists ? new ModelFileStamp(info.Length, info.LastWriteTimeUtc) : new ModelFileStamp(-1, default);
    }
}
