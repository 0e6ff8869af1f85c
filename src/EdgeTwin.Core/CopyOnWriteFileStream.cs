namespace EdgeTwin.Core;

/// <summary>
/// A view of a file that LiteDB may write to without changing it: written pages are kept in memory and read back from
/// there, the rest is read from the file when asked. A null file is an empty one. Used where the file must not or cannot
/// be written: the outbox's salvage of a damaged file, the alert store on storage turned read-only (only the pages it
/// changes take memory, not the whole file). The file stays the caller's to dispose.
/// </summary>
/// <param name="beforeRead">Called with the bytes of every page read from the file (the salvage's read budget), may throw.</param>
public sealed class CopyOnWriteFileStream(FileStream? file, Action<int>? beforeRead = null) : Stream
{
    private const int PageSize = 8192;
    private readonly Dictionary<long, byte[]> _pages = [];
    private long _length = file?.Length ?? 0;
    private long _position;

    public override bool CanRead => true;

    public override bool CanSeek => true;

    public override bool CanWrite => true;

    public override long Length => _length;

    public override long Position
    {
        get => _position;
        set => _position = value;
    }

    public override void Flush()
    {
    }

    public override int Read(byte[] buffer, int offset, int count)
    {
        var n = (int)Math.Clamp(_length - _position, 0, count);
        var done = 0;
        while (done < n)
        {
            var page = (_position + done) / PageSize;
            var within = (int)((_position + done) % PageSize);
            var chunk = Math.Min(n - done, PageSize - within);
            if (!_pages.TryGetValue(page, out var copy))
            {
                copy = ReadPage(page);
            }

            Array.Copy(copy, within, buffer, offset + done, chunk);
            done += chunk;
        }

        _position += done;
        return done;
    }

    public override void Write(byte[] buffer, int offset, int count)
    {
        var done = 0;
        while (done < count)
        {
            var page = (_position + done) / PageSize;
            var within = (int)((_position + done) % PageSize);
            var chunk = Math.Min(count - done, PageSize - within);
            if (!_pages.TryGetValue(page, out var copy))
            {
                copy = ReadPage(page);
                _pages[page] = copy;
            }

            Array.Copy(buffer, offset + done, copy, within, chunk);
            done += chunk;
        }

        _position += count;
        _length = Math.Max(_length, _position);
    }

    public override long Seek(long offset, SeekOrigin origin) => _position = origin switch
    {
        SeekOrigin.Begin => offset,
        SeekOrigin.Current => _position + offset,
        _ => _length + offset,
    };

    public override void SetLength(long value)
    {
        _length = value;
        foreach (var page in _pages.Keys.Where(p => p * PageSize >= value).ToList())
        {
            _pages.Remove(page);
        }
    }

    private byte[] ReadPage(long page)
    {
        var copy = new byte[PageSize];
        if (file is null || page * PageSize >= file.Length)
        {
            return copy;
        }

        beforeRead?.Invoke(PageSize);
        file.Position = page * PageSize;
        var read = 0;
        while (read < PageSize)
        {
            var n = file.Read(copy, read, PageSize - read);
            if (n == 0)
            {
                break;
            }

            read += n;
        }

        return copy;
    }
}
