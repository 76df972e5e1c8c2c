using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Win32.SafeHandles;

namespace Registry.Api.Http;

/// <summary>
/// Lets a response hand a file range to the kernel (<c>sendfile</c>) on a plain HTTP/1.1 connection, so blob bytes go
/// from the page cache to the socket without a copy through user space or a buffer held per response.
/// </summary>
/// <remarks>
/// Kestrel writes a connection's responses into a pipe that its socket transport drains; headers written there may
/// still be unsent when a response would start a raw <c>sendfile</c>. This connection middleware puts its own pipe in
/// between and drains it onto the socket itself, so it knows the byte position of everything sent. A response asks
/// (<see cref="SendAsync"/>) for "this file range right after the bytes written so far", then advances Kestrel's body
/// writer by the same count: Kestrel keeps its own bookkeeping (Content-Length, keep-alive, the next request), and this
/// writer drops those placeholder bytes, whose place on the wire the file range takes. Only HTTP/1.x over a connection
/// without TLS qualifies (<see cref="For"/>); anything else takes the ordinary copy.
/// </remarks>
internal sealed class SendFileTransport : PipeWriter
{
    // The per-call size of a kernel send: large enough that its overhead vanishes, small enough that the minimum
    // data rate is checked often.
    private const int SendFileChunk = 1024 * 1024;
    // Memory handed to Kestrel for placeholder bytes. Nobody reads or writes it, so one array serves every connection.
    private static readonly byte[] Placeholder = GC.AllocateUninitializedArray<byte>(64 * 1024);

    private readonly ConnectionContext _connection;
    private readonly Socket _socket;
    private readonly MinDataRate? _minRate;
    private readonly Pipe _pipe;
    private readonly Lock _lock = new();
    private long _written;
    private long _placeholders;
    private long _sent;
    private Range? _pending;
    private bool _stopped;
    private SocketAsyncEventArgs? _sendFileArgs;

    private SendFileTransport(ConnectionContext connection, Socket socket, MinDataRate? minRate)
    {
        _connection = connection;
        _socket = socket;
        _minRate = minRate;
        var pool = connection.Features.Get<IMemoryPoolFeature>()?.MemoryPool ?? MemoryPool<byte>.Shared;
        // The same bounds Kestrel puts on its own transport pipe (its default MaxResponseBufferSize).
        _pipe = new Pipe(new PipeOptions(pool, PipeScheduler.ThreadPool, PipeScheduler.ThreadPool,
            pauseWriterThreshold: 64 * 1024, resumeWriterThreshold: 32 * 1024, minimumSegmentSize: 4096,
            useSynchronizationContext: false));
    }

    /// <summary>
    /// Kestrel connection middleware: every connection on a socket gets this transport in front of it. A client that
    /// reads a file range slower than <paramref name="minRate"/> (Kestrel's MinResponseDataRate, which does not see
    /// these bytes) loses the connection, as it would on any other response.
    /// </summary>
    public static Func<ConnectionDelegate, ConnectionDelegate> Middleware(MinDataRate? minRate) => next => async connection =>
    {
        var socket = connection.Features.Get<IConnectionSocketFeature>()?.Socket;
        if (socket is null)
        {
            await next(connection);
            return;
        }
        var transport = new SendFileTransport(connection, socket, minRate);
        var original = connection.Transport;
        connection.Transport = new DuplexPipe(original.Input, transport);
        connection.Features.Set(transport);
        var sending = transport.SendLoopAsync();
        Exception? failure = null;
        try
        {
            await next(connection);
        }
        catch (Exception e)
        {
            failure = e;
            throw;
        }
        finally
        {
            transport.Complete(failure);
            await sending;
            connection.Transport = original;
            // Only now may the socket transport shut the socket down: everything written has been sent.
            await original.Output.CompleteAsync(failure);
        }
    };

    /// <summary>The transport of this request's connection when a response may use it, otherwise null.</summary>
    public static SendFileTransport? For(HttpContext context) =>
        !context.Request.IsHttps && (HttpProtocol.IsHttp11(context.Request.Protocol)
            || HttpProtocol.IsHttp10(context.Request.Protocol))
            ? context.Features.Get<SendFileTransport>()
            : null;

    /// <summary>
    /// Sends <paramref name="count"/> bytes of <paramref name="file"/> from <paramref name="offset"/> as the body of the
    /// started response. The caller has started the response with a Content-Length of at least <paramref name="count"/>
    /// and flushed it. Returns false when the connection went away first (nothing more can be sent on it).
    /// </summary>
    public async Task<bool> SendAsync(HttpResponse response, SafeFileHandle file, long offset, long count)
    {
        var range = new Range(file, offset, count);
        lock (_lock)
        {
            if (_stopped) return false;
            if (_pending is not null || _placeholders > 0)
                throw new InvalidOperationException("a file range is already being sent on this connection");
            range.Position = _written;
            _placeholders = count;
            _pending = range;
        }
        _pipe.Reader.CancelPendingRead();
        // Kestrel's body writer counts these bytes against Content-Length; Advance below drops them.
        var body = response.BodyWriter;
        for (var left = count; left > 0;)
        {
            var step = (int)Math.Min(body.GetMemory().Length, left);
            body.Advance(step);
            left -= step;
        }
        return await range.Done.Task;
    }

    public override Memory<byte> GetMemory(int sizeHint = 0) =>
        _placeholders > 0
            ? sizeHint <= Placeholder.Length ? Placeholder : new byte[sizeHint]
            : _pipe.Writer.GetMemory(sizeHint);

    public override Span<byte> GetSpan(int sizeHint = 0) => GetMemory(sizeHint).Span;

