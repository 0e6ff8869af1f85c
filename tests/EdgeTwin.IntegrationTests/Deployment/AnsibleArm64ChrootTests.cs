using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace EdgeTwin.IntegrationTests.Deployment;

/// <summary>
/// The role's arm64 path applied for real: site.yml through the chroot connection into an arm64 Debian 12 root
/// (debootstrap with python3 and systemd for Ansible, cached) run under qemu-aarch64-static via binfmt_misc, with the
/// linux-arm64 release from release.sh as the only tarball offered. The host's architecture fact is what the emulated
/// python reports (aarch64), so the role's aarch64 → linux-arm64 mapping picks the tarball; `edgetwin check` and the
/// <c>exec</c> readiness check (READY=1 awaited) run the arm64 agent under qemu. The emulation's own settings
/// (<see cref="Arm64Emulation"/>) reach the agent through the test's namespace and the controller's environment, not
/// through the role, which installs exactly what it installs on a real gateway. As in AnsibleChrootTests, a chroot has
/// no systemd: edgetwin_manage_service=false, readiness exec.
/// </summary>
public sealed partial class AnsibleArm64ChrootTests(ITestOutputHelper output)
{
    // A play is mostly emulated python (one per module) and the agent's start under qemu (about 24 s on an idle machine,
    // see Arm64QemuTests); the limits are for a machine loaded by the suite.
    private static readonly TimeSpan PlayTimeout = TimeSpan.FromMinutes(40);
    private const int ReadyTimeoutSeconds = 600;

