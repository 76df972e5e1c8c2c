using Microsoft.Win32.SafeHandles;

namespace Registry.Storage.Blobs;

/// <summary>
/// A read-only stream over bytes [start, stop) of an open file, read with positional reads (no shared file position,
/// no buffer of its own). It owns the handle.
/// </summary>
internal sealed class FileRangeStream(SafeFileHandle handle, long start, long stop) : Stream
{
    private long _read;

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => stop - start;

    public override long Position
    {
        get => _read;
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        var want = (int)Math.Min(buffer.Length, stop - start - _read);
        if (want <= 0) return 0;
        var read = RandomAccess.Read(handle, buffer[..want], start + _read);
        _read += read;
        return read;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var want = (int)Math.Min(buffer.Length, stop - start - _read);
        if (want <= 0) return 0;
        var read = await RandomAccess.ReadAsync(handle, buffer[..want], start + _read, cancellationToken);
        _read += read;
        return read;
    }

    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing) handle.Dispose();
        base.Dispose(disposing);
    }
}