    public override void Advance(int bytes)
    {
        if (_placeholders > 0)
        {
            if (bytes > _placeholders)
                throw new InvalidOperationException("the response wrote past its file range");
            _placeholders -= bytes;
            return;
        }
        _pipe.Writer.Advance(bytes);
        _written += bytes;
    }

    public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default) =>
        _pipe.Writer.FlushAsync(cancellationToken);

    public override void CancelPendingFlush() => _pipe.Writer.CancelPendingFlush();

    public override bool CanGetUnflushedBytes => true;

    public override long UnflushedBytes => _pipe.Writer.UnflushedBytes;

    public override void Complete(Exception? exception = null) => _pipe.Writer.Complete(exception);

    private async Task SendLoopAsync()
    {
        var reader = _pipe.Reader;
        Exception? failure = null;
        List<ArraySegment<byte>>? segments = null;
        try
        {
            while (true)
            {
                var result = await reader.ReadAsync();
                var buffer = result.Buffer;
                try
                {
                    while (true)
                    {
                        Range? range;
                        lock (_lock) range = _pending;
                        var beforeRange = range is null ? long.MaxValue : range.Position - _sent;
                        if (beforeRange == 0)
                        {
                            await SendFileAsync(range!);
                            lock (_lock) _pending = null;
                            range!.Done.TrySetResult(true);
                            continue;
                        }
                        if (buffer.IsEmpty) break;
                        var part = beforeRange >= buffer.Length ? buffer : buffer.Slice(0, beforeRange);
                        await SendAsync(part, segments ??= []);
                        _sent += part.Length;
                        buffer = buffer.Slice(part.End);
                    }
                }
                finally
                {
                    reader.AdvanceTo(buffer.Start, buffer.End);
                }
                if (result.IsCompleted) break;
            }
        }
        catch (Exception e)
        {
            // The peer went away or Kestrel aborted the connection; either way nothing more goes out on it.
            failure = e;
            _connection.Abort(new ConnectionAbortedException("the connection failed while sending", e));
        }
        finally
        {
            Range? orphan;
            lock (_lock)
            {
                _stopped = true;
                orphan = _pending;
                _pending = null;
            }
            if (orphan is not null)
            {
                if (failure is BlobShortException short_) orphan.Done.TrySetException(short_);
                else orphan.Done.TrySetResult(false);
            }
            await reader.CompleteAsync(failure);
            _sendFileArgs?.Dispose();
        }
    }

    private async ValueTask SendAsync(ReadOnlySequence<byte> bytes, List<ArraySegment<byte>> segments)
    {
        if (bytes.IsSingleSegment)
        {
            await SendAllAsync(bytes.First);
            return;
        }
        segments.Clear();
        foreach (var memory in bytes)
        {
            if (!MemoryMarshal.TryGetArray(memory, out var array))
            {
                await SendAllAsync(bytes);
                return;
            }
            segments.Add(array);
        }
        // A list send is one sendmsg; stream sockets send all of it before completing.
        var sent = await _socket.SendAsync(segments, SocketFlags.None);
        if (sent != bytes.Length) await SendAllAsync(bytes.Slice(sent));
    }

    private async ValueTask SendAllAsync(ReadOnlySequence<byte> bytes)
    {
        foreach (var memory in bytes) await SendAllAsync(memory);
    }

    private async ValueTask SendAllAsync(ReadOnlyMemory<byte> bytes)
    {
        while (!bytes.IsEmpty)
        {
            var sent = await _socket.SendAsync(bytes, SocketFlags.None);
            bytes = bytes[sent..];
        }
    }

    private async Task SendFileAsync(Range range)
    {
        await using var stream = new FileStream(range.File, FileAccess.Read, bufferSize: 0, isAsync: true);
        var args = _sendFileArgs ??= NewSendFileArgs();
        for (long done = 0; done < range.Count;)
        {
            var chunk = (int)Math.Min(SendFileChunk, range.Count - done);
            var completion = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
            using var tooSlow = _minRate is null ? null
                : new CancellationTokenSource(_minRate.GracePeriod + TimeSpan.FromSeconds(chunk / _minRate.BytesPerSecond));
            using var abort = tooSlow?.Token.Register(static state => ((ConnectionContext)state!).Abort(
                new ConnectionAbortedException("the client read slower than the minimum response data rate")), _connection);
            args.UserToken = completion;
            args.SendPacketsElements = [new SendPacketsElement(stream, range.Offset + done, chunk, endOfPacket: true)];
            if (!_socket.SendPacketsAsync(args)) Completed(null, args);
            var sent = await completion.Task;
            if (sent == 0) throw new BlobShortException();
            done += sent;
        }

        static SocketAsyncEventArgs NewSendFileArgs()
        {
            var args = new SocketAsyncEventArgs();
            args.Completed += Completed;
            return args;
        }

        static void Completed(object? sender, SocketAsyncEventArgs args)
        {
            var completion = (TaskCompletionSource<int>)args.UserToken!;
            if (args.SocketError == SocketError.Success) completion.TrySetResult(checked((int)args.BytesTransferred));
            else completion.TrySetException(new SocketException((int)args.SocketError));
        }
    }

    private sealed class Range(SafeFileHandle file, long offset, long count)
    {
        public SafeFileHandle File { get; } = file;
        public long Offset { get; } = offset;
        public long Count { get; } = count;
        public long Position { get; set; }
        public TaskCompletionSource<bool> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private sealed class DuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;
        public PipeWriter Output { get; } = output;
    }
}

/// <summary>The blob's file ended before the range the response promised.</summary>
internal sealed class BlobShortException() : IOException("blob file is shorter than recorded");
