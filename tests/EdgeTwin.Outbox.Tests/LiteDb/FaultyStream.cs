namespace EdgeTwin.Outbox.Tests.LiteDb;

/// <summary>Shared switch for every stream of one outbox: when armed, writes fail as a full disk does.</summary>
public sealed class DiskFaults
{
    private volatile bool _full;

    public bool Full
    {
        get => _full;
        set => _full = value;
    }

    public int FailedWrites;

    public Stream Wrap(FileStream inner) => new FaultyStream(inner, this);

    private sealed class FaultyStream(FileStream inner, DiskFaults faults) : Stream
    {
        public override bool CanRead => inner.CanRead;

        public override bool CanSeek => inner.CanSeek;

        public override bool CanWrite => inner.CanWrite;

        public override long Length => inner.Length;

        public override long Position { get => inner.Position; set => inner.Position = value; }

        public override void Flush()
        {
            ThrowIfFull();
            inner.Flush(flushToDisk: true);
        }

        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);

        public override long Seek(long offset, SeekOrigin origin) => inner.Seek(offset, origin);

        public override void SetLength(long value) => inner.SetLength(value);

        public override void Write(byte[] buffer, int offset, int count)
        {
            ThrowIfFull();
            inner.Write(buffer, offset, count);
        }

        private void ThrowIfFull()
        {
            if (faults.Full)
            {
                Interlocked.Increment(ref faults.FailedWrites);
                throw new IOException($"No space left on device : '{inner.Name}'", 28);
            }
        }
    }
}
