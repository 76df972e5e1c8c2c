using Registry.Storage.Model;

namespace Registry.Storage.Metadata;

/// <summary>
/// The metadata side of upload sessions: which repository a session belongs to, who opened it, when. Its bytes live
/// in the blob store (<see cref="Blobs.IBlobStore"/>). A session exists from <see cref="CreateUploadAsync"/> until
/// <see cref="DeleteUploadAsync"/>, across restarts, and MUST be visible to every process sharing the store.
/// </summary>
public interface IUploadStore
{
    ValueTask CreateUploadAsync(UploadSession session, CancellationToken ct);

    /// <summary>The session as created, or null when it was never created or has been deleted.</summary>
    ValueTask<UploadSession?> GetUploadAsync(UploadId id, CancellationToken ct);

    /// <summary>Forgets the session. Idempotent.</summary>
    ValueTask DeleteUploadAsync(UploadId id, CancellationToken ct);

    ValueTask<int> CountUploadsAsync(CancellationToken ct);

    /// <summary>Open sessions that <paramref name="client"/> opened (<see cref="UploadSession.Client"/>).</summary>
    ValueTask<int> CountUploadsByClientAsync(string client, CancellationToken ct);

    /// <summary>Sessions started strictly before <paramref name="cutoff"/> (for expiry).</summary>
    ValueTask<IReadOnlyList<UploadId>> ListUploadsStartedBeforeAsync(DateTimeOffset cutoff, CancellationToken ct);
}
