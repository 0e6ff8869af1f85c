using System.Device.I2c;

namespace EdgeTwin.Sensors.Tests.Fakes;

/// <summary>
/// A chip on a simulated I2C bus. Subclasses implement the chip's protocol on raw transfers exactly as the bus
/// delivers them; the base adds the failure modes of a real bus: an absent chip NACKs (Linux: EREMOTEIO, error 121),
/// a hung bus blocks the transfer.
/// </summary>
internal abstract class SimulatedI2cDevice : I2cDevice
{
    private readonly I2cConnectionSettings _settings;
    private readonly Lock _gate = new();

    protected SimulatedI2cDevice(I2cConnectionSettings settings)
    {
        _settings = settings;
    }

    public override I2cConnectionSettings ConnectionSettings => _settings;

    /// <summary>Every transfer is NACKed, as when the chip is unplugged or unpowered.</summary>
    public bool Absent { get; set; }

    /// <summary>When set, transfers block until it is signalled (a slave holding SDA low).</summary>
    public ManualResetEventSlim? Hang { get; set; }

    /// <summary>
    /// When set, every read returns this byte although the chip ACKs its address: a data line floating high (0xFF,
    /// weak or missing pull-up) or held low (0x00) by a damaged breakout.
    /// </summary>
    public byte? ReadsAs { get; set; }

    public bool Disposed { get; private set; }

    public int Transfers { get; private set; }

    public int Opens { get; private set; } = 1;

    /// <summary>A new file handle on the same chip (what <c>I2cDevice.Create</c> does after the old one was disposed).</summary>
    public SimulatedI2cDevice Reopen()
    {
        if (Disposed)
        {
            Disposed = false;
            Opens++;
        }

        return this;
    }

    public override void Read(Span<byte> buffer)
    {
        Enter();
        lock (_gate)
        {
            OnRead(buffer);
            if (ReadsAs is { } garbage)
            {
                buffer.Fill(garbage);
            }
        }
    }

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        Enter();
        lock (_gate)
        {
            OnWrite(buffer);
        }
    }

    public override void WriteRead(ReadOnlySpan<byte> writeBuffer, Span<byte> readBuffer)
    {
        Write(writeBuffer);
        Read(readBuffer);
    }

    protected abstract void OnRead(Span<byte> buffer);

    protected abstract void OnWrite(ReadOnlySpan<byte> buffer);

    protected static IOException Nack() => new("Error 121 performing I2C data transfer.");

    protected override void Dispose(bool disposing)
    {
        Disposed = true;
        base.Dispose(disposing);
    }

    private void Enter()
    {
        ObjectDisposedException.ThrowIf(Disposed, this);
        Hang?.Wait(TimeSpan.FromSeconds(30));
        if (Absent)
        {
            throw Nack();
        }

        Transfers++;
    }
}
