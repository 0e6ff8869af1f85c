namespace EdgeTwin.IntegrationTests.Deployment;

/// <summary>
/// How the deployment tests run an arm64 Debian root on this x86-64 machine: qemu-aarch64-static through binfmt_misc,
/// plus two settings for the emulation only, never for a real ARM64 gateway. qemu 7.2 user mode passes the host's x86
/// /proc/cpuinfo through, which ONNX Runtime's CPU detection cannot parse, so an ARM one (fixtures/cpuinfo-arm64, a
/// Cortex-A72) is bind-mounted over the root's /proc/cpuinfo inside a private mount namespace; and
/// DOTNET_EnableWriteXorExecute=0, because the runtime's W^X double mapping of JIT code is unstable under qemu's
/// user-mode emulation.
/// </summary>
internal static class Arm64Emulation
{
    public static string CpuInfo => Path.Combine(Tool.RepoRoot(), "tests", "EdgeTwin.IntegrationTests", "Deployment", "fixtures", "cpuinfo-arm64");

    /// <summary>The environment an emulated agent needs (see the class summary).</summary>
    public static IReadOnlyDictionary<string, string> Environment { get; } = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["DOTNET_EnableWriteXorExecute"] = "0",
    };

    /// <summary>
    /// Registers qemu-aarch64 with binfmt_misc (scripts/binfmt-aarch64.sh) unless it already is; skips the calling
    /// test, with the reason printed, when that is not possible here.
    /// </summary>
    public static async Task RequireBinfmtAsync(CancellationToken ct)
    {
        var binfmt = await Tool.RunAsync("/bin/bash", [Path.Combine(DeployCache.ScriptsDir, "binfmt-aarch64.sh")], TimeSpan.FromMinutes(1), ct);
        if (binfmt.ExitCode != 0)
        {
            var reason = $"cannot register qemu-aarch64 with binfmt_misc here: {binfmt.All.Trim()}";
            Console.WriteLine($"SKIP: {reason}");
            Assert.Skip(reason);
        }
    }
}
