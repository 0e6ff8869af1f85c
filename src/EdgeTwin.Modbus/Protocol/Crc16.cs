namespace EdgeTwin.Modbus.Protocol;

/// <summary>CRC-16/MODBUS (poly 0xA001 reflected, init 0xFFFF), sent low byte first (Serial Line V1.02, 6.2.2).</summary>
public static class Crc16
{
    private static readonly ushort[] Table = BuildTable();

    public static ushort Compute(ReadOnlySpan<byte> data)
    {
        ushort crc = 0xFFFF;
        foreach (byte b in data)
        {
            crc = (ushort)((crc >> 8) ^ Table[(crc ^ b) & 0xFF]);
        }

        return crc;
    }

    private static ushort[] BuildTable()
    {
        var table = new ushort[256];
        for (int i = 0; i < 256; i++)
        {
            ushort c = (ushort)i;
            for (int bit = 0; bit < 8; bit++)
            {
                c = (c & 1) != 0 ? (ushort)((c >> 1) ^ 0xA001) : (ushort)(c >> 1);
            }

            table[i] = c;
        }

        return table;
    }
}
