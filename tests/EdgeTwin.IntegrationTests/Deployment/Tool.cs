using System.Diagnostics;
using System.Text;

namespace EdgeTwin.IntegrationTests.Deployment;

/// <summary>Runs an external tool with a timeout (the process tree is killed when it runs over) and captures its output.</summary>
internal static partial class Tool
{
    internal sealed partial record Result(int ExitCode, string StdOut, string StdErr)
    {
        public string All => StdOut + StdErr;

        /// <summary>
        /// Why the run failed, first, then all its output. A failed test's summary in CI shows only the first lines of
        /// its message, and a failed play's output begins with dozens of tasks that went well: the ansible-playbook run
        /// that failed one CI (a converge of AnsibleRoleTests, exit non-zero after 5 s) showed only "PLAY [all]" and
        /// "Gathering Facts ok", not the task that failed.
        /// </summary>
        public string Explained
        {
            get
            {
                var why = new List<string>();
                var task = "";
                foreach (var line in All.Split('\n'))
                {
                    if (line.StartsWith("TASK [", StringComparison.Ordinal))
                    {
                        task = line.TrimEnd('*', ' ');
                    }
                    else if (line.StartsWith("fatal: ", StringComparison.Ordinal) || line.StartsWith("failed: ", StringComparison.Ordinal) ||
                             line.Contains("ERROR!", StringComparison.Ordinal))
                    {
                        // A module says why in msg, a command in stderr (its msg is only "non-zero return code").
                        var fields = AnsibleField().Matches(line).Where(m => m.Groups[2].Length > 0)
                                                   .Select(m => m.Groups[1].Value + ": " + m.Groups[2].Value).ToList();
                        why.Add((task.Length > 0 ? task + ": " : "") + (fields.Count > 0 ? string.Join("; ", fields) : line));
                    }
                }

                if (why.Count == 0)
                {
                    why.AddRange(All.Split('\n').Where(l => l.Trim().Length > 0).TakeLast(5));
                }

                return $"exit {ExitCode}: " + string.Join("\n", why) + "\n--- all output ---\n" + All;
            }
        }

        [System.Text.RegularExpressions.GeneratedRegex(@"""(msg|stderr)"": ""((?:[^""\\]|\\.)*)""")]
        private static partial System.Text.RegularExpressions.Regex AnsibleField();
    }

