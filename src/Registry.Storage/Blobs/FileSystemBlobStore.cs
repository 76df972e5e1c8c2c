using System.Buffers;
using System.Collections.Concurrent;
using System.IO.Pipelines;
using System.Security.Cryptography;
using Microsoft.Win32.SafeHandles;
using Registry.Storage.Durability;
using Registry.Storage.Model;

namespace Registry.Storage.Blobs;

/// <summary>
/// Blobs as files under <see cref="StorageLayout"/>. An upload session is one file that grows by appends; each
/// append hashes every segment of the body as it is written (the hash state stays in memory between requests and
/// is recomputed from the file after a restart). Commit verifies the digest, flushes and renames the file into the
/// content store: the rename is the moment the blob appears, so a reader never sees a partial blob.
/// </summary>
public sealed class FileSystemBlobStore : IBlobStore, IDisposable
{
    private const int RehashBufferSize = 1 << 20;
    private const long WritebackChunk = 8 << 20;
    /// <summary>
    /// Content up to this size is fsynced by its publish round (one syncfs for the round's files); larger content is
    /// fsynced by its own request, since its data is mostly on disk already (written back as it arrived).
    /// </summary>
    private const long RoundSyncedSize = 1 << 20;

    private readonly StorageLayout _layout;
    private readonly bool _flushToDisk;
    private readonly ConcurrentDictionary<string, SessionState> _sessions = new();
    /// <summary>Publishes made durable in grouped rounds; null without FlushToDisk (or off Linux): plain renames.</summary>
    private readonly Lazy<PublishRounds>? _rounds;
    /// <summary>Where content of at most <see cref="_inlineBytes"/> goes instead of a file; null: always files.</summary>
    private readonly IInlineContent? _inline;
    private readonly int _inlineBytes;

    /// <param name="inline">
    /// Where small content is kept instead of in files (the metadata database, whose commits then make it durable),
    /// with <paramref name="inlineBytes"/> the largest size kept there; null: every blob is a file.
    /// </param>
    public FileSystemBlobStore(StorageLayout layout, bool flushToDisk, IInlineContent? inline = null, int inlineBytes = 0)
        : this(layout, flushToDisk, pendingWriteback: null, inline, inlineBytes)
    {
    }

    /// <param name="pendingWriteback">For tests: what <see cref="PublishRounds.Contended"/> reads instead of the kernel's
    /// figures.</param>
    internal FileSystemBlobStore(StorageLayout layout, bool flushToDisk, Func<long>? pendingWriteback,
        IInlineContent? inline = null, int inlineBytes = 0)
    {
        _layout = layout;
        _flushToDisk = flushToDisk;
        _inline = inlineBytes > 0 ? inline : null;
        _inlineBytes = inlineBytes;
        if (flushToDisk && OperatingSystem.IsLinux())
            _rounds = new Lazy<PublishRounds>(() =>
            {
                Directory.CreateDirectory(layout.Root);
                return new PublishRounds(layout.Root, pendingWriteback);
            });
    }

    public void Dispose()
    {
        if (_rounds is { IsValueCreated: true }) _rounds.Value.Dispose();
    }

    /// <summary>For tests: see <see cref="PublishRounds.HoldRounds"/>; null without rounds.</summary>
    internal IDisposable? HoldPublishRounds() => _rounds?.Value.HoldRounds(_layout.UploadsRoot);

    /// <summary>Publishes waiting for a round (for tests).</summary>
    internal int QueuedPublishes => _rounds is { IsValueCreated: true } ? _rounds.Value.Queued : 0;

    /// <summary>Publish rounds run so far and the publishes (and name waits) they held; zeros without FlushToDisk.</summary>
    public (long Rounds, long Publishes) PublishStatistics =>
        _rounds is { IsValueCreated: true } ? _rounds.Value.Statistics : (0, 0);

    /// <summary>The running hash of one session; <see cref="HashedLength"/> -1 means "recompute from the file".</summary>
    private sealed class SessionState
    {
        public readonly SemaphoreSlim Lock = new(1, 1);
        public IncrementalHash? Hash;
        public long HashedLength = -1;
    }

    /// <summary>True when content of <paramref name="size"/> bytes is kept inline rather than in a file.</summary>
    private bool Inlined(long size) => _inline is not null && size <= _inlineBytes;

