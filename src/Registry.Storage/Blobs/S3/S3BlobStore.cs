using System.IO.Pipelines;
using System.Net;
using System.Security.Cryptography;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;
using Registry.Storage.Model;

namespace Registry.Storage.Blobs.S3;

/// <summary>Presigned download URLs, for stores whose clients can fetch content from the store itself.</summary>
public interface IBlobRedirects
{
    /// <summary>A URL that serves the blob's bytes for <paramref name="expiry"/>, or null if the blob is not stored.</summary>
    ValueTask<Uri?> GetDownloadUrlAsync(Digest digest, TimeSpan expiry, CancellationToken ct);
}

/// <summary>
/// Blobs in an S3-compatible bucket (Ceph RGW, AWS S3), laid out by <see cref="S3Bucket"/>.
/// <para>
/// An upload session is a multipart upload plus a state object (<see cref="IUploadSessionStore"/>) holding its parts,
/// its size, the SHA-256 state over every byte received and the pending tail (the last bytes, fewer than S3's 5 MiB
/// minimum part, kept in an object of their own). An append reads the tail back, streams tail and body through one
/// part-sized buffer into parts, writes what is left as a new tail object, and commits by replacing the state with a
/// conditional PUT: a cut-off append leaves the old state, whose parts and tail are untouched. Nothing lives in
/// process memory between requests, so any replica can take a session's next request.
/// </para>
/// <para>
/// Commit checks the digest from the stored hash state (nothing is read back), completes the multipart upload under
/// the session's key and copies it server-side to the digest's key: the digest key appears only once, whole, and only
/// after verification. A single-request upload is hashed while it streams into a temporary key (or a buffer, when it
/// fits in one part) and copied (or written) to the digest's key only if it matches.
/// </para>
/// </summary>
public sealed class S3BlobStore : IBlobStore, IBlobRedirects
{
    /// <summary>S3's smallest part (except the last).</summary>
    public const int MinPartSize = 5 << 20;

    /// <summary>S3's most parts per multipart upload.</summary>
    private const int MaxParts = 10_000;

    /// <summary>Largest object one CopyObject may copy; beyond it the copy is a multipart copy.</summary>
    private const long MaxSingleCopy = 5L << 30;

    private const long CopyPartSize = 1L << 30;

    private readonly S3Bucket _bucket;
    private readonly IUploadSessionStore _sessions;
    private readonly int _partSize;
    private readonly long _maxSingleCopy;
    private readonly SessionGates _gates = new();
    private readonly System.Buffers.ArrayPool<byte> _buffers;

