using BenchmarkDotNet.Attributes;
using EdgeTwin.Snmp;
using EdgeTwin.Snmp.Messages;

namespace EdgeTwin.Benchmarks.Snmp;

/// <summary>
/// Decoding a 50-varbind v2c Response (a PDU's outlet table mix: integers, gauges, counters, strings, Counter64).
/// dotnet run -c Release --project tests/EdgeTwin.Benchmarks -- --filter '*SnmpDecode*' --job short
/// </summary>
[MemoryDiagnoser]
public class SnmpDecodeBenchmarks
{
    private byte[] _packet = [];

    [GlobalSetup]
    public void Setup()
    {
        var vbs = new VarBind[50];
        for (var i = 0; i < 50; i++)
        {
            var oid = Oid.Parse($"1.3.6.1.4.1.318.1.1.26.9.4.3.1.{(i % 5) + 1}.{(i / 5) + 1}");
            vbs[i] = new VarBind(oid, (i % 5) switch
            {
                0 => SnmpValue.Integer(i),
                1 => SnmpValue.Gauge32((uint)(i * 37)),
                2 => SnmpValue.Counter32((uint)(i * 1000)),
                3 => SnmpValue.OctetString($"Outlet {i}"),
                _ => SnmpValue.Counter64((ulong)i << 33),
            });
        }
        _packet = SnmpMessageCodec.Encode(SnmpMessage.ForCommunity(SnmpVersion.V2c, "public", new SnmpPdu(PduType.Response, 12345, vbs)));
        if (Decode50VarBinds() != 50 || Encode50VarBinds() != _packet.Length)
        {
            throw new InvalidOperationException($"SnmpDecode: the packet decodes to {Decode50VarBinds()} varbinds and encodes back to {Encode50VarBinds()} bytes, not 50 and {_packet.Length}");
        }
    }

    [Benchmark]
    public int Decode50VarBinds() => SnmpMessageCodec.Decode(_packet).Pdu!.VarBinds.Count;

    [Benchmark]
    public int Encode50VarBinds()
    {
        var msg = SnmpMessageCodec.Decode(_packet);
        return SnmpMessageCodec.Encode(msg).Length;
    }
}
