namespace EdgeTwin.Outbox.Tests.LiteDb;

/// <summary>Fails writes to the journal (as a full disk does) once it has been written this many more bytes.</summary>
internal sealed class JournalWriteLimit
{
    private long _written;
    private long _failAt = long.MaxValue;

    public void FailAfter(long bytes) => Volatile.Write(ref _failAt, bytes == long.MaxValue ? long.MaxValue : Interlocked.Read(ref _written) + bytes);

    public Stream Wrap(FileStream inner) => inner.Name.EndsWith("-log.db", StringComparison.Ordinal) ? new Limited(inner, this) : inner;

    private sealed class Limited(FileStream inner, JournalWriteLimit limit) : Stream
    {
        public override bool CanRead => inner.CanRead;

        public override bool CanSeek => inner.CanSeek;

        public override bool CanWrite => inner.CanWrite;

        public override long Length => inner.Length;

        public override long Position { get => inner.Position; set => inner.Position = value; }

        public override void Flush() => inner.Flush(flushToDisk: true);

        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);

        public override long Seek(long offset, SeekOrigin origin) => inner.Seek(offset, origin);

        public override void SetLength(long value) => inner.SetLength(value);

        public override void Write(byte[] buffer, int offset, int count)
        {
            if (Interlocked.Add(ref limit._written, count) > Volatile.Read(ref limit._failAt))
            {
                throw new IOException($"No space left on device : '{inner.Name}'", 28);
            }

            inner.Write(buffer, offset, count);
        }
    }
}
