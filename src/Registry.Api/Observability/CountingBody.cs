using System.Buffers;
using System.IO.Pipelines;
using Microsoft.AspNetCore.Http.Features;

namespace Registry.Api.Observability;

/// <summary>
/// Counts the bytes of one request body and one response body, whichever way they are read or written (pipe,
/// stream, send-file), for the access log and the byte counters. Installed by <see cref="RequestTelemetry"/> in
/// front of the server's own features; each wrapper only forwards, so the server still does all the work.
/// </summary>
internal sealed class BodyCounters
{
    public long Received;
    public long Sent;

    public void Install(HttpContext context)
    {
        var features = context.Features;
        if (features.Get<IRequestBodyPipeFeature>() is { } requestPipe && features.Get<IHttpRequestFeature>() is { } request)
        {
            // The server's reader first: replacing the request stream afterwards must not turn it into a stream adapter.
            var reader = requestPipe.Reader;
            features.Set<IRequestBodyPipeFeature>(new RequestPipe(new CountingPipeReader(reader, this)));
            request.Body = new CountingStream(request.Body, this, Direction.Received);
        }
        if (features.Get<IHttpResponseBodyFeature>() is { } response)
            features.Set<IHttpResponseBodyFeature>(new ResponseBody(response, this));
    }

    private enum Direction
    {
        Received,
        Sent,
    }

    private sealed class RequestPipe(PipeReader reader) : IRequestBodyPipeFeature
    {
        public PipeReader Reader => reader;
    }

    private sealed class ResponseBody(IHttpResponseBodyFeature inner, BodyCounters counters) : IHttpResponseBodyFeature
    {
        private readonly CountingPipeWriter _writer = new(inner.Writer, counters);
        private CountingStream? _stream;

        public Stream Stream => _stream ??= new CountingStream(inner.Stream, counters, Direction.Sent);
        public PipeWriter Writer => _writer;
        public void DisableBuffering() => inner.DisableBuffering();
        public Task StartAsync(CancellationToken cancellationToken = default) => inner.StartAsync(cancellationToken);
        public Task CompleteAsync() => inner.CompleteAsync();

        public async Task SendFileAsync(string path, long offset, long? count, CancellationToken cancellationToken = default)
        {
            await inner.SendFileAsync(path, offset, count, cancellationToken);
            counters.Sent += count ?? new FileInfo(path).Length - offset;
        }
    }

    private sealed class CountingPipeReader(PipeReader inner, BodyCounters counters) : PipeReader
    {
        private ReadOnlySequence<byte> _last;

        public override bool TryRead(out ReadResult result)
        {
            if (!inner.TryRead(out result)) return false;
            _last = result.Buffer;
            return true;
        }

        public override async ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
        {
            var result = await inner.ReadAsync(cancellationToken);
            _last = result.Buffer;
            return result;
        }

        protected override async ValueTask<ReadResult> ReadAtLeastAsyncCore(int minimumSize, CancellationToken cancellationToken)
        {
            var result = await inner.ReadAtLeastAsync(minimumSize, cancellationToken);
            _last = result.Buffer;
            return result;
        }

        public override void AdvanceTo(SequencePosition consumed)
        {
            Count(consumed);
            inner.AdvanceTo(consumed);
        }

        public override void AdvanceTo(SequencePosition consumed, SequencePosition examined)
        {
            Count(consumed);
            inner.AdvanceTo(consumed, examined);
        }

        private void Count(SequencePosition consumed)
        {
            counters.Received += _last.Slice(_last.Start, consumed).Length;
            _last = default;
        }

        public override void CancelPendingRead() => inner.CancelPendingRead();
        public override void Complete(Exception? exception = null) => inner.Complete(exception);
        public override ValueTask CompleteAsync(Exception? exception = null) => inner.CompleteAsync(exception);
    }

    private sealed class CountingPipeWriter(PipeWriter inner, BodyCounters counters) : PipeWriter
    {
        public override void Advance(int bytes)
        {
            counters.Sent += bytes;
            inner.Advance(bytes);
        }

        public override Memory<byte> GetMemory(int sizeHint = 0) => inner.GetMemory(sizeHint);
        public override Span<byte> GetSpan(int sizeHint = 0) => inner.GetSpan(sizeHint);

        public override ValueTask<FlushResult> WriteAsync(ReadOnlyMemory<byte> source, CancellationToken cancellationToken = default)
        {
            counters.Sent += source.Length;
            return inner.WriteAsync(source, cancellationToken);
        }

        public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default) =>
            inner.FlushAsync(cancellationToken);

        public override void CancelPendingFlush() => inner.CancelPendingFlush();
        public override void Complete(Exception? exception = null) => inner.Complete(exception);
        public override ValueTask CompleteAsync(Exception? exception = null) => inner.CompleteAsync(exception);
        public override bool CanGetUnflushedBytes => inner.CanGetUnflushedBytes;
        public override long UnflushedBytes => inner.UnflushedBytes;
    }

    private sealed class CountingStream(Stream inner, BodyCounters counters, Direction counts) : Stream
    {
        public override bool CanRead => inner.CanRead;
        public override bool CanSeek => false;
        public override bool CanWrite => inner.CanWrite;
        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => throw new NotSupportedException();
            set => throw new NotSupportedException();
        }

        public override int Read(byte[] buffer, int offset, int count) => Received(inner.Read(buffer, offset, count));
        public override int Read(Span<byte> buffer) => Received(inner.Read(buffer));

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            Received(await inner.ReadAsync(buffer, cancellationToken));

        public override void Write(byte[] buffer, int offset, int count)
        {
            inner.Write(buffer, offset, count);
            Sent(count);
        }

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            inner.Write(buffer);
            Sent(buffer.Length);
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            await inner.WriteAsync(buffer, cancellationToken);
            Sent(buffer.Length);
        }

        public override void Flush() => inner.Flush();
        public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();

        private int Received(int read)
        {
            if (counts == Direction.Received) counters.Received += read;
            return read;
        }

        private void Sent(int written)
        {
            if (counts == Direction.Sent) counters.Sent += written;
        }
    }
}
