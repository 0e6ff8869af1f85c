using EdgeTwin.Snmp.Messages;

namespace EdgeTwin.Snmp.Tests.Codec;

public sealed class FuzzTests
{
    /// <summary>
    /// 240k mutations of real captures (bit flips, byte overwrites with boundary values, truncation, insertion,
    /// length-octet rewrites). Decoding must either succeed or throw SnmpProtocolException: nothing else.
    /// </summary>
    [Fact]
    public void Mutated_packets_only_ever_throw_the_protocol_exception()
    {
        var seeds = Captures.All.Select(Convert.FromHexString).ToArray();
        var rng = new Random(20261130);
        byte[] interesting = [0x00, 0x01, 0x7f, 0x80, 0x81, 0x82, 0x84, 0x85, 0xff, 0x30, 0x06, 0x04, 0x02, 0x9f];
        int ok = 0, rejected = 0;
        const int Iterations = 240_000;
        for (var i = 0; i < Iterations; i++)
        {
            var packet = (byte[])seeds[rng.Next(seeds.Length)].Clone();
            var mutations = 1 + rng.Next(4);
            for (var m = 0; m < mutations; m++)
            {
                packet = Mutate(packet, rng, interesting);
            }
            try
            {
                var msg = SnmpMessageCodec.Decode(packet);
                if (msg.Pdu is not null)
                {
                    // Whatever decoded must re-encode without throwing.
                    _ = SnmpMessageCodec.Encode(msg);
                    foreach (var vb in msg.Pdu.VarBinds)
                    {
                        _ = vb.ToString();
                    }
                }
                ok++;
            }
            catch (SnmpProtocolException)
            {
                rejected++;
            }
        }
        Assert.Equal(Iterations, ok + rejected);
        Assert.True(rejected > Iterations / 2, $"only {rejected} of {Iterations} mutants were rejected");
    }

    private static byte[] Mutate(byte[] p, Random rng, byte[] interesting)
    {
        if (p.Length == 0)
        {
            return [interesting[rng.Next(interesting.Length)]];
        }
        switch (rng.Next(6))
        {
            case 0:
                p[rng.Next(p.Length)] ^= (byte)(1 << rng.Next(8));
                return p;
            case 1:
                p[rng.Next(p.Length)] = interesting[rng.Next(interesting.Length)];
                return p;
            case 2:
                return p[..rng.Next(p.Length)];
            case 3:
                {
                    var at = rng.Next(p.Length + 1);
                    var extra = new byte[1 + rng.Next(6)];
                    rng.NextBytes(extra);
                    return [.. p[..at], .. extra, .. p[at..]];
                }
            case 4:
                {
                    // Rewrite a byte that follows a constructed tag (likely a length).
                    if (p.Length < 2)
                    {
                        return p;
                    }
                    var at = rng.Next(p.Length - 1);
                    p[at + 1] = (byte)rng.Next(256);
                    return p;
                }
            default:
                {
                    var at = rng.Next(p.Length);
                    var len = Math.Min(p.Length - at, 1 + rng.Next(8));
                    return [.. p[..at], .. p[(at + len)..]];
                }
        }
    }
}
