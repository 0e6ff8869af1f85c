namespace EdgeTwin.Agent.Twin;

/// <summary>The twin stages' state files (anomaly detectors, maintenance history): written whole, never torn.</summary>
internal static class AtomicStateFile
{
    /// <summary>Writes <paramref name="bytes"/> to <paramref name="path"/>: temp file, flushed to disk, renamed over the old file.</summary>
    public static async Task WriteAsync(string path, byte[] bytes, CancellationToken cancellationToken)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (!string.IsNullOrEmpty(dir))
        {
            Directory.CreateDirectory(dir);
        }

        var temp = path + ".tmp";
        try
        {
            await using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 1, FileOptions.Asynchronous))
            {
                await stream.WriteAsync(bytes, cancellationToken).ConfigureAwait(false);

                // On disk before the rename: after a power cut the file is the old state or the new one, never a torn one.
                stream.Flush(flushToDisk: true);
            }

            File.Move(temp, path, overwrite: true);
        }
        catch
        {
            // A full disk leaves a partial temp file: remove it so it does not hold the space the outbox needs.
            TryDelete(temp);
            throw;
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    /// <summary>
    /// Moves a state file that could not be read to <c>PATH.corrupt</c> (kept for a look, out of the way of the next
    /// write); returns where it went, or why it could not be moved, for the warning.
    /// </summary>
    public static string SetAside(string path)
    {
        var aside = path + ".corrupt";
        try
        {
            File.Move(path, aside, overwrite: true);
            return aside;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return $"not moved: {ex.Message}";
        }
    }
}