    /// <summary>The full path of <paramref name="name"/> on PATH (or the path itself when it is absolute and exists), else null.</summary>
    public static string? Find(string name)
    {
        if (Path.IsPathRooted(name))
        {
            return File.Exists(name) ? name : null;
        }

        var path = Environment.GetEnvironmentVariable("PATH") ?? "/usr/local/bin:/usr/bin:/bin";
        foreach (var dir in path.Split(':', StringSplitOptions.RemoveEmptyEntries).Concat(["/usr/sbin", "/sbin"]))
        {
            var candidate = Path.Combine(dir, name);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    public static async Task<Result> RunAsync(
        string fileName,
        IEnumerable<string> arguments,
        TimeSpan timeout,
        CancellationToken cancellationToken,
        string? workingDirectory = null,
        IReadOnlyDictionary<string, string>? environment = null)
    {
        var psi = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Path.GetTempPath(),
        };
        foreach (var a in arguments)
        {
            psi.ArgumentList.Add(a);
        }

        foreach (var (k, v) in environment ?? new Dictionary<string, string>())
        {
            psi.Environment[k] = v;
        }

        using var process = new Process { StartInfo = psi };
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) { lock (stdout) { stdout.AppendLine(e.Data); } } };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lock (stderr) { stderr.AppendLine(e.Data); } } };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
            if (cancellationToken.IsCancellationRequested)
            {
                throw;
            }

            throw new TimeoutException($"{fileName} {string.Join(' ', psi.ArgumentList)} did not finish within {timeout}; output so far:\n{stdout}{stderr}");
        }

        process.WaitForExit(); // flushes the asynchronous output readers
        return new Result(process.ExitCode, stdout.ToString(), stderr.ToString());
    }

    /// <summary>The repository root (the directory holding EdgeTwin.sln), found upwards from the test binary.</summary>
    public static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "EdgeTwin.sln")))
            {
                return dir.FullName;
            }
        }

        throw new DirectoryNotFoundException($"EdgeTwin.sln not found above {AppContext.BaseDirectory}");
    }

    /// <summary>The tool's path; without it the test is skipped, and the reason printed for the run's summary log.</summary>
    public static string Require(string tool, string package)
    {
        var path = Find(tool);
        if (path is null)
        {
            var reason = $"{tool} (Debian package '{package}') is not installed";
            Console.WriteLine($"SKIP: {reason}");
            Assert.Skip(reason);
        }

        return path;
    }

    /// <summary>
    /// Runs one of the role's task files (<c>tasks_from</c>) on this machine over a local connection, with the role
    /// from this repository and <paramref name="extraVarsJson"/> as <c>-e</c>; the play is written to <paramref name="workDir"/>.
    /// </summary>
    public static async Task<Result> RunRoleTasksAsync(string playbook, string workDir, string tasksFrom, string extraVarsJson, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var play = Path.Combine(workDir, Path.GetFileNameWithoutExtension(tasksFrom) + "-play.yml");
        await File.WriteAllTextAsync(play, $"""
            - hosts: localhost
              gather_facts: false
              tasks:
                - ansible.builtin.import_role:
                    name: edgetwin
                    tasks_from: {tasksFrom}
            """, cancellationToken);
        var env = new Dictionary<string, string> { ["ANSIBLE_ROLES_PATH"] = Path.Combine(RepoRoot(), "ansible", "roles"), ["ANSIBLE_NOCOLOR"] = "1" };
        return await RunAsync(playbook, ["-i", "localhost,", "-c", "local", "-e", extraVarsJson, play], timeout, cancellationToken, workDir, env);
    }

    /// <summary>An inventory in <paramref name="dir"/> with one gateway, gw1, reached over the chroot connection into <paramref name="root"/>.</summary>
    public static async Task<string> ChrootInventoryAsync(string dir, string root, CancellationToken cancellationToken)
    {
        var inventory = Path.Combine(dir, "hosts.ini");
        await File.WriteAllTextAsync(inventory, $"[edgetwin_gateways]\ngw1 ansible_connection=community.general.chroot ansible_host={root} ansible_python_interpreter=/usr/bin/python3\n", cancellationToken);
        return inventory;
    }

    /// <summary>Every file under <paramref name="dir"/> (relative path) with its SHA-256.</summary>
    public static SortedDictionary<string, string> Snapshot(string dir)
    {
        Assert.True(Directory.Exists(dir), $"{dir} does not exist");
        var result = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var file in Directory.GetFiles(dir, "*", SearchOption.AllDirectories))
        {
            result[Path.GetRelativePath(dir, file)] = Sha256(file);
        }

        return result;
    }

    /// <summary>The SHA-256 of a file, lower-case hex, as SHA256SUMS writes it.</summary>
    public static string Sha256(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(stream));
    }

    /// <summary>
    /// The <c>sh -c</c> script, run by <c>unshare -m</c> with the root as <c>$0</c>, that mounts /proc and /dev into
    /// the root (the .NET host needs /proc/self/exe and /dev/urandom); with <paramref name="cpuInfo"/>, also binds
    /// <c>$1</c> over the root's /proc/cpuinfo (<see cref="Arm64Emulation"/>). The mounts go away with the namespace.
    /// </summary>
    public static string MountIntoRootScript(bool cpuInfo) =>
        "mount -t proc proc \"$0/proc\" && " + (cpuInfo ? "mount --bind \"$1\" \"$0/proc/cpuinfo\" && " : "") + "mount --rbind /dev \"$0/dev\"";

    /// <summary>
    /// Runs <c>site.yml</c> (the repository's ansible directory) into the Debian root <paramref name="root"/> over the
    /// chroot connection of <paramref name="inventory"/>, with <paramref name="vars"/> as <c>-e @file</c> and
    /// <paramref name="extra"/> arguments; logs the command and output through <paramref name="log"/> and returns the
    /// result with host gw1's <c>changed=</c> count from the PLAY RECAP (asserted present). With
    /// <paramref name="arm64Emulation"/> (an arm64 root under qemu) the emulation's cpuinfo is mounted in the root and its
    /// environment set for ansible-playbook: the chroot connection passes the controller's environment into the root,
    /// so the agent the role runs there (<c>edgetwin check</c>, the <c>exec</c> readiness check) gets it, while the
    /// role itself, and what it installs on a gateway, stay as they are.
    /// </summary>
    public static async Task<(Result Result, int Changed)> PlayInChrootAsync(
        string root, string inventory, string vars, IReadOnlyList<string> extra, Action<string> log, TimeSpan timeout, CancellationToken cancellationToken,
        bool arm64Emulation = false)
    {
        // A private mount namespace: what is mounted into the root goes away with it, whatever happens.
        var args = new List<string> { "-m", "--propagation", "private", "--", "/bin/sh", "-c" };
        args.AddRange(arm64Emulation
            ? [MountIntoRootScript(cpuInfo: true) + " && shift && exec \"$@\"", root, Arm64Emulation.CpuInfo]
            : [MountIntoRootScript(cpuInfo: false) + " && exec \"$@\"", root]);
        args.AddRange([Find("ansible-playbook")!, "-i", inventory, "-e", "@" + vars]);
        args.AddRange(extra);
        args.Add("site.yml");
        var environment = new Dictionary<string, string>
        {
            ["ANSIBLE_NOCOLOR"] = "1",
            ["ANSIBLE_FORCE_COLOR"] = "0",
            ["ANSIBLE_LOCAL_TEMP"] = Path.GetTempPath(),
            ["ANSIBLE_RETRY_FILES_ENABLED"] = "0",
            // Fewer round trips into the chroot: modules piped to python3, only the facts the role uses (architecture).
            ["ANSIBLE_PIPELINING"] = "1",
            ["ANSIBLE_GATHER_SUBSET"] = "min",
        };
        if (arm64Emulation)
        {
            foreach (var (name, value) in Arm64Emulation.Environment)
            {
                environment[name] = value;
            }
        }

        var started = DateTime.UtcNow;
        var result = await RunAsync(Find("unshare")!, args, timeout, cancellationToken, Path.Combine(RepoRoot(), "ansible"), environment);
        log($"---- ansible-playbook {string.Join(' ', extra)} (exit {result.ExitCode}, {(DateTime.UtcNow - started).TotalSeconds:0} s)");
        log(result.All);
        var recap = System.Text.RegularExpressions.Regex.Match(result.StdOut, @"gw1\s*:\s*ok=\d+\s+changed=(\d+)");
        Assert.True(recap.Success, $"no PLAY RECAP for gw1:\n{result.All}");
        return (result, int.Parse(recap.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture));
    }

    /// <summary>
    /// Debian's interpreter, as the role's hosts have it (a python3 shim earlier on PATH may lack Debian's modules or not
    /// run for other users); without it the test is skipped with the reason printed.
    /// </summary>
    public static string DebianPython()
    {
        const string python = "/usr/bin/python3";
        if (!File.Exists(python))
        {
            const string reason = "/usr/bin/python3 (Debian package 'python3') is not installed";
            Console.WriteLine($"SKIP: {reason}");
            Assert.Skip(reason);
        }

        return python;
    }
}
