namespace EdgeTwin.Agent.Hosting;

/// <summary>The kernel's id of this boot: the same for every process until the next boot (power cut, reboot).</summary>
internal static class BootId
{
    private const string Path = "/proc/sys/kernel/random/boot_id";

    /// <summary>The id, or null where it cannot be read (not Linux, a restricted /proc): earlier runs then never count as this boot's.</summary>
    public static string? Read()
    {
        try
        {
            var id = File.ReadAllText(Path).Trim();
            return id.Length > 0 ? id : null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