    public ValueTask<BlobContent?> OpenAsync(Digest digest, CancellationToken ct)
    {
        var path = _layout.BlobPath(digest);
        var info = new FileInfo(path);
        if (!info.Exists)
            return ValueTask.FromResult(_inline?.ReadContent(digest) is { } bytes
                ? new BlobContent(bytes.Length, null, () => new MemoryStream(bytes, writable: false), Inline: true)
                : null);
        return ValueTask.FromResult<BlobContent?>(new BlobContent(info.Length, path, () => new FileStream(path,
            FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, bufferSize: 0, FileOptions.Asynchronous)));
    }

    public ValueTask<Stream?> OpenRangeAsync(Digest digest, long offset, long length, CancellationToken ct)
    {
        SafeFileHandle handle;
        try
        {
            handle = File.OpenHandle(_layout.BlobPath(digest), FileMode.Open, FileAccess.Read,
                FileShare.Read | FileShare.Delete, FileOptions.Asynchronous);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            if (_inline?.ReadContent(digest) is not { } bytes) return ValueTask.FromResult<Stream?>(null);
            CheckRange(offset, length, bytes.Length);
            return ValueTask.FromResult<Stream?>(new MemoryStream(bytes, (int)offset, (int)length, writable: false));
        }
        var size = RandomAccess.GetLength(handle);
        try
        {
            CheckRange(offset, length, size);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
        return ValueTask.FromResult<Stream?>(new FileRangeStream(handle, offset, offset + length));
    }

    private static void CheckRange(long offset, long length, long size)
    {
        if (offset < 0 || length < 0 || offset > size - length)
            throw new ArgumentOutOfRangeException(nameof(offset), $"range {offset}+{length} is outside the blob's {size} bytes");
    }

    public ValueTask<bool> ExistsAsync(Digest digest, CancellationToken ct) =>
        ValueTask.FromResult(File.Exists(_layout.BlobPath(digest)) || _inline?.StatContent(digest) is not null);

    public async ValueTask PutAsync(Digest digest, ReadOnlyMemory<byte> content, CancellationToken ct)
    {
        var target = _layout.BlobPath(digest);
        if (File.Exists(target))
        {
            await DurableAsync(target);
            return;
        }
        if (Inlined(content.Length))
        {
            await _inline!.PutContentAsync(digest, content, DateTimeOffset.UtcNow, ct);
            return;
        }
        var temp = _layout.NewTempPath();
        try
        {
            using var handle = File.OpenHandle(temp, FileMode.CreateNew, FileAccess.Write);
            RandomAccess.Write(handle, content.Span, 0);
            // While others have a lot in flight, this file is fsynced now, in parallel with other requests' own.
            var contended = _rounds is { Value.Contended: true };
            if (contended) RandomAccess.FlushToDisk(handle);
            await PublishAsync(temp, target, unsynced: contended ? null : handle);
        }
        finally
        {
            File.Delete(temp);
        }
    }

    /// <summary>
    /// Content found already published may have been renamed in by a request whose folder fsync has not run yet:
    /// answering for it waits for one (grouped) fsync of its folder.
    /// </summary>
    private Task DurableAsync(string target) => _rounds?.Value.NameDurableAsync(target) ?? Task.CompletedTask;

    public async ValueTask<CommitResult> StoreAsync(Digest digest, PipeReader body, long? expectedLength,
        CancellationToken ct)
    {
        using var hash = IncrementalHash.CreateHash(Digest.HashName(digest.Algorithm));
        var target = _layout.BlobPath(digest);
        var stored = File.Exists(target);
        if (expectedLength is { } declared && Inlined(declared) && !stored)
            return await StoreInlineAsync(digest, body, declared, hash, ct);
        if (stored)
        {
            // Deduplicated: the bytes are only hashed, so a wrong digest is still refused.
            var read = await CopyAsync(body, handle: null, hash, 0, expectedLength, flushToDisk: false, ct);
            var verified = Verified(read, hash, digest);
            if (verified.Status == CommitStatus.Committed) await DurableAsync(target);
            return verified;
        }

        var temp = _layout.NewTempPath();
        try
        {
            using var handle = File.OpenHandle(temp, FileMode.CreateNew, FileAccess.Write);
            var result = Verified(await CopyAsync(body, handle, hash, 0, expectedLength, _flushToDisk, ct), hash, digest);
            if (result.Status != CommitStatus.Committed) return result;
            var small = result.Size <= RoundSyncedSize && _rounds is { Value.Contended: false };
            if (_flushToDisk && !small) RandomAccess.FlushToDisk(handle);
            await PublishAsync(temp, target, unsynced: small ? handle : null);
            return result;
        }
        catch (IOException e) when (StorageErrors.IsDiskFull(e))
        {
            return new CommitResult(CommitStatus.StorageFull, 0);
        }
        finally
        {
            File.Delete(temp);
        }
    }

    /// <summary>A single-request upload small enough to be kept inline: read into memory, verified, kept; no file.</summary>
    private async ValueTask<CommitResult> StoreInlineAsync(Digest digest, PipeReader body, long length,
        IncrementalHash hash, CancellationToken ct)
    {
        var content = new byte[length];
        var result = Verified(await CopyAsync(body, handle: null, hash, 0, length, flushToDisk: false, ct, content), hash,
            digest);
        if (result.Status != CommitStatus.Committed) return result;
        // A full database shows when the link is written, which writes this content in its own step (507 there).
        await _inline!.PutContentAsync(digest, content, DateTimeOffset.UtcNow, CancellationToken.None);
        return result;
    }

    private static CommitResult Verified(AppendResult copied, IncrementalHash hash, Digest expected) => copied.Status switch
    {
        AppendStatus.Appended when Digest.FromHash(expected.Algorithm, hash.GetCurrentHash()) == expected =>
            new CommitResult(CommitStatus.Committed, copied.Size),
        AppendStatus.Appended => new CommitResult(CommitStatus.DigestMismatch, copied.Size),
        AppendStatus.StorageFull => new CommitResult(CommitStatus.StorageFull, copied.Size),
        _ => new CommitResult(CommitStatus.Incomplete, copied.Size),
    };

    /// <summary>
    /// Moves a verified file to its content address; if the content is already there, that is success. With
    /// FlushToDisk the move goes through a publish round (<see cref="PublishRounds"/>): the file's data is durable
    /// before the rename (fsynced by the caller, or by the round when <paramref name="unsynced"/> is its open handle)
    /// and the new name is durable before this returns.
    /// </summary>
    private async Task PublishAsync(string source, string target, SafeFileHandle? unsynced = null)
    {
        if (_rounds is not null)
        {
            if (!await _rounds.Value.PublishAsync(source, unsynced, target)) File.Delete(source);
            return;
        }
        if (unsynced is not null && _flushToDisk) RandomAccess.FlushToDisk(unsynced);
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        try
        {
            File.Move(source, target, overwrite: false);
        }
        catch (IOException) when (File.Exists(target))
        {
            // Same digest, same content: another writer published it first.
            File.Delete(source);
        }
    }

    public async ValueTask CreateUploadAsync(UploadId id, CancellationToken ct)
    {
        using (File.OpenHandle(_layout.UploadPath(id), FileMode.CreateNew, FileAccess.Write)) { }
        // The session's 202 promises a file that survives a power loss.
        if (_rounds is not null) await _rounds.Value.NameDurableAsync(_layout.UploadPath(id));
    }

    public async ValueTask<long?> GetUploadSizeAsync(UploadId id, CancellationToken ct)
    {
        // Wait for an append in progress: the size reported never includes half of one (it may yet be rolled back).
        if (_sessions.TryGetValue(id.Value, out var state))
        {
            await state.Lock.WaitAsync(ct);
            state.Lock.Release();
        }
        var info = new FileInfo(_layout.UploadPath(id));
        return info.Exists ? info.Length : null;
    }

    private SafeFileHandle? OpenUpload(UploadId id)
    {
        try
        {
            return File.OpenHandle(_layout.UploadPath(id), FileMode.Open, FileAccess.ReadWrite);
        }
        catch (FileNotFoundException)
        {
            return null;
        }
    }

    public async ValueTask<AppendResult> AppendAsync(UploadId id, long? offset, PipeReader body, long? expectedLength,
        CancellationToken ct)
    {
        var state = _sessions.GetOrAdd(id.Value, static _ => new SessionState());
        await state.Lock.WaitAsync(ct);
        try
        {
            using var handle = OpenUpload(id);
            if (handle is null) return new AppendResult(AppendStatus.UnknownSession, 0);
            var start = RandomAccess.GetLength(handle);
            if (offset is { } o && o != start) return new AppendResult(AppendStatus.OutOfOrder, start);
            var hash = CatchUp(state, handle, start);

            AppendResult status;
            try
            {
                status = await CopyAsync(body, handle, hash, start, expectedLength, _flushToDisk, ct);
            }
            catch
            {
                // An I/O fault other than a full disk: still all or nothing.
                RandomAccess.SetLength(handle, start);
                state.HashedLength = -1;
                throw;
            }
            if (status.Status != AppendStatus.Appended)
            {
                // All or nothing: drop whatever part of this body reached the file.
                RandomAccess.SetLength(handle, start);
                state.HashedLength = -1;
                return new AppendResult(status.Status, start);
            }
            state.HashedLength = start + status.Size;
            return new AppendResult(AppendStatus.Appended, state.HashedLength);
        }
        finally
        {
            state.Lock.Release();
        }
    }

    /// <summary>
    /// Streams the body into the file at <paramref name="position"/> (no file: only hashes it), hashing each segment
    /// as it passes.
    /// </summary>
    /// <param name="memory">Also (or instead of <paramref name="handle"/>) copies the bytes here, from
    /// <paramref name="position"/>; <paramref name="expectedLength"/> bounds what is copied, so it MUST be that long.</param>
    private static async ValueTask<AppendResult> CopyAsync(PipeReader body, SafeFileHandle? handle, IncrementalHash hash,
        long position, long? expectedLength, bool flushToDisk, CancellationToken ct, byte[]? memory = null)
    {
        long written = 0;
        long writtenBack = 0;
        var segments = new List<ReadOnlyMemory<byte>>();
        while (true)
        {
            ReadResult result;
            try
            {
                result = await body.ReadAsync(ct);
            }
            catch (Exception e) when (e is IOException or OperationCanceledException)
            {
                // The client went away, sent a short body, or the request was aborted (Kestrel's
                // BadHttpRequestException is an IOException).
                return new AppendResult(AppendStatus.Incomplete, written);
            }

            var buffer = result.Buffer;
            if (expectedLength is { } max && written + buffer.Length > max)
            {
                body.AdvanceTo(buffer.End);
                return new AppendResult(AppendStatus.Incomplete, written);
            }
            if (!buffer.IsEmpty)
            {
                segments.Clear();
                foreach (var segment in buffer)
                {
                    hash.AppendData(segment.Span);
                    segments.Add(segment);
                }
                if (memory is not null) buffer.CopyTo(memory.AsSpan((int)(position + written)));
                try
                {
                    if (handle is not null) RandomAccess.Write(handle, segments, position + written);
                }
                catch (IOException e) when (StorageErrors.IsDiskFull(e))
                {
                    body.AdvanceTo(buffer.End);
                    return new AppendResult(AppendStatus.StorageFull, written);
                }
                written += buffer.Length;
                if (handle is not null && flushToDisk && written - writtenBack >= WritebackChunk)
                {
                    // Start writing this stretch to disk now, so the fsync at commit has little left to do.
                    Writeback.Start(handle, position + writtenBack, written - writtenBack);
                    writtenBack = written;
                }
            }
            body.AdvanceTo(buffer.End);
            if (result.IsCompleted || result.IsCanceled) break;
        }
        if (expectedLength is { } expected && written != expected)
            return new AppendResult(AppendStatus.Incomplete, written);
        return new AppendResult(AppendStatus.Appended, written);
    }

    /// <summary>Returns the session's sha256 state over the file's <paramref name="length"/> bytes.</summary>
    private static IncrementalHash CatchUp(SessionState state, SafeFileHandle handle, long length)
    {
        if (state.Hash is not null && state.HashedLength == length) return state.Hash;
        state.Hash?.Dispose();
        state.Hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        HashFile(state.Hash, handle, length);
        state.HashedLength = length;
        return state.Hash;
    }

    private static void HashFile(IncrementalHash hash, SafeFileHandle handle, long length)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(RehashBufferSize);
        try
        {
            long position = 0;
            while (position < length)
            {
                var read = RandomAccess.Read(handle, buffer.AsSpan(0, (int)Math.Min(buffer.Length, length - position)), position);
                if (read == 0) throw new IOException("upload file shrank while hashing");
                hash.AppendData(buffer, 0, read);
                position += read;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    public async ValueTask<CommitResult> CommitAsync(UploadId id, Digest expected, long? expectedSize, CancellationToken ct)
    {
        var state = _sessions.GetOrAdd(id.Value, static _ => new SessionState());
        await state.Lock.WaitAsync(ct);
        var path = _layout.UploadPath(id);
        try
        {
            Digest actual;
            long size;
            byte[]? inlined = null;
            using (var handle = OpenUpload(id))
            {
                if (handle is null) return new CommitResult(CommitStatus.UnknownSession, 0);
                size = RandomAccess.GetLength(handle);
                if (expectedSize is { } s && s != size)
                {
                    Discard(id, path);
                    return new CommitResult(CommitStatus.SizeMismatch, size);
                }
                if (expected.Algorithm == DigestAlgorithm.Sha256)
                {
                    actual = Digest.FromHash(DigestAlgorithm.Sha256, CatchUp(state, handle, size).GetCurrentHash());
                }
                else
                {
                    using var other = IncrementalHash.CreateHash(Digest.HashName(expected.Algorithm));
                    HashFile(other, handle, size);
                    actual = Digest.FromHash(expected.Algorithm, other.GetCurrentHash());
                }
                if (actual != expected)
                {
                    Discard(id, path);
                    return new CommitResult(CommitStatus.DigestMismatch, size);
                }
                if (Inlined(size)) inlined = ReadAll(handle, size);
                else if (_flushToDisk) RandomAccess.FlushToDisk(handle);
            }
            if (inlined is not null)
            {
                // Kept inline: the session's file is never fsynced or renamed, only removed once the content is kept.
                if (!File.Exists(_layout.BlobPath(expected)))
                    await _inline!.PutContentAsync(expected, inlined, DateTimeOffset.UtcNow, CancellationToken.None);
                Discard(id, path);
                return new CommitResult(CommitStatus.Committed, size);
            }
            try
            {
                await PublishAsync(path, _layout.BlobPath(expected));
            }
            catch (IOException e) when (StorageErrors.IsDiskFull(e))
            {
                Discard(id, path);
                return new CommitResult(CommitStatus.StorageFull, size);
            }
            _sessions.TryRemove(id.Value, out _);
            return new CommitResult(CommitStatus.Committed, size);
        }
        finally
        {
            state.Lock.Release();
        }
    }

    private static byte[] ReadAll(SafeFileHandle handle, long size)
    {
        var content = new byte[size];
        var read = 0;
        while (read < content.Length)
        {
            var n = RandomAccess.Read(handle, content.AsSpan(read), read);
            if (n == 0) throw new IOException($"the upload ended at {read} of its {size} bytes while it was read");
            read += n;
        }
        return content;
    }

    private void Discard(UploadId id, string path)
    {
        File.Delete(path);
        if (_sessions.TryRemove(id.Value, out var state)) state.Hash?.Dispose();
    }

    public async ValueTask CancelUploadAsync(UploadId id, CancellationToken ct)
    {
        var state = _sessions.GetOrAdd(id.Value, static _ => new SessionState());
        await state.Lock.WaitAsync(ct);
        try
        {
            Discard(id, _layout.UploadPath(id));
        }
        finally
        {
            state.Lock.Release();
        }
    }

    /// <summary>
    /// Publishes the content of a local file (another registry's storage) under <paramref name="digest"/>: the file
    /// is hard-linked into tmp/ when it is on the same filesystem, else copied there, hashed as it is read, and
    /// renamed into the store only if it matches. The source is never changed; content already stored is success
    /// without reading the source.
    /// </summary>
    public async ValueTask<BlobImportResult> ImportFileAsync(Digest digest, string source, CancellationToken ct)
    {
        var target = _layout.BlobPath(digest);
        if (File.Exists(target)) return new BlobImportResult(BlobImportStatus.AlreadyStored, new FileInfo(target).Length);
        if (!File.Exists(source)) return new BlobImportResult(BlobImportStatus.Missing, 0);
        var temp = _layout.NewTempPath();
        try
        {
            var linked = HardLinks.Link(source, temp) == HardLinks.Outcome.Linked;
            using var hash = IncrementalHash.CreateHash(Digest.HashName(digest.Algorithm));
            long size;
            if (linked)
            {
                using var handle = File.OpenHandle(temp, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.SequentialScan);
                size = RandomAccess.GetLength(handle);
                HashFile(hash, handle, size);
            }
            else
            {
                size = await CopyAndHashAsync(source, temp, hash, ct);
            }
            var actual = Digest.FromHash(digest.Algorithm, hash.GetCurrentHash());
            if (actual != digest) return new BlobImportResult(BlobImportStatus.DigestMismatch, size, actual);
            await PublishAsync(temp, target);
            _importedFolders.TryAdd(Path.GetDirectoryName(target)!, 0);
            return new BlobImportResult(linked ? BlobImportStatus.Linked : BlobImportStatus.Copied, size);
        }
        catch (IOException e) when (StorageErrors.IsDiskFull(e))
        {
            return new BlobImportResult(BlobImportStatus.StorageFull, 0);
        }
        finally
        {
            File.Delete(temp);
        }
    }

    private async Task<long> CopyAndHashAsync(string source, string temp, IncrementalHash hash, CancellationToken ct)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(RehashBufferSize);
        try
        {
            await using var input = new FileStream(source, FileMode.Open, FileAccess.Read, FileShare.Read, 0, FileOptions.SequentialScan);
            using var output = File.OpenHandle(temp, FileMode.CreateNew, FileAccess.Write);
            long position = 0;
            int read;
            while ((read = await input.ReadAsync(buffer, ct)) > 0)
            {
                hash.AppendData(buffer, 0, read);
                RandomAccess.Write(output, buffer.AsSpan(0, read), position);
                position += read;
            }
            if (_flushToDisk) RandomAccess.FlushToDisk(output);
            return position;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Where the content of <paramref name="digest"/> is stored (it may not exist).</summary>
    public string PathOf(Digest digest) => _layout.BlobPath(digest);

    private readonly ConcurrentDictionary<string, byte> _importedFolders = new();

    /// <summary>
    /// Makes the directory entries of the blobs imported since the last call durable (fsync of each folder they were
    /// published into, and of the folders above), before the metadata that names them is committed.
    /// </summary>
    public void FlushImportedLinks()
    {
        var folders = _importedFolders.Keys.ToList();
        _importedFolders.Clear();
        if (!_flushToDisk || folders.Count == 0) return;
        foreach (var folder in folders) HardLinks.FlushDirectory(folder);
        foreach (var parent in folders.Select(f => Path.GetDirectoryName(f)!).Distinct()) HardLinks.FlushDirectory(parent);
        HardLinks.FlushDirectory(_layout.BlobsRoot);
    }

    public IAsyncEnumerable<Digest> EnumerateBlobsAsync(CancellationToken ct) => EnumerateBlobs().ToAsyncEnumerable();

    private IEnumerable<Digest> EnumerateBlobs()
    {
        if (Directory.Exists(_layout.BlobsRoot))
            foreach (var algorithmDir in Directory.EnumerateDirectories(_layout.BlobsRoot))
            foreach (var file in Directory.EnumerateFiles(algorithmDir, "*", SearchOption.AllDirectories))
                if (Digest.TryParse($"{Path.GetFileName(algorithmDir)}:{Path.GetFileName(file)}", out var digest))
                    yield return digest;
        if (_inline is null) yield break;
        // Content both inline and in a file (a file imported or published before inlining) was listed above.
        foreach (var digest in _inline.ListContent())
            if (!File.Exists(_layout.BlobPath(digest))) yield return digest;
    }

    public DateTimeOffset? WrittenAt(Digest digest)
    {
        var info = new FileInfo(_layout.BlobPath(digest));
        return info.Exists ? info.LastWriteTimeUtc : _inline?.StatContent(digest)?.WrittenAt;
    }

    public async ValueTask<DeletedBlob?> DeleteAsync(Digest digest, CancellationToken ct)
    {
        var inline = _inline is null ? null : await _inline.DeleteContentAsync(digest, ct);
        var file = DeleteFile(_layout.BlobPath(digest));
        return file is null && inline is null ? null : new DeletedBlob(file ?? 0, inline ?? 0);
    }

    /// <summary>Deletes the file and returns its length, or null when there was none.</summary>
    private static long? DeleteFile(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists) return null;
        var length = info.Length;
        try
        {
            info.Delete();
        }
        catch (FileNotFoundException)
        {
            return null;
        }
        return length;
    }

    public IReadOnlyList<UploadId> ListUploadsWrittenBefore(DateTimeOffset before)
    {
        var ids = new List<UploadId>();
        if (!Directory.Exists(_layout.UploadsRoot)) return ids;
        foreach (var file in new DirectoryInfo(_layout.UploadsRoot).EnumerateFiles())
            if (file.LastWriteTimeUtc < before && UploadId.TryParse(file.Name, out var id)) ids.Add(id);
        return ids;
    }

    public (int Files, long Bytes) PurgeTemp(DateTimeOffset before)
    {
        int files = 0;
        long bytes = 0;
        if (!Directory.Exists(_layout.TempRoot)) return (0, 0);
        foreach (var file in new DirectoryInfo(_layout.TempRoot).EnumerateFiles())
        {
            if (file.LastWriteTimeUtc >= before) continue;
            try
            {
                var length = file.Length;
                file.Delete();
                files++;
                bytes += length;
            }
            catch (IOException)
            {
                // Gone already, or in use: the next run sees it again.
            }
        }
        return (files, bytes);
    }
}
