namespace EdgeTwin.IntegrationTests.Deployment;

/// <summary>A fresh directory under the temp path, deleted (with everything in it) on dispose.</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir() => Path = Directory.CreateTempSubdirectory("edgetwin-deploy-").FullName;

    public string Path { get; }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a file still held open by a killed process must not fail the test.
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