    /// <param name="partSize">Bytes per part (and per buffer held by one request in flight); at least 5 MiB.</param>
    /// <param name="maxSingleCopy">Above this size, publishing copies in parts (tests lower it).</param>
    public S3BlobStore(S3Bucket bucket, IUploadSessionStore sessions, int partSize = 8 << 20, long maxSingleCopy = MaxSingleCopy)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(partSize, MinPartSize);
        _bucket = bucket;
        _sessions = sessions;
        _partSize = partSize;
        _maxSingleCopy = maxSingleCopy;
        _buffers = System.Buffers.ArrayPool<byte>.Create(partSize, 32);
    }

    public S3Bucket Bucket => _bucket;

    public async ValueTask<BlobContent?> OpenAsync(Digest digest, CancellationToken ct)
    {
        var key = _bucket.BlobKey(digest);
        if (await _bucket.HeadAsync(key, ct) is not { } head) return null;
        var length = head.ContentLength;
        return new BlobContent(length, null, () => new S3ObjectStream(_bucket, key, length));
    }

    /// <summary>
    /// One ranged GET of exactly the range (sent now, so a blob that is gone is null before the response starts); a
    /// GET cut off midway is reopened where it stopped. An empty range is a HEAD.
    /// </summary>
    public async ValueTask<Stream?> OpenRangeAsync(Digest digest, long offset, long length, CancellationToken ct)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        var key = _bucket.BlobKey(digest);
        if (length == 0)
        {
            if (await _bucket.HeadAsync(key, ct) is not { } head) return null;
            ArgumentOutOfRangeException.ThrowIfGreaterThan(offset, head.ContentLength);
            return new MemoryStream([], writable: false);
        }
        var stream = new S3ObjectStream(_bucket, key, offset, length);
        try
        {
            if (await stream.OpenNowAsync(ct)) return stream;
        }
        catch
        {
            await stream.DisposeAsync();
            throw;
        }
        await stream.DisposeAsync();
        return null;
    }

    public async ValueTask<bool> ExistsAsync(Digest digest, CancellationToken ct) =>
        await _bucket.HeadAsync(_bucket.BlobKey(digest), ct) is not null;

    public async ValueTask<Uri?> GetDownloadUrlAsync(Digest digest, TimeSpan expiry, CancellationToken ct)
    {
        var key = _bucket.BlobKey(digest);
        if (await _bucket.HeadAsync(key, ct) is null) return null;
        var url = await _bucket.Client.GetPreSignedURLAsync(new GetPreSignedUrlRequest
        {
            BucketName = _bucket.Name,
            Key = key,
            Verb = HttpVerb.GET,
            Expires = DateTime.UtcNow.Add(expiry),
            Protocol = _bucket.Client.Config.ServiceURL?.StartsWith("https:", StringComparison.OrdinalIgnoreCase) == false
                ? Protocol.HTTP
                : Protocol.HTTPS,
        });
        return new Uri(url);
    }

    /// <summary>The caller computed <paramref name="digest"/> from <paramref name="content"/>: one PUT, whole or not at all.</summary>
    public async ValueTask PutAsync(Digest digest, ReadOnlyMemory<byte> content, CancellationToken ct)
    {
        var key = _bucket.BlobKey(digest);
        if (await _bucket.HeadAsync(key, ct) is not null) return;
        await _bucket.PutAsync(key, content, ct);
    }

    public async ValueTask<CommitResult> StoreAsync(Digest digest, PipeReader body, long? expectedLength, CancellationToken ct)
    {
        using var hash = IncrementalHash.CreateHash(Digest.HashName(digest.Algorithm));
        var key = _bucket.BlobKey(digest);
        var buffer = _buffers.Rent(_partSize);
        MultipartWriter? temp = null;
        try
        {
            if (await _bucket.HeadAsync(key, ct) is not null)
            {
                // Deduplicated: hashed only, so a wrong digest is still refused.
                var read = await PumpAsync(body, buffer, 0, expectedLength, null, hash, static (_, _, _) => Task.CompletedTask, ct);
                return Verified(read.Status, read.Received, hash, digest);
            }

            // The digest is known before the first byte: the parts go to a multipart upload of the digest's own key,
            // which shows nothing under that key until its Complete, sent only once the last byte is verified.
            temp = new MultipartWriter(_bucket, key, null, []);
            var pumped = await PumpAsync(body, buffer, 0, expectedLength, null, hash,
                (data, count, t) => temp.UploadPartAsync(data.AsMemory(0, count), t), ct);
            var result = Verified(pumped.Status, pumped.Received, hash, digest);
            if (result.Status != CommitStatus.Committed) return result;
            if (temp.UploadId is null)
            {
                // It fitted in one buffer: verified in memory, then one PUT to the digest's key.
                await _bucket.PutAsync(key, buffer.AsMemory(0, pumped.Filled), ct);
                return result;
            }
            if (pumped.Filled > 0) await temp.UploadPartAsync(buffer.AsMemory(0, pumped.Filled), ct);
            await temp.CompleteAsync(ct);
            temp = null;
            return result;
        }
        finally
        {
            _buffers.Return(buffer);
            if (temp?.UploadId is not null) await temp.AbortQuietlyAsync();
        }
    }

    private static CommitResult Verified(AppendStatus status, long size, IncrementalHash hash, Digest expected) => status switch
    {
        AppendStatus.Appended when Digest.FromHash(expected.Algorithm, hash.GetCurrentHash()) == expected =>
            new CommitResult(CommitStatus.Committed, size),
        AppendStatus.Appended => new CommitResult(CommitStatus.DigestMismatch, size),
        AppendStatus.StorageFull => new CommitResult(CommitStatus.StorageFull, size),
        _ => new CommitResult(CommitStatus.Incomplete, size),
    };

    public async ValueTask CreateUploadAsync(UploadId id, CancellationToken ct)
    {
        if (!await _sessions.CreateAsync(id, UploadSessionState.Empty(), ct))
            throw new InvalidOperationException($"upload session {id.Value} exists already");
    }

    public async ValueTask<long?> GetUploadSizeAsync(UploadId id, CancellationToken ct)
    {
        // An append in progress on this replica is waited for (it may yet fail); one on another replica has not
        // committed its state, so the size read is the one before it.
        await _gates.WaitIdleAsync(id.Value, ct);
        return (await _sessions.GetAsync(id, ct))?.State.Size;
    }

    /// <summary>Sessions this replica has a request of in progress (the rest of the time it keeps nothing per session).</summary>
    internal int SessionsInProgress => _gates.Count;

    public async ValueTask<AppendResult> AppendAsync(UploadId id, long? offset, PipeReader body, long? expectedLength,
        CancellationToken ct)
    {
        using var gate = await _gates.EnterAsync(id.Value, ct);
        byte[]? buffer = null;
        string? newTail = null;
        try
        {
            if (await _sessions.GetAsync(id, ct) is not { } loaded) return new AppendResult(AppendStatus.UnknownSession, 0);
            var state = loaded.State;
            if (offset is { } o && o != state.Size) return new AppendResult(AppendStatus.OutOfOrder, state.Size);

            buffer = _buffers.Rent(_partSize);
            var filled = 0;
            if (state.TailKey is { } tailKey && state.TailSize > 0)
            {
                // Only a session being removed (a commit or cancel that deletes the tail before the state, and stopped
                // in between, e.g. with its replica killed) names a tail that is gone: the session is over.
                if (await _bucket.ReadAllAsync(tailKey, buffer.AsMemory(0, (int)state.TailSize), ct) is not { } read)
                    return new AppendResult(AppendStatus.UnknownSession, 0);
                filled = read;
            }

            var hash = Sha256State.Import(state.HashState);
            var writer = new MultipartWriter(_bucket, _bucket.DataKey(id), state.MultipartUploadId, state.Parts);
            Pumped pumped;
            try
            {
                pumped = await PumpAsync(body, buffer, filled, expectedLength, hash, null,
                    (data, count, t) => writer.UploadPartAsync(data.AsMemory(0, count), t), ct);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return new AppendResult(AppendStatus.Incomplete, state.Size);
            }
            catch (TooManyPartsException)
            {
                return new AppendResult(AppendStatus.StorageFull, state.Size);
            }
            if (pumped.Status != AppendStatus.Appended) return new AppendResult(pumped.Status, state.Size);
            if (pumped.Received == 0) return new AppendResult(AppendStatus.Appended, state.Size);

            filled = pumped.Filled;
            if (filled >= MinPartSize)
            {
                await writer.UploadPartAsync(buffer.AsMemory(0, filled), ct);
                filled = 0;
            }
            if (filled > 0)
            {
                newTail = _bucket.NewTailKey(id);
                await _bucket.PutAsync(newTail, buffer.AsMemory(0, filled), ct);
            }
            var next = new UploadSessionState(writer.UploadId, writer.Parts, state.Size + pumped.Received, hash.Export(),
                newTail, filled);
            bool replaced;
            try
            {
                replaced = await _sessions.ReplaceAsync(id, next, loaded.Version, ct);
            }
            catch
            {
                // The replace may have landed with its answer lost: the state may name the new tail, so it stays
                // (PurgeTemp removes it later if no state names it).
                newTail = null;
                throw;
            }
            if (!replaced)
            {
                // Another replica appended (or the session ended) in between: this append did not happen.
                var current = await _sessions.GetAsync(id, ct);
                return current is null
                    ? new AppendResult(AppendStatus.UnknownSession, 0)
                    : new AppendResult(AppendStatus.OutOfOrder, current.State.Size);
            }
            newTail = null;
            if (state.TailKey is { } old) await DeleteQuietlyAsync(old);
            return new AppendResult(AppendStatus.Appended, next.Size);
        }
        finally
        {
            if (buffer is not null) _buffers.Return(buffer);
            if (newTail is not null) await DeleteQuietlyAsync(newTail);
        }
    }

    private readonly record struct Pumped(AppendStatus Status, long Received, int Filled);

    /// <summary>
    /// Streams <paramref name="body"/> into <paramref name="buffer"/> (which holds <paramref name="filled"/> bytes
    /// already), hashing every byte of the body, and hands the buffer to <paramref name="full"/> each time it fills.
    /// </summary>
    private async ValueTask<Pumped> PumpAsync(PipeReader body, byte[] buffer, int filled, long? expectedLength,
        Sha256State? managed, IncrementalHash? platform, Func<byte[], int, CancellationToken, Task> full, CancellationToken ct)
    {
        long received = 0;
        while (true)
        {
            ReadResult result;
            try
            {
                result = await body.ReadAsync(ct);
            }
            catch (Exception e) when (e is IOException or OperationCanceledException)
            {
                // The client went away, sent a short body, or the request was aborted.
                return new Pumped(AppendStatus.Incomplete, received, filled);
            }
            var sequence = result.Buffer;
            if (expectedLength is { } max && received + sequence.Length > max)
            {
                body.AdvanceTo(sequence.End);
                return new Pumped(AppendStatus.Incomplete, received, filled);
            }
            foreach (var segment in sequence)
            {
                var rest = segment;
                while (!rest.IsEmpty)
                {
                    // The pool may hand out a larger array than asked for: a part is exactly _partSize bytes.
                    var n = Math.Min(rest.Length, _partSize - filled);
                    var piece = rest.Span[..n];
                    piece.CopyTo(buffer.AsSpan(filled));
                    managed?.Append(piece);
                    platform?.AppendData(piece);
                    filled += n;
                    received += n;
                    rest = rest[n..];
                    if (filled == _partSize)
                    {
                        await full(buffer, filled, ct);
                        filled = 0;
                    }
                }
            }
            body.AdvanceTo(sequence.End);
            if (result.IsCompleted || result.IsCanceled) break;
        }
        if (expectedLength is { } expected && received != expected)
            return new Pumped(AppendStatus.Incomplete, received, filled);
        return new Pumped(AppendStatus.Appended, received, filled);
    }

    public async ValueTask<CommitResult> CommitAsync(UploadId id, Digest expected, long? expectedSize, CancellationToken ct)
    {
        using var gate = await _gates.EnterAsync(id.Value, ct);
        if (await _sessions.GetAsync(id, ct) is not { } loaded) return new CommitResult(CommitStatus.UnknownSession, 0);
        var state = loaded.State;
        if (expectedSize is { } s && s != state.Size)
        {
            await DiscardAsync(id, state, ct);
            return new CommitResult(CommitStatus.SizeMismatch, state.Size);
        }
        if (expected.Algorithm == DigestAlgorithm.Sha256
            && Digest.FromHash(DigestAlgorithm.Sha256, Sha256State.Import(state.HashState).GetCurrentHash()) != expected)
        {
            await DiscardAsync(id, state, ct);
            return new CommitResult(CommitStatus.DigestMismatch, state.Size);
        }
        var key = _bucket.BlobKey(expected);
        if (expected.Algorithm == DigestAlgorithm.Sha256 && await _bucket.HeadAsync(key, ct) is not null)
        {
            await DiscardAsync(id, state, ct);
            return new CommitResult(CommitStatus.Committed, state.Size);
        }

        // The session's bytes as one object: the tail object itself, or the multipart upload completed with the
        // tail as its last part.
        string? source = state.TailKey;
        if (state.MultipartUploadId is not null
            && (await _bucket.HeadAsync(_bucket.DataKey(id), ct))?.ContentLength == state.Size)
        {
            // Completed by an earlier attempt of this commit that failed before its copy.
            source = _bucket.DataKey(id);
        }
        else if (state.MultipartUploadId is not null)
        {
            var writer = new MultipartWriter(_bucket, _bucket.DataKey(id), state.MultipartUploadId, state.Parts);
            if (state.TailSize > 0)
            {
                var buffer = _buffers.Rent(_partSize);
                try
                {
                    // Gone: a cancel (or a discard after a digest mismatch) stopped halfway; finish it.
                    if (await _bucket.ReadAllAsync(state.TailKey!, buffer.AsMemory(0, (int)state.TailSize), ct) is not { } read)
                    {
                        await DiscardAsync(id, state, ct);
                        return new CommitResult(CommitStatus.UnknownSession, 0);
                    }
                    await writer.UploadPartAsync(buffer.AsMemory(0, read), ct);
                }
                finally
                {
                    _buffers.Return(buffer);
                }
            }
            await writer.CompleteAsync(ct);
            source = _bucket.DataKey(id);
        }

        if (expected.Algorithm != DigestAlgorithm.Sha256)
        {
            // Only sha256 state is kept while streaming; other algorithms are verified by reading the bytes back.
            var actual = source is null ? Digest.Compute(expected.Algorithm, []) : await HashObjectAsync(source, state.Size, expected.Algorithm, ct);
            if (actual != expected)
            {
                await DiscardAsync(id, state, ct);
                return new CommitResult(CommitStatus.DigestMismatch, state.Size);
            }
        }

        if (source is null) await _bucket.PutAsync(key, ReadOnlyMemory<byte>.Empty, ct);
        else if (await _bucket.HeadAsync(key, ct) is null)
        {
            try
            {
                await CopyAsync(source, key, state.Size, ct);
            }
            catch (AmazonS3Exception e) when (e.StatusCode == HttpStatusCode.NotFound && source == state.TailKey)
            {
                // The tail is gone and the blob is not there: a cancel or discard stopped halfway; finish it.
                await DiscardAsync(id, state, ct);
                return new CommitResult(CommitStatus.UnknownSession, 0);
            }
        }
        await DiscardAsync(id, state with { MultipartUploadId = null }, ct);
        return new CommitResult(CommitStatus.Committed, state.Size);
    }

    private async Task<Digest> HashObjectAsync(string key, long length, DigestAlgorithm algorithm, CancellationToken ct)
    {
        using var hash = IncrementalHash.CreateHash(Digest.HashName(algorithm));
        await using var stream = new S3ObjectStream(_bucket, key, length);
        var buffer = _buffers.Rent(_partSize);
        try
        {
            int read;
            while ((read = await stream.ReadAsync(buffer, ct)) > 0) hash.AppendData(buffer, 0, read);
        }
        finally
        {
            _buffers.Return(buffer);
        }
        return Digest.FromHash(algorithm, hash.GetCurrentHash());
    }

    /// <summary>
    /// Server-side copy of a verified object to its digest key: one CopyObject, or for objects beyond S3's 5 GiB copy
    /// limit a multipart copy whose Complete is the instant the key appears.
    /// </summary>
    private async Task CopyAsync(string source, string target, long size, CancellationToken ct)
    {
        if (size <= _maxSingleCopy)
        {
            await _bucket.RetryAsync(t => _bucket.Client.CopyObjectAsync(new CopyObjectRequest
            {
                SourceBucket = _bucket.Name,
                SourceKey = source,
                DestinationBucket = _bucket.Name,
                DestinationKey = target,
            }, t), ct);
            return;
        }
        var writer = new MultipartWriter(_bucket, target, null, []);
        try
        {
            for (long first = 0; first < size; first += CopyPartSize)
                await writer.CopyPartAsync(source, first, Math.Min(size, first + CopyPartSize) - 1, ct);
            await writer.CompleteAsync(ct);
        }
        catch
        {
            await writer.AbortQuietlyAsync();
            throw;
        }
    }

    /// <summary>Removes a session: its multipart upload, data, tail and state (the state last, so a failure can be retried).</summary>
    private async Task DiscardAsync(UploadId id, UploadSessionState state, CancellationToken ct)
    {
        if (state.MultipartUploadId is { } uploadId) await _bucket.AbortAsync(_bucket.DataKey(id), uploadId, ct);
        await _bucket.DeleteAsync(_bucket.DataKey(id), ct);
        if (state.TailKey is { } tail) await _bucket.DeleteAsync(tail, ct);
        await _sessions.DeleteAsync(id, ct);
    }

    private async Task DeleteQuietlyAsync(string key)
    {
        try
        {
            await _bucket.DeleteAsync(key, CancellationToken.None);
        }
        catch (Exception e) when (e is AmazonServiceException or IOException or HttpRequestException)
        {
            // Left for PurgeTemp.
        }
    }

    public async ValueTask CancelUploadAsync(UploadId id, CancellationToken ct)
    {
        using var gate = await _gates.EnterAsync(id.Value, ct);
        if (await _sessions.GetAsync(id, ct) is { } loaded) await DiscardAsync(id, loaded.State, ct);
    }

    /// <summary>Every blob in the bucket, listed a page at a time (ListObjectsV2).</summary>
    public async IAsyncEnumerable<Digest> EnumerateBlobsAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
    {
        await foreach (var item in _bucket.ListAsync(_bucket.BlobsPrefix, ct))
            if (_bucket.DigestOf(item.Key) is { } digest)
                yield return digest;
    }

    private static IEnumerable<T> ToEnumerable<T>(IAsyncEnumerable<T> source)
    {
        var e = source.GetAsyncEnumerator();
        try
        {
            while (e.MoveNextAsync().AsTask().GetAwaiter().GetResult()) yield return e.Current;
        }
        finally
        {
            e.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }

    public DateTimeOffset? WrittenAt(Digest digest) =>
        _bucket.HeadAsync(_bucket.BlobKey(digest), CancellationToken.None).AsTask().GetAwaiter().GetResult()?.LastModified is { } at
            ? new DateTimeOffset(at.ToUniversalTime(), TimeSpan.Zero)
            : null;

    public async ValueTask<DeletedBlob?> DeleteAsync(Digest digest, CancellationToken ct)
    {
        var key = _bucket.BlobKey(digest);
        if (await _bucket.HeadAsync(key, ct) is not { } head) return null;
        await _bucket.DeleteAsync(key, ct);
        return new DeletedBlob(head.ContentLength);
    }

    public IReadOnlyList<UploadId> ListUploadsWrittenBefore(DateTimeOffset before) =>
        ToEnumerable(_sessions.ListWrittenBeforeAsync(before, CancellationToken.None)).ToList();

    public (int Files, long Bytes) PurgeTemp(DateTimeOffset before) =>
        PurgeTempAsync(before, CancellationToken.None).AsTask().GetAwaiter().GetResult();

    /// <summary>
    /// Deletes what writes that never completed left behind, last written before <paramref name="before"/>:
    /// temporary keys of single-request uploads, tails no session state names any more, and multipart uploads that
    /// belong to no session (a request cut off after starting one). Returns how many objects and their bytes
    /// (multipart uploads count as one, without bytes).
    /// </summary>
    public async ValueTask<(int Files, long Bytes)> PurgeTempAsync(DateTimeOffset before, CancellationToken ct)
    {
        int files = 0;
        long bytes = 0;
        bool Old(DateTime? at) => at is { } t && new DateTimeOffset(t.ToUniversalTime(), TimeSpan.Zero) < before;

        await foreach (var item in _bucket.ListAsync(_bucket.TempPrefix, ct))
        {
            if (!Old(item.LastModified)) continue;
            await _bucket.DeleteAsync(item.Key, ct);
            files++;
            bytes += item.Size ?? 0;
        }

        var states = new Dictionary<string, UploadSessionState?>();
        async ValueTask<UploadSessionState?> StateOf(UploadId id)
        {
            if (!states.TryGetValue(id.Value, out var state))
                states[id.Value] = state = (await _sessions.GetAsync(id, ct))?.State;
            return state;
        }

        await foreach (var item in _bucket.ListAsync(_bucket.UploadsPrefix, ct))
        {
            if (!Old(item.LastModified) || !item.Key.Contains("/tail/", StringComparison.Ordinal) || _bucket.UploadOf(item.Key) is not { } id)
                continue;
            if ((await StateOf(id))?.TailKey == item.Key) continue;
            await _bucket.DeleteAsync(item.Key, ct);
            files++;
            bytes += item.Size ?? 0;
        }

        var multipart = new List<MultipartUpload>();
        await foreach (var upload in _bucket.ListMultipartUploadsAsync(_bucket.Prefix, ct)) multipart.Add(upload);
        foreach (var upload in multipart)
        {
            if (!Old(upload.Initiated)) continue;
            if (_bucket.UploadOf(upload.Key) is { } id && (await StateOf(id))?.MultipartUploadId == upload.UploadId) continue;
            await _bucket.AbortAsync(upload.Key, upload.UploadId, ct);
            files++;
        }
        return (files, bytes);
    }

    private sealed class TooManyPartsException() : Exception("a multipart upload holds at most 10 000 parts");

    /// <summary>The parts of one multipart upload, started at its first part.</summary>
    private sealed class MultipartWriter(S3Bucket bucket, string key, string? uploadId, IReadOnlyList<UploadedPart> parts)
    {
        private readonly List<UploadedPart> _parts = [.. parts];

        public string? UploadId { get; private set; } = uploadId;

        public IReadOnlyList<UploadedPart> Parts => _parts;

        private async Task<string> StartedAsync(CancellationToken ct)
        {
            if (UploadId is { } id) return id;
            if (_parts.Count >= MaxParts) throw new TooManyPartsException();
            // Not retried: a second attempt would start a second upload (the first is then aborted by PurgeTemp).
            var started = await bucket.Client.InitiateMultipartUploadAsync(new InitiateMultipartUploadRequest
            {
                BucketName = bucket.Name,
                Key = key,
                ContentType = "application/octet-stream",
            }, ct);
            return UploadId = started.UploadId;
        }

        /// <summary>Uploads the next part from memory (retried: the same part number and bytes again is idempotent).</summary>
        public async Task UploadPartAsync(ReadOnlyMemory<byte> data, CancellationToken ct)
        {
            var id = await StartedAsync(ct);
            var number = _parts.Count + 1;
            if (number > MaxParts) throw new TooManyPartsException();
            var response = await bucket.RetryAsync(t => bucket.Client.UploadPartAsync(new UploadPartRequest
            {
                BucketName = bucket.Name,
                Key = key,
                UploadId = id,
                PartNumber = number,
                InputStream = new MemoryStream(System.Runtime.InteropServices.MemoryMarshal.TryGetArray(data, out var array)
                    ? array.Array! : data.ToArray(), array.Offset, data.Length, writable: false),
                PartSize = data.Length,
                UseChunkEncoding = false,
            }, t), ct);
            _parts.Add(new UploadedPart(number, response.ETag, data.Length));
        }

        public async Task CopyPartAsync(string source, long first, long last, CancellationToken ct)
        {
            var id = await StartedAsync(ct);
            var number = _parts.Count + 1;
            var response = await bucket.RetryAsync(t => bucket.Client.CopyPartAsync(new CopyPartRequest
            {
                SourceBucket = bucket.Name,
                SourceKey = source,
                DestinationBucket = bucket.Name,
                DestinationKey = key,
                UploadId = id,
                PartNumber = number,
                FirstByte = first,
                LastByte = last,
            }, t), ct);
            _parts.Add(new UploadedPart(number, response.ETag, last - first + 1));
        }

        /// <summary>
        /// Completes the upload with exactly the recorded parts (parts a cut-off append left behind are not in the
        /// list, so they are dropped). Retried: when an attempt completed but its answer was lost, the next one finds
        /// no upload and the object in place.
        /// </summary>
        public async Task CompleteAsync(CancellationToken ct)
        {
            var expectedSize = _parts.Sum(p => p.Size);
            try
            {
                await bucket.RetryAsync(t => bucket.Client.CompleteMultipartUploadAsync(new CompleteMultipartUploadRequest
                {
                    BucketName = bucket.Name,
                    Key = key,
                    UploadId = UploadId,
                    PartETags = [.. _parts.Select(p => new PartETag(p.Number, p.ETag))],
                }, t), ct);
            }
            catch (AmazonS3Exception e) when (e.StatusCode == HttpStatusCode.NotFound)
            {
                if ((await bucket.HeadAsync(key, ct))?.ContentLength != expectedSize) throw;
            }
            UploadId = null;
        }

        public async Task AbortQuietlyAsync()
        {
            if (UploadId is not { } id) return;
            try
            {
                await bucket.AbortAsync(key, id, CancellationToken.None);
            }
            catch (Exception e) when (e is AmazonServiceException or IOException or HttpRequestException)
            {
                // Left for PurgeTemp.
            }
        }
    }
}
