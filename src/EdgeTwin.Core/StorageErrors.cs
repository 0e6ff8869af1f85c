namespace EdgeTwin.Core;

/// <summary>
/// The errno of a failed write, which .NET gives as the <see cref="Exception.HResult"/> of the <see cref="IOException"/>
/// from a failed system call (Linux numbers, the same on x64 and arm64). Shared by the outbox and the alert store, which
/// both react to a file system the kernel remounted read-only under them.
/// </summary>
public static class StorageErrors
{
    public const int IoError = 5;
    public const int NoSpace = 28;
    public const int ReadOnlyFileSystem = 30;
    public const int QuotaExceeded = 122;

    /// <summary>True when <paramref name="ex"/> or an exception inside it is EROFS.</summary>
    public static bool IsReadOnlyFileSystem(Exception? ex)
    {
        for (var e = ex; e is not null; e = e.InnerException)
        {
            if (e is IOException { HResult: ReadOnlyFileSystem })
            {
                return true;
            }
        }

        return false;
    }
}
