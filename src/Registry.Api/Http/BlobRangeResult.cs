using System.Globalization;
using Microsoft.Win32.SafeHandles;
using Registry.Storage.Blobs;
using Registry.Storage.Model;

namespace Registry.Api.Http;

/// <summary>
/// Sends a stored blob, or one byte range of it (RFC 9110 §14). When the store has a local file and the connection is
/// plain HTTP/1.x, the kernel sends the file range itself (<see cref="SendFileTransport"/>); over TLS or HTTP/2 it is
/// read straight into the response pipe's buffers: one copy from the page cache. Otherwise (an object
/// store) the store opens exactly the bytes to send (<see cref="IBlobStore.OpenRangeAsync"/>). A multi-range request
/// gets the whole blob; an unsatisfiable range gets 416 with <c>Content-Range: bytes */length</c>.
/// </summary>
internal sealed class BlobRangeResult(IBlobStore blobs, Digest digest, BlobContent content, string contentType,
    string etag) : IResult
{
    private const int ChunkSize = 256 * 1024;

    public async Task ExecuteAsync(HttpContext context)
    {
        var request = context.Request;
        var response = context.Response;
        var length = content.Length;
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
        var partial = false;
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
                    (start, end, partial) = (from, to, true);
                    break;
            }
        }
        var count = end - start + 1;
        var head = HttpMethods.IsHead(request.Method) || length == 0;

        // Opened before the status is set: content gone since OpenAsync (garbage collected) is still a clean 404.
        Stream? stream = null;
        if (!head && content.LocalPath is null
            && (stream = await blobs.OpenRangeAsync(digest, start, count, context.RequestAborted)) is null)
        {
            foreach (var name in new[] { "ETag", "Accept-Ranges", "Cache-Control", Responses.DigestHeader })
                response.Headers.Remove(name);
            await new RegistryError(ErrorCode.BlobUnknown, digest.ToString()).ExecuteAsync(context);
            return;
        }

        await using (stream)
        {
            if (partial)
            {
                response.StatusCode = StatusCodes.Status206PartialContent;
                response.Headers.ContentRange = $"bytes {start}-{end}/{length}";
            }
            response.ContentType = contentType;
            response.ContentLength = count;
            if (head) return;

            if (stream is not null)
            {
                await CopyAsync(stream, response, count, context.RequestAborted);
                return;
            }
            var transport = SendFileTransport.For(context);
            // The socket API takes a file for sending only when it was opened for asynchronous use.
            using var handle = File.OpenHandle(content.LocalPath!, FileMode.Open, FileAccess.Read,
                FileShare.Read | FileShare.Delete,
                FileOptions.SequentialScan | (transport is null ? FileOptions.None : FileOptions.Asynchronous));
            if (transport is not null)
            {
                // Checked before the status line goes out, while a failure is still a clean 500.
                if (RandomAccess.GetLength(handle) < end + 1) throw new BlobShortException();
                await response.StartAsync(context.RequestAborted);
                var flush = await response.BodyWriter.FlushAsync(context.RequestAborted);
                if (!flush.IsCompleted && !flush.IsCanceled && await transport.SendAsync(response, handle, start, count))
                    context.RequestServices.GetService<Observability.RegistryMetrics>()?.SentFromFile(count);
                return;
            }
            await CopyAsync(handle, response, start, end + 1, context.RequestAborted);
        }
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
            if (read == 0) throw new BlobShortException();
            writer.Advance(read);
            position += read;
            var flush = await writer.FlushAsync(ct);
            if (flush.IsCanceled || flush.IsCompleted) return;
        }
    }

    /// <summary>Exactly <paramref name="count"/> bytes from the store's stream; a short stream aborts the response.</summary>
    private static async Task CopyAsync(Stream stream, HttpResponse response, long count, CancellationToken ct)
    {
        var writer = response.BodyWriter;
        while (count > 0)
        {
            var memory = writer.GetMemory((int)Math.Min(ChunkSize, count));
            var want = (int)Math.Min(memory.Length, count);
            var read = await stream.ReadAsync(memory[..want], ct);
            if (read == 0) throw new IOException("blob content is shorter than recorded");
            writer.Advance(read);
            count -= read;
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
