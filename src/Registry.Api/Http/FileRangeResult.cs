using System.Globalization;
using Microsoft.Win32.SafeHandles;

namespace Registry.Api.Http;

/// <summary>
/// Sends a stored blob (or one byte range of it, RFC 9110 §14) by reading the file straight into the response pipe's
/// buffers: one copy from the page cache, no intermediate stream buffer. A multi-range request gets the whole blob;
/// an unsatisfiable range gets 416 with <c>Content-Range: bytes */length</c>.
/// </summary>
internal sealed class FileRangeResult(string path, long length, string contentType, string etag) : IResult
{
    private const int ChunkSize = 256 * 1024;

    public async Task ExecuteAsync(HttpContext context)
    {
        var request = context.Request;
        var response = context.Response;
        response.Headers.AcceptRanges = "bytes";
        response.Headers.ETag = etag;
        if (request.Headers.IfNoneMatch.ToString() == etag)
        {
            response.StatusCode = StatusCodes.Status304NotModified;
            return;
        }

        long start = 0, end = length - 1;
        var range = request.Headers.Range.ToString();
        var ifRange = request.Headers.IfRange.ToString();
        if (range.Length > 0 && (ifRange.Length == 0 || ifRange == etag))
        {
            switch (ParseRange(range, length, out var from, out var to))
            {
                case RangeKind.Unsatisfiable:
                    response.StatusCode = StatusCodes.Status416RangeNotSatisfiable;
                    response.Headers.ContentRange = $"bytes */{length}";
                    response.ContentLength = 0;
                    return;
                case RangeKind.Single:
                    (start, end) = (from, to);
                    response.StatusCode = StatusCodes.Status206PartialContent;
                    response.Headers.ContentRange = $"bytes {start}-{end}/{length}";
                    break;
            }
        }
        response.ContentType = contentType;
        response.ContentLength = end - start + 1;
        if (HttpMethods.IsHead(request.Method) || length == 0) return;

        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete,
            FileOptions.SequentialScan);
        await CopyAsync(handle, response, start, end + 1, context.RequestAborted);
    }

    private static async Task CopyAsync(SafeFileHandle handle, HttpResponse response, long position, long stop,
        CancellationToken ct)
    {
        var writer = response.BodyWriter;
        while (position < stop)
        {
            var memory = writer.GetMemory((int)Math.Min(ChunkSize, stop - position));
            var want = (int)Math.Min(memory.Length, stop - position);
            var read = RandomAccess.Read(handle, memory.Span[..want], position);
            if (read == 0) throw new IOException("blob file is shorter than recorded");
            writer.Advance(read);
            position += read;
            var flush = await writer.FlushAsync(ct);
            if (flush.IsCanceled || flush.IsCompleted) return;
        }
    }

    private enum RangeKind
    {
        None,
        Single,
        Unsatisfiable,
    }

    /// <summary><c>bytes=a-b</c>, <c>bytes=a-</c> or <c>bytes=-n</c>; anything else (several ranges, other units) is ignored.</summary>
    private static RangeKind ParseRange(string header, long length, out long start, out long end)
    {
        start = end = 0;
        var value = header.AsSpan().Trim();
        if (!value.StartsWith("bytes=", StringComparison.OrdinalIgnoreCase)) return RangeKind.None;
        value = value[6..].Trim();
        if (value.Contains(',')) return RangeKind.None;
        var dash = value.IndexOf('-');
        if (dash < 0) return RangeKind.None;
        var first = value[..dash].Trim();
        var last = value[(dash + 1)..].Trim();
        const NumberStyles digits = NumberStyles.None;
        if (first.IsEmpty)
        {
            if (!long.TryParse(last, digits, CultureInfo.InvariantCulture, out var suffix)) return RangeKind.None;
            if (suffix == 0 || length == 0) return RangeKind.Unsatisfiable;
            start = Math.Max(0, length - suffix);
            end = length - 1;
            return RangeKind.Single;
        }
        if (!long.TryParse(first, digits, CultureInfo.InvariantCulture, out start)) return RangeKind.None;
        if (last.IsEmpty) end = length - 1;
        else if (!long.TryParse(last, digits, CultureInfo.InvariantCulture, out end) || end < start) return RangeKind.None;
        if (start >= length) return RangeKind.Unsatisfiable;
        end = Math.Min(end, length - 1);
        return RangeKind.Single;
    }
}
