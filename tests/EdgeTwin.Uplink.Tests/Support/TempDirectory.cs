namespace EdgeTwin.Uplink.Tests.Support;

/// <summary>A directory under the system's temp directory, deleted with everything in it when disposed.</summary>
internal sealed class TempDirectory(string prefix) : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory(prefix).FullName;

    public void Dispose() => Directory.Delete(Path, recursive: true);
}