    private const ushort ElfMachineAarch64 = 183; // EM_AARCH64

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Role_installs_the_arm64_release_in_an_arm64_chroot_under_qemu_passes_the_readiness_check_and_is_idempotent()
    {
        Tool.Require("ansible-playbook", "ansible");
        Tool.Require("unshare", "util-linux");

        var rootTar = await DeployCache.DebianRootAsync("arm64", output.WriteLine, Ct);
        await Arm64Emulation.RequireBinfmtAsync(Ct);
        var release = await DeployCache.ReleaseAsync("linux-arm64", output.WriteLine, Ct);
        var version = DeployCache.StampedVersion();

        using var work = new TempDir();
        var root = Path.Combine(work.Path, "root");
        await DeployCache.ExtractAsync(rootTar, root, Ct);
        // Only the arm64 tarball is offered: a wrong architecture mapping fails at the SHA256SUMS check.
        var src = Directory.CreateDirectory(Path.Combine(work.Path, "release-src")).FullName;
        File.Copy(release, Path.Combine(src, Path.GetFileName(release)));
        var releaseSum = Tool.Sha256(release);
        await File.WriteAllTextAsync(Path.Combine(src, "SHA256SUMS"), $"{releaseSum}  {Path.GetFileName(release)}\n", Ct);

        var inventory = await Tool.ChrootInventoryAsync(work.Path, root, Ct);
        var vars = Path.Combine(work.Path, "vars.json");
        await File.WriteAllTextAsync(vars, JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["ansible_become"] = false, // already root in the chroot; minbase has no sudo
            ["edgetwin_version"] = version,
            ["edgetwin_release_src"] = src,
            ["edgetwin_manage_service"] = false,
            ["edgetwin_readiness"] = "exec",
            ["edgetwin_ready_timeout"] = ReadyTimeoutSeconds,
            ["edgetwin_ready_settle"] = 3,
            ["edgetwin_site_id"] = "dc-test",
            ["edgetwin_credentials"] = new Dictionary<string, object> { ["pub"] = new Dictionary<string, string> { ["version"] = "2c", ["community"] = AnsibleChrootTests.Community } },
            ["edgetwin_devices"] = new[] { AnsibleChrootTests.Device("ups1", "ietf-ups-mib") },
        }), Ct);

        // 1. Converge. -v: the readiness check's own verdict (READY=1 after N s, a clean stop) is in the output.
        var clock = Stopwatch.StartNew();
        var (first, firstChanged) = await PlayAsync(root, inventory, vars, ["-v"]);
        var firstTime = clock.Elapsed;
        Assert.True(first.ExitCode == 0, first.Explained);
        Assert.True(firstChanged > 0, first.All);
        Assert.Matches(@"TASK \[edgetwin : Wait until the new release is ready[^\n]*\n(ok|changed): \[gw1\]", first.All);
        var ready = ReadyLine().Match(first.All);
        Assert.True(ready.Success, $"no verdict of edgetwin-ready exec in the output:\n{first.All}");

        // The arm64 release is the one installed and current.
        var currentLink = Path.Combine(root, "opt", "edgetwin", "current");
        Assert.Equal(version, Path.GetFileName(new FileInfo(currentLink).LinkTarget ?? ""));
        var releaseDir = Path.Combine(root, "opt", "edgetwin", "releases", version);
        Assert.Equal(releaseSum, await File.ReadAllTextAsync(Path.Combine(releaseDir, ".edgetwin-unpacked"), Ct));
        Assert.Equal(ElfMachineAarch64, ElfMachine(Path.Combine(releaseDir, "edgetwin")));
        Assert.Equal(ElfMachineAarch64, ElfMachine(Path.Combine(releaseDir, "libonnxruntime.so")));

        // Unit and config in place; the unit is the gateway's, without the emulation's settings.
        var unit = Path.Combine(root, "etc", "systemd", "system", "edgetwin.service");
        RootAssert.File(unit, "0644", "root", "root");
        var unitText = await File.ReadAllTextAsync(unit, Ct);
        Assert.Contains("ExecStart=/opt/edgetwin/current/edgetwin run --config /etc/edgetwin/edgetwin.yaml", unitText, StringComparison.Ordinal);
        Assert.DoesNotContain("DOTNET_EnableWriteXorExecute", unitText, StringComparison.Ordinal);
        Assert.True(new FileInfo(Path.Combine(root, "etc", "systemd", "system", "multi-user.target.wants", "edgetwin.service")).LinkTarget is not null, "unit not enabled");
        var config = Path.Combine(root, "etc", "edgetwin", "edgetwin.yaml");
        RootAssert.File(config, "0640", "root", "edgetwin");
        var configText = await File.ReadAllTextAsync(config, Ct);
        Assert.Contains("gateway_id: gw1", configText, StringComparison.Ordinal);
        Assert.Contains($"profiles_dir: /etc/edgetwin/profiles/{version}-", configText, StringComparison.Ordinal);
        RootAssert.Dir(Path.Combine(root, "etc", "edgetwin", "models"), "0750", "root", "edgetwin");

        // 2. Nothing to do the second time, and an untouched gateway is not probed again.
        clock.Restart();
        var (second, secondChanged) = await PlayAsync(root, inventory, vars, []);
        var secondTime = clock.Elapsed;
        Assert.True(second.ExitCode == 0, second.Explained);
        Assert.True(secondChanged == 0, second.All);
        Assert.Matches(@"TASK \[edgetwin : Wait until the new release is ready[^\n]*\nskipping: \[gw1\]", second.All);

        Console.WriteLine($"arm64 role under qemu: converge {firstTime.TotalSeconds:0} s ({ready.Value}), second run {secondTime.TotalSeconds:0} s, changed=0");
    }

    private async Task<(Tool.Result Result, int Changed)> PlayAsync(string root, string inventory, string vars, IReadOnlyList<string> extra) =>
        await Tool.PlayInChrootAsync(root, inventory, vars, extra, output.WriteLine, PlayTimeout, Ct, arm64Emulation: true);

    /// <summary>e_machine of an ELF file (asserted 64-bit little-endian ELF).</summary>
    private static ushort ElfMachine(string path)
    {
        var header = new byte[20];
        using (var file = File.OpenRead(path))
        {
            file.ReadExactly(header);
        }

        Assert.True(header[0] == 0x7F && header[1] == 'E' && header[2] == 'L' && header[3] == 'F', $"{path} is not an ELF file");
        Assert.True(header[4] == 2 && header[5] == 1, $"{path} is not a 64-bit little-endian ELF file");
        return System.Buffers.Binary.BinaryPrimitives.ReadUInt16LittleEndian(header.AsSpan(18));
    }

    [GeneratedRegex(@"edgetwin-ready: ready \(READY=1 after [\d.]+s[^)]*\)")]
    private static partial Regex ReadyLine();
}
