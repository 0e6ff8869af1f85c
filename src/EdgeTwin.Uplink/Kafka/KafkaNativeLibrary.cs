using System.Runtime.InteropServices;
using System.Text.RegularExpressions;

namespace EdgeTwin.Uplink.Kafka;

/// <summary>
/// Loads librdkafka once for the process and, when no build of it can be loaded, says why in terms a site engineer can
/// act on: which file beside the binary needs which shared library the system lacks, and the Debian package that has
/// it. Confluent.Kafka's own error is only "Failed to load the librdkafka native library.", and it comes from the first
/// producer, where it looked like an unreachable cluster retried for ever.
/// </summary>
/// <remarks>
/// Confluent.Kafka tries, on glibc, <c>librdkafka.so</c> (needs cyrus <c>libsasl2.so.3</c>, for GSSAPI) and then
/// <c>centos8-librdkafka.so</c> (no libsasl2; PLAIN, SCRAM, OAUTHBEARER and TLS built in). The x64 release ships both,
/// so a minimal Debian gateway without libsasl2-2 runs the second.
/// </remarks>
public static partial class KafkaNativeLibrary
{
    private static readonly Lock Gate = new();
    private static string? _loaded;

    // The shared libraries the librdkafka builds of librdkafka.redist link against, beyond glibc, and their packages.
    private static readonly Dictionary<string, string> Packages = new(StringComparer.Ordinal)
    {
        ["libsasl2.so.2"] = "libsasl2-2",
        ["libsasl2.so.3"] = "libsasl2-2",
        ["libssl.so.3"] = "libssl3 (libssl3t64 on Debian 13)",
        ["libcrypto.so.3"] = "libssl3 (libssl3t64 on Debian 13)",
        ["libz.so.1"] = "zlib1g",
        ["libzstd.so.1"] = "libzstd1",
        ["liblz4.so.1"] = "liblz4-1",
        ["libcurl.so.4"] = "libcurl4",
    };

    /// <summary>
    /// Loads librdkafka if not done yet. Returns null and sets <paramref name="description"/> (version, file and
    /// built-in features) when it is loaded; else the reason, naming each candidate file and what it lacks.
    /// </summary>
    public static string? TryLoad(out string? description)
    {
        lock (Gate)
        {
            if (_loaded is not null)
            {
                description = _loaded;
                return null;
            }

            try
            {
                // Without a path Confluent.Kafka tries its builds for this platform in turn (see the remarks).
                Confluent.Kafka.Library.Load();
                _loaded = $"librdkafka {Confluent.Kafka.Library.VersionString} ({LoadedFile() ?? "file unknown"})";
                description = _loaded;
                return null;
            }
            catch (Exception ex) when (ex is DllNotFoundException or FileLoadException or InvalidOperationException or EntryPointNotFoundException)
            {
                description = null;
                return Diagnose(AppContext.BaseDirectory, ex.Message);
            }
        }
    }

    /// <summary>Why no librdkafka build in <paramref name="directory"/> loads here (each file and its dlerror).</summary>
    internal static string Diagnose(string directory, string loaderMessage)
    {
        var candidates = Candidates(directory);
        if (candidates.Count == 0)
        {
            return $"librdkafka cannot be loaded: no librdkafka*.so beside the binary in {directory} ({loaderMessage})";
        }

        var reasons = new List<string>(candidates.Count);
        var missing = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var file in candidates)
        {
            if (NativeLibrary.TryLoad(file, out var handle))
            {
                // The file loads by itself: Confluent.Kafka refused it for another reason (version, symbols).
                NativeLibrary.Free(handle);
                reasons.Add($"{file} loads, but Confluent.Kafka refused it: {loaderMessage}");
                continue;
            }

            var dlerror = DlError(file);
            // .NET tries the name with and without decorations: the file's own "cannot open" lines are not the reason.
            var library = MissingLibrary().Matches(dlerror).Select(m => m.Groups[1].Value)
                .FirstOrDefault(l => !l.Contains("librdkafka", StringComparison.Ordinal));
            if (library is not null)
            {
                missing.Add(library);
                reasons.Add($"{file} needs {library}, which this system does not have" +
                    (Packages.TryGetValue(library, out var package) ? $" (Debian package {package})" : ""));
            }
            else
            {
                reasons.Add($"{file}: {dlerror}");
            }
        }

        var install = missing.Select(l => Packages.TryGetValue(l, out var p) ? p.Split(' ')[0] : null).Where(p => p is not null).Distinct().ToList();
        var remedy = install.Count == 0 ? ""
            : $"; install {string.Join(", ", install)} (apt-get install {string.Join(' ', install)})" +
              (missing.Any(l => l.StartsWith("libsasl2", StringComparison.Ordinal)) && !candidates.Exists(f => Path.GetFileName(f) == "centos8-librdkafka.so")
                  ? ", or put centos8-librdkafka.so of the x64 release tarball (no libsasl2) beside the binary"
                  : "");
        return $"librdkafka cannot be loaded: {string.Join("; ", reasons)}{remedy}";
    }

    private static List<string> Candidates(string directory)
    {
        // A release has them beside the single file; a framework-dependent build (dotnet run, the tests) under runtimes/.
        var arch = RuntimeInformation.ProcessArchitecture.ToString().ToLowerInvariant();
        var native = Path.Combine(directory, "runtimes", $"linux-{arch}", "native");
        // The musl build never loads on glibc: naming it would only confuse (and it is not shipped).
        return [.. new[] { directory, native }.Where(Directory.Exists)
            .SelectMany(d => Directory.EnumerateFiles(d, "*librdkafka.so")
                .Where(f => !Path.GetFileName(f).StartsWith("alpine-", StringComparison.Ordinal))
                .OrderBy(f => Path.GetFileName(f) == "librdkafka.so" ? 0 : 1)
                .ThenBy(f => f, StringComparer.Ordinal))];
    }

    /// <summary>The loader's reason for <paramref name="file"/>: .NET puts dlerror's text into the exception.</summary>
    private static string DlError(string file)
    {
        try
        {
            NativeLibrary.Free(NativeLibrary.Load(file));
            return "loads";
        }
        catch (DllNotFoundException ex)
        {
            return ex.Message.ReplaceLineEndings(" ").Trim();
        }
        catch (BadImageFormatException ex)
        {
            return ex.Message.ReplaceLineEndings(" ").Trim();
        }
    }

    /// <summary>The librdkafka file mapped into this process (from /proc/self/maps), or null.</summary>
    private static string? LoadedFile()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/maps"))
            {
                var slash = line.IndexOf('/', StringComparison.Ordinal);
                if (slash >= 0 && line.AsSpan(slash).EndsWith("librdkafka.so", StringComparison.Ordinal))
                {
                    return line[slash..];
                }
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }

        return null;
    }

    [GeneratedRegex(@"(lib[A-Za-z0-9_+.-]*?\.so(?:\.\d+)*): cannot open shared object file")]
    private static partial Regex MissingLibrary();
}
