using System.Globalization;
using System.Net;
using Amazon.S3;
using Amazon.S3.Model;

namespace Registry.Storage.Blobs.S3;

/// <summary>
/// A seekable read stream over one object, or over the <paramref name="length"/> bytes of it from
/// <paramref name="start"/> (its position 0 is the object's byte <paramref name="start"/>): each read continues one
/// ranged GET (<c>Range: bytes=&lt;start + position&gt;-&lt;start + length - 1&gt;</c>) opened at the first read after
/// a seek, so serving a range of a blob fetches only that range from S3. A GET cut off midway is reopened at the
/// position reached (a few times), so a dropped connection to S3 does not fail a long download.
/// </summary>
public sealed class S3ObjectStream(S3Bucket bucket, string key, long start, long length) : Stream
{
    private const int MaxReopens = 3;

    public S3ObjectStream(S3Bucket bucket, string key, long length) : this(bucket, key, 0, length) { }

    /// <summary>
    /// Sends the first GET now: false if there is no such object; <see cref="ArgumentOutOfRangeException"/> if the
    /// window does not lie within it.
    /// </summary>
    internal async ValueTask<bool> OpenNowAsync(CancellationToken ct)
    {
        try
        {
            _response = await OpenAsync(_position, ct);
        }
        catch (AmazonS3Exception e) when (e.StatusCode == HttpStatusCode.NotFound)
        {
            return false;
        }
        catch (AmazonS3Exception e) when (e.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable)
        {
            throw new ArgumentOutOfRangeException(nameof(start), $"range {start}+{length} is outside {key}");
        }
        // Content-Range: bytes <first>-<last>/<size>; S3 shortens a range that runs past the end instead of refusing it.
        var total = _response.ContentRange is { } range && range.LastIndexOf('/') is var slash and >= 0
            && long.TryParse(range.AsSpan(slash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var size)
            ? size
            : _response.ContentLength;
        if (start > total - length)
        {
            Close(ref _response);
            throw new ArgumentOutOfRangeException(nameof(start), $"range {start}+{length} is outside {key}'s {total} bytes");
        }
        return true;
    }

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
            ByteRange = new ByteRange(start + from, start + length - 1),
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
