using Amazon.S3.Model;

namespace Registry.Storage.Blobs.S3;

/// <summary>
/// A seekable read stream over one object: each read continues one ranged GET (<c>Range: bytes=&lt;position&gt;-</c>)
/// opened at the first read after a seek, so serving a range of a blob fetches only that range from S3. A GET cut
/// off midway is reopened at the position reached (a few times), so a dropped connection to S3 does not fail a
/// long download.
/// </summary>
public sealed class S3ObjectStream(S3Bucket bucket, string key, long length) : Stream
{
    private const int MaxReopens = 3;

    private GetObjectResponse? _response;
    private long _position;
    private int _reopens;

    public override bool CanRead => true;
    public override bool CanSeek => true;
    public override bool CanWrite => false;
    public override long Length => length;

    public override long Position
    {
        get => _position;
        set
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            if (value == _position) return;
            Close(ref _response);
            _position = value;
        }
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default)
    {
        if (_position >= length || buffer.IsEmpty) return 0;
        while (true)
        {
            _response ??= await OpenAsync(_position, ct);
            int read;
            try
            {
                read = await _response.ResponseStream.ReadAsync(buffer, ct);
            }
            catch (Exception e) when (S3Bucket.IsTransient(e, ct) && _reopens < MaxReopens)
            {
                _reopens++;
                Close(ref _response);
                continue;
            }
            if (read == 0) throw new IOException($"{key}: the object ended at {_position} of {length} bytes");
            _position += read;
            return read;
        }
    }

    private async Task<GetObjectResponse> OpenAsync(long from, CancellationToken ct) =>
        await bucket.RetryAsync(t => bucket.Client.GetObjectAsync(new GetObjectRequest
        {
            BucketName = bucket.Name,
            Key = key,
            ByteRange = new ByteRange(from, length - 1),
        }, t), ct);

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken ct) =>
        ReadAsync(buffer.AsMemory(offset, count), ct).AsTask();

    public override int Read(byte[] buffer, int offset, int count) =>
        ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override long Seek(long offset, SeekOrigin origin)
    {
        Position = origin switch
        {
            SeekOrigin.Begin => offset,
            SeekOrigin.Current => _position + offset,
            _ => length + offset,
        };
        return _position;
    }

    private static void Close(ref GetObjectResponse? response)
    {
        response?.Dispose();
        response = null;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) Close(ref _response);
        base.Dispose(disposing);
    }

    public override void Flush() { }
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
