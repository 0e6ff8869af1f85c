using System.Diagnostics;

namespace EdgeTwin.Uplink.Tests.Support;

/// <summary>The real protoc binary, decoding bytes against our sparkplug_b.proto into protobuf text format.</summary>
internal static class Protoc
{
    public const string Binary = "/usr/bin/protoc";

    public static async Task<string> DecodeSparkplugAsync(byte[] payload)
    {
        if (!File.Exists(Binary))
        {
            Assert.Skip($"{Binary} not installed (apt-get install protobuf-compiler)");
        }

        var protoDir = AppContext.BaseDirectory;
        var psi = new ProcessStartInfo(Binary, ["--decode", "org.eclipse.tahu.protobuf.Payload", $"--proto_path={protoDir}", "sparkplug_b.proto"])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = protoDir,
        };
        using var p = Process.Start(psi)!;
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var stdout = p.StandardOutput.ReadToEndAsync(cts.Token);
        var stderr = p.StandardError.ReadToEndAsync(cts.Token);
        await p.StandardInput.BaseStream.WriteAsync(payload, cts.Token);
        p.StandardInput.Close();
        await p.WaitForExitAsync(cts.Token);
        Assert.True(p.ExitCode == 0, $"protoc --decode failed ({p.ExitCode}): {await stderr}");
        return await stdout;
    }
}
