using System.Buffers.Binary;
using System.Device.I2c;

namespace EdgeTwin.Sensors.Tests.Fakes;

/// <summary>
/// A BME280 register file (datasheet BST-BME280-DS002 §5): chip id 0xD0 = 0x60, soft reset 0xE0 ← 0xB6, calibration
/// NVM at 0x88–0xA1 and 0xE1–0xE7, ctrl_hum 0xF2 (latched by a write to ctrl_meas), status 0xF3, ctrl_meas 0xF4,
/// config 0xF5, data 0xF7–0xFE (reset value 0x80000 / 0x8000). Reads auto-increment the register pointer; writes are
/// register/value pairs. A write of forced mode runs one conversion: the simulator finds the ADC codes whose Bosch
/// compensation (§8.1, double precision) gives the configured physical values, for every channel whose oversampling
/// is not "skipped", and goes back to sleep.
/// </summary>
internal sealed class SimulatedBme280 : SimulatedI2cDevice
{
    private readonly byte[] _regs = new byte[256];
    private byte _pointer;
    private byte _latchedCtrlHum;

    public SimulatedBme280(int bus = 1, int address = 0x76, byte chipId = 0x60)
        : base(new I2cConnectionSettings(bus, address))
    {
        _regs[0xD0] = chipId;
        WriteCalibration(Calibration.DatasheetExample);
        PowerOnReset();
    }

    public double Celsius { get; set; } = 22.5;

    public double RelativeHumidity { get; set; } = 45.0;

    public double Pascals { get; set; } = 101_325.0;

    /// <summary>Forced conversions run so far.</summary>
    public int Conversions { get; private set; }

    public Calibration Cal { get; private set; } = Calibration.DatasheetExample;

    public byte Register(byte address) => _regs[address];

    /// <summary>A brown-out: configuration and data registers back to their reset values, NVM kept.</summary>
    public void PowerOnReset()
    {
        _regs[0xF2] = 0;
        _regs[0xF3] = 0;
        _regs[0xF4] = 0;
        _regs[0xF5] = 0;
        _latchedCtrlHum = 0;
        SetAdc(0x80000, 0x80000, 0x8000);
    }

    /// <summary>Puts raw ADC codes in the data registers (for datasheet test vectors).</summary>
    public void SetAdc(int adcT, int adcP, int adcH)
    {
        WriteAdc20(0xF7, adcP);
        WriteAdc20(0xFA, adcT);
        _regs[0xFD] = (byte)(adcH >> 8);
        _regs[0xFE] = (byte)adcH;
    }

    public void WriteCalibration(Calibration c)
    {
        Cal = c;
        var span = _regs.AsSpan();
        BinaryPrimitives.WriteUInt16LittleEndian(span[0x88..], c.T1);
        BinaryPrimitives.WriteInt16LittleEndian(span[0x8A..], c.T2);
        BinaryPrimitives.WriteInt16LittleEndian(span[0x8C..], c.T3);
        BinaryPrimitives.WriteUInt16LittleEndian(span[0x8E..], c.P1);
        BinaryPrimitives.WriteInt16LittleEndian(span[0x90..], c.P2);
        BinaryPrimitives.WriteInt16LittleEndian(span[0x92..], c.P3);
        BinaryPrimitives.WriteInt16LittleEndian(span[0x94..], c.P4);
        BinaryPrimitives.WriteInt16LittleEndian(span[0x96..], c.P5);
        BinaryPrimitives.WriteInt16LittleEndian(span[0x98..], c.P6);
        BinaryPrimitives.WriteInt16LittleEndian(span[0x9A..], c.P7);
        BinaryPrimitives.WriteInt16LittleEndian(span[0x9C..], c.P8);
        BinaryPrimitives.WriteInt16LittleEndian(span[0x9E..], c.P9);
        _regs[0xA1] = c.H1;
        BinaryPrimitives.WriteInt16LittleEndian(span[0xE1..], c.H2);
        _regs[0xE3] = c.H3;
        _regs[0xE4] = (byte)(c.H4 >> 4);
        _regs[0xE5] = (byte)((c.H4 & 0x0F) | ((c.H5 & 0x0F) << 4));
        _regs[0xE6] = (byte)(c.H5 >> 4);
        _regs[0xE7] = (byte)c.H6;
    }

    protected override void OnRead(Span<byte> buffer)
    {
        for (var i = 0; i < buffer.Length; i++)
        {
            buffer[i] = _regs[_pointer];
            _pointer++;
        }
    }

    protected override void OnWrite(ReadOnlySpan<byte> buffer)
    {
        if (buffer.Length == 1)
        {
            _pointer = buffer[0];
            return;
        }

        if (buffer.Length % 2 != 0)
        {
            throw Nack();
        }

        for (var i = 0; i < buffer.Length; i += 2)
        {
            WriteRegister(buffer[i], buffer[i + 1]);
        }
    }

