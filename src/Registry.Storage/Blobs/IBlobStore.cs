using System.IO.Pipelines;
using Registry.Storage.Model;

namespace Registry.Storage.Blobs;

/// <summary>
/// A stored blob: its length; a local file when the store has one (then the API sends it with zero-copy reads and
/// ranges from the file), else null, and the API serves it through <see cref="IBlobStore.OpenRangeAsync"/>;
/// <see cref="OpenStream"/> reads it whole from the start. <see cref="Inline"/>: the content is held in the metadata
/// database (<see cref="IInlineContent"/>), not in a file or object of its own.
/// </summary>
public sealed record BlobContent(long Length, string? LocalPath, Func<Stream> OpenStream, bool Inline = false);

public enum AppendStatus
{
    Appended,
    /// <summary>The chunk does not start at the session's current size.</summary>
    OutOfOrder,
    /// <summary>The body was shorter or longer than declared, or the client went away; nothing was kept.</summary>
    Incomplete,
    UnknownSession,
    /// <summary>The store could not write (e.g. the disk is full); nothing was kept.</summary>
    StorageFull,
}

public readonly record struct AppendResult(AppendStatus Status, long Size);

public enum CommitStatus
{
    Committed,
    DigestMismatch,
    SizeMismatch,
    UnknownSession,
    StorageFull,
    /// <summary>The body ended before, or went past, the length its request declared; nothing was kept.</summary>
    Incomplete,
}

public readonly record struct CommitResult(CommitStatus Status, long Size);

/// <summary>
/// What deleting a blob freed: <paramref name="Bytes"/> of its own file or object (what <c>du</c> of the store or a
/// bucket listing sees go), and <paramref name="InlineBytes"/> of content held in the metadata database
/// (<see cref="IInlineContent"/>), whose pages the database reuses rather than returns.
/// </summary>
public readonly record struct DeletedBlob(long Bytes, long InlineBytes = 0);

public enum BlobImportStatus
{
    /// <summary>Verified and published as a hard link to the source: no bytes were copied.</summary>
    Linked,
    /// <summary>Verified and published as a copy (the source is on another filesystem).</summary>
    Copied,
    AlreadyStored,
    /// <summary>The source does not hash to the digest it is stored under; nothing was published.</summary>
    DigestMismatch,
    Missing,
    StorageFull,
}

/// <param name="Actual">What the source hashed to, for <see cref="BlobImportStatus.DigestMismatch"/>.</param>
public readonly record struct BlobImportResult(BlobImportStatus Status, long Size, Digest? Actual = null);

/// <summary>
/// Content-addressed blob storage and the byte side of upload sessions. Content is verified against its digest
/// while it is written and published atomically: a reader MUST never see partial or unverified content under a
/// digest. Publishing content that already exists is success. An upload session started through one instance MUST
/// continue (append, status, commit) through any other instance over the same storage. Implementations MUST NOT see
/// HTTP; an S3-compatible object store is the intended second implementation. Contract tests:
/// <c>BlobStoreContract</c>.
/// </summary>
public interface IBlobStore
{
    /// <summary>The stored blob, or null when the store does not hold it.</summary>
    ValueTask<BlobContent?> OpenAsync(Digest digest, CancellationToken ct);

    /// <summary>
    /// A stream of exactly <paramref name="length"/> bytes of the blob from <paramref name="offset"/> (what a ranged
    /// GET sends, and a whole GET when the store has no local file), or null when the store does not hold it. The
    /// range MUST lie within the blob. A store MUST NOT read more than the range from its backend (an object store
    /// asks for the range, not the object).
    /// </summary>
    ValueTask<Stream?> OpenRangeAsync(Digest digest, long offset, long length, CancellationToken ct);

    ValueTask<bool> ExistsAsync(Digest digest, CancellationToken ct);

    /// <summary>
    /// Publishes small content held in memory (a manifest) under its digest, which the caller has computed from it.
    /// Publishing what is already stored is success.
    /// </summary>
    ValueTask PutAsync(Digest digest, ReadOnlyMemory<byte> content, CancellationToken ct);

    /// <summary>
    /// Streams a whole blob in one call (a single-request upload, no session): verified against
    /// <paramref name="digest"/> as it is written and published only if it matches. With
    /// <paramref name="expectedLength"/>, exactly that many bytes MUST arrive. Content already stored is still
    /// read and verified, but not written again.
    /// </summary>
    ValueTask<CommitResult> StoreAsync(Digest digest, PipeReader body, long? expectedLength, CancellationToken ct);

    ValueTask CreateUploadAsync(UploadId id, CancellationToken ct);

    /// <summary>Bytes received so far (never part of an append still in progress), or null if the session has no data.</summary>
    ValueTask<long?> GetUploadSizeAsync(UploadId id, CancellationToken ct);

    /// <summary>
    /// Appends <paramref name="body"/> to the session if <paramref name="offset"/> equals its current size (null:
    /// wherever it ends). With <paramref name="expectedLength"/>, exactly that many bytes MUST arrive. An append is
    /// all or nothing: on any failure the session is left as it was before the call. Appends to one session are
    /// serialised.
    /// </summary>
    ValueTask<AppendResult> AppendAsync(UploadId id, long? offset, PipeReader body, long? expectedLength, CancellationToken ct);

    /// <summary>
    /// Verifies the session's bytes hash to <paramref name="expected"/> (and have <paramref name="expectedSize"/>
    /// bytes when given) and publishes them under that digest; the session's data is removed either way, except
    /// when it is unknown.
    /// </summary>
    ValueTask<CommitResult> CommitAsync(UploadId id, Digest expected, long? expectedSize, CancellationToken ct);

    /// <summary>Removes the session's data. Idempotent.</summary>
    ValueTask CancelUploadAsync(UploadId id, CancellationToken ct);

    /// <summary>
    /// Every blob in the store, for verification and garbage collection (an object store lists pages as it goes).
    /// Blobs published or deleted while it runs may or may not be seen; every other blob MUST be seen exactly once.
    /// </summary>
    IAsyncEnumerable<Digest> EnumerateBlobsAsync(CancellationToken ct);

    /// <summary>When the blob's content was last written (published), or null if it is not stored.</summary>
    DateTimeOffset? WrittenAt(Digest digest);

    /// <summary>
    /// Deletes the blob's content and returns how many bytes it held (null: nothing was stored). Only garbage
    /// collection calls it, for a digest it holds from <see cref="Gc.IBlobPins.BeginSweepAsync"/>.
    /// </summary>
    ValueTask<DeletedBlob?> DeleteAsync(Digest digest, CancellationToken ct);

    /// <summary>Upload sessions whose data was last written before <paramref name="before"/>.</summary>
    IReadOnlyList<UploadId> ListUploadsWrittenBefore(DateTimeOffset before);

    /// <summary>Deletes temporary files (writes that never completed) last written before <paramref name="before"/>; returns how many and their bytes.</summary>
    (int Files, long Bytes) PurgeTemp(DateTimeOffset before);
}
