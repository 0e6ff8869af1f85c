using System.Runtime.InteropServices;
using EdgeTwin.Uplink.Kafka;

namespace EdgeTwin.Uplink.Tests.Kafka;

/// <summary>
/// What the agent says when no librdkafka build loads (<see cref="KafkaNativeLibrary.Diagnose"/>): each file beside the
/// binary with the shared library it lacks and the Debian package that has it, instead of Confluent.Kafka's bare
/// "Failed to load the librdkafka native library.".
/// </summary>
public sealed class KafkaNativeLibraryTests : IDisposable
{
    private const string LoaderMessage = "Failed to load the librdkafka native library.";
    private readonly string _dir = Directory.CreateTempSubdirectory("edgetwin-rdkafka-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void The_glibc_x64_build_without_libsasl2_is_named_with_the_library_and_its_package()
    {
        if (RuntimeInformation.OSArchitecture != Architecture.X64)
        {
            Assert.Skip("librdkafka.redist's x64 glibc build is the one that needs libsasl2.so.3");
        }

        var glibc = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "librdkafka.so");
        var copy = Path.Combine(_dir, "librdkafka.so");
        File.Copy(glibc, copy);
        if (NativeLibrary.TryLoad(copy, out var handle))
        {
            NativeLibrary.Free(handle);
            Assert.Skip("this machine has libsasl2.so.3 (libsasl2-2): the glibc build loads here");
        }

        var reason = KafkaNativeLibrary.Diagnose(_dir, LoaderMessage);

        Assert.Equal(
            $"librdkafka cannot be loaded: {copy} needs libsasl2.so.3, which this system does not have (Debian package libsasl2-2); "
            + "install libsasl2-2 (apt-get install libsasl2-2), or put centos8-librdkafka.so of the x64 release tarball (no libsasl2) beside the binary",
            reason);
    }

    [Fact]
    public void A_file_that_is_no_library_is_named_with_the_loaders_reason()
    {
        var bogus = Path.Combine(_dir, "centos8-librdkafka.so");
        File.WriteAllText(bogus, string.Concat(Enumerable.Repeat("not an ELF file\n", 256)));

        var reason = KafkaNativeLibrary.Diagnose(_dir, LoaderMessage);

        Assert.StartsWith($"librdkafka cannot be loaded: {bogus}: ", reason, StringComparison.Ordinal);
        Assert.Contains("invalid ELF header", reason, StringComparison.Ordinal);
    }

    [Fact]
    public void No_librdkafka_beside_the_binary_says_so_and_where_it_looked()
    {
        Assert.Equal(
            $"librdkafka cannot be loaded: no librdkafka*.so beside the binary in {_dir} ({LoaderMessage})",
            KafkaNativeLibrary.Diagnose(_dir, LoaderMessage));
    }
}