    private void WriteRegister(byte register, byte value)
    {
        switch (register)
        {
            case 0xE0:
                if (value == 0xB6)
                {
                    PowerOnReset();
                }

                break;
            case 0xF2:
                _regs[0xF2] = (byte)(value & 0x07);
                break;
            case 0xF4:
                _regs[0xF4] = value;
                _latchedCtrlHum = _regs[0xF2];
                if ((value & 0x03) != 0)
                {
                    Convert(value);
                }

                break;
            case 0xF5:
                _regs[0xF5] = value;
                break;
            default:
                // Read-only registers ignore writes, as on the chip.
                break;
        }
    }

    private void Convert(byte ctrlMeas)
    {
        Conversions++;
        var osrsT = (ctrlMeas >> 5) & 0x07;
        var osrsP = (ctrlMeas >> 2) & 0x07;
        var osrsH = _latchedCtrlHum & 0x07;
        var adcT = osrsT == 0 ? 0x80000 : Bosch.InverseTemperature(Cal, Celsius);
        var tFine = Bosch.TFine(Cal, adcT == 0x80000 ? Bosch.InverseTemperature(Cal, Celsius) : adcT);
        var adcP = osrsP == 0 ? 0x80000 : Bosch.InversePressure(Cal, tFine, Pascals);
        var adcH = osrsH == 0 ? 0x8000 : Bosch.InverseHumidity(Cal, tFine, RelativeHumidity);
        SetAdc(adcT, adcP, adcH);
        if ((ctrlMeas & 0x03) != 0x03)
        {
            _regs[0xF4] = (byte)(ctrlMeas & 0xFC); // forced (01 or 10) → sleep when done
        }
    }

    private void WriteAdc20(byte register, int adc)
    {
        _regs[register] = (byte)(adc >> 12);
        _regs[register + 1] = (byte)(adc >> 4);
        _regs[register + 2] = (byte)((adc & 0x0F) << 4);
    }

    internal sealed record Calibration(
        ushort T1, short T2, short T3,
        ushort P1, short P2, short P3, short P4, short P5, short P6, short P7, short P8, short P9,
        byte H1, short H2, byte H3, short H4, short H5, sbyte H6)
    {
        /// <summary>T and P trimming from the BMP280 datasheet's worked example (§8.2); H from a production BME280.</summary>
        public static readonly Calibration DatasheetExample = new(
            27504, 26435, -1000,
            36477, -10685, 3024, 2855, 140, -7, 15500, -14600, 6000,
            75, 362, 0, 313, 50, 30);
    }

    /// <summary>Bosch's floating-point compensation (datasheet §8.1) and its numeric inverse.</summary>
    internal static class Bosch
    {
        public static double TFine(Calibration c, int adcT)
        {
            var var1 = ((adcT / 16384.0) - (c.T1 / 1024.0)) * c.T2;
            var x = (adcT / 131072.0) - (c.T1 / 8192.0);
            var var2 = x * x * c.T3;
            return var1 + var2;
        }

        public static double Temperature(Calibration c, int adcT) => TFine(c, adcT) / 5120.0;

        public static double Pressure(Calibration c, double tFine, int adcP)
        {
            var var1 = (tFine / 2.0) - 64000.0;
            var var2 = var1 * var1 * c.P6 / 32768.0;
            var2 += var1 * c.P5 * 2.0;
            var2 = (var2 / 4.0) + (c.P4 * 65536.0);
            var1 = ((c.P3 * var1 * var1 / 524288.0) + (c.P2 * var1)) / 524288.0;
            var1 = (1.0 + (var1 / 32768.0)) * c.P1;
            if (var1 == 0)
            {
                return 0;
            }

            var p = 1048576.0 - adcP;
            p = (p - (var2 / 4096.0)) * 6250.0 / var1;
            var1 = c.P9 * p * p / 2147483648.0;
            var2 = p * c.P8 / 32768.0;
            return p + ((var1 + var2 + c.P7) / 16.0);
        }

        public static double Humidity(Calibration c, double tFine, int adcH)
        {
            var h = tFine - 76800.0;
            h = (adcH - ((c.H4 * 64.0) + (c.H5 / 16384.0 * h))) *
                (c.H2 / 65536.0 * (1.0 + (c.H6 / 67108864.0 * h * (1.0 + (c.H3 / 67108864.0 * h)))));
            h *= 1.0 - (c.H1 * h / 524288.0);
            return Math.Clamp(h, 0, 100);
        }

        public static int InverseTemperature(Calibration c, double celsius) =>
            Search(0, (1 << 20) - 1, adc => Temperature(c, adc), celsius);

        public static int InversePressure(Calibration c, double tFine, double pascals) =>
            Search(0, (1 << 20) - 1, adc => -Pressure(c, tFine, adc), -pascals);

        public static int InverseHumidity(Calibration c, double tFine, double rh) =>
            Search(0, 0xFFFF, adc => Humidity(c, tFine, adc), rh);

        /// <summary>Smallest code whose value reaches the target, for a function increasing in the code.</summary>
        private static int Search(int lo, int hi, Func<int, double> f, double target)
        {
            while (lo < hi)
            {
                var mid = lo + ((hi - lo) / 2);
                if (f(mid) < target)
                {
                    lo = mid + 1;
                }
                else
                {
                    hi = mid;
                }
            }

            return lo;
        }
    }
}
