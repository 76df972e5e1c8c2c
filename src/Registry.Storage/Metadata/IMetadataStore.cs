using Registry.Storage.Model;

namespace Registry.Storage.Metadata;

/// <summary>
/// Repositories, tags, manifests, blob links, the referrers index and upload sessions. Every method is one
/// transaction: after a crash at any instant the store holds either all of a change or none of it. Implementations
/// MUST be safe for concurrent use and MUST NOT see HTTP. A PostgreSQL implementation shared by several replicas
/// is the intended second implementation.
/// </summary>
public interface IMetadataStore
{
    ValueTask<bool> RepositoryExistsAsync(RepositoryName repository, CancellationToken ct);

    /// <summary>Size of the blob if it is linked to <paramref name="repository"/>, else null.</summary>
    ValueTask<long?> GetLinkedBlobSizeAsync(RepositoryName repository, Digest digest, CancellationToken ct);

    /// <summary>
    /// Size of the content if the metadata records it at all (a blob or a manifest's bytes), else null: for garbage
    /// collection and verification only. It says nothing about who may read it and MUST NOT decide access or mounts.
    /// </summary>
    ValueTask<long?> GetBlobSizeAsync(Digest digest, CancellationToken ct);

    /// <summary>
    /// Size of the blob if a repository that <paramref name="visible"/> accepts links it, else null (automatic
    /// cross-repository mount). Only repository links count: a blob that no repository links, or a manifest's bytes,
    /// MUST NOT be found here.
    /// </summary>
    ValueTask<long?> FindLinkedBlobSizeAsync(Digest digest, Func<RepositoryName, bool> visible, CancellationToken ct);

    /// <summary>Records the blob (whose content MUST already be published) and links it to the repository,
    /// creating the repository if needed. Linking twice is success, and restarts the link's garbage collection grace
    /// period (a blob pushed again is as new as a blob pushed for the first time).</summary>
    ValueTask LinkBlobAsync(RepositoryName repository, Digest digest, long size, DateTimeOffset now, CancellationToken ct);

    /// <summary>Removes the repository's link to the blob; the content stays for other repositories.</summary>
    ValueTask<bool> UnlinkBlobAsync(RepositoryName repository, Digest digest, DateTimeOffset now, CancellationToken ct);

    ValueTask<ManifestRecord?> GetManifestAsync(RepositoryName repository, Reference reference, CancellationToken ct);

    /// <summary>The first reference that the repository does not hold, or null when it holds them all.</summary>
    ValueTask<Digest?> FindMissingReferenceAsync(RepositoryName repository, IReadOnlyList<ManifestReference> references,
        CancellationToken ct);

    /// <summary>
    /// Stores a manifest (whose bytes MUST already be published) and points <paramref name="tags"/> at it, after
    /// checking in the same transaction that every reference exists in the repository. <paramref name="provided"/>
    /// are blobs the registry supplies itself (the empty JSON config, already published): they are linked in the same
    /// transaction, before the check. When the check fails nothing at all is kept: no repository, link, row or event.
    /// </summary>
    ValueTask<PutManifestResult> PutManifestAsync(RepositoryName repository, ManifestRecord manifest,
        IReadOnlyList<ManifestReference> references, IReadOnlyList<Tag> tags, CancellationToken ct,
        IReadOnlyList<ProvidedBlob>? provided = null);

    /// <summary>Deletes the manifest and every tag pointing at it.</summary>
    ValueTask<bool> DeleteManifestAsync(RepositoryName repository, Digest digest, DateTimeOffset now, CancellationToken ct);

    /// <summary>Deletes only the tag.</summary>
    ValueTask<bool> DeleteTagAsync(RepositoryName repository, Tag tag, DateTimeOffset now, CancellationToken ct);

    // The outbox: every change above also appends its events (repository creation, manifest push, tag creation,
    // update and deletion, manifest and blob deletion) in the same transaction, so the events are exactly the changes.

    /// <summary>Events with an id above <paramref name="afterId"/>, oldest first.</summary>
    ValueTask<IReadOnlyList<RegistryEvent>> ReadEventsAsync(long afterId, int limit, CancellationToken ct);

    /// <summary>The newest event's id, 0 when there is none.</summary>
    ValueTask<long> LatestEventIdAsync(CancellationToken ct);

    /// <summary>Completes when the next change is committed (a hint to read events again, not a guarantee of one).</summary>
    Task WaitForChangeAsync(CancellationToken ct);

    /// <summary>Removes events older than <paramref name="before"/>.</summary>
    ValueTask<int> PruneEventsAsync(DateTimeOffset before, CancellationToken ct);

    /// <summary>Tags in lexical order after <paramref name="last"/>; listings with a limit of 0 are empty.</summary>
    ValueTask<Page<string>> ListTagsAsync(RepositoryName repository, int limit, string? last, CancellationToken ct);

    /// <summary>
    /// Repository names in lexical order after <paramref name="last"/>; with <paramref name="visible"/>, only those it
    /// accepts, and a page is still full whenever more visible names exist (no short or empty pages).
    /// </summary>
    ValueTask<Page<string>> ListRepositoriesAsync(int limit, string? last, CancellationToken ct,
        Func<RepositoryName, bool>? visible = null);

    /// <summary>Manifests of the repository whose subject is <paramref name="subject"/>, in digest order after
    /// <paramref name="last"/>, optionally only those of one artifact type.</summary>
    ValueTask<Page<ManifestRecord>> ListReferrersAsync(RepositoryName repository, Digest subject, string? artifactType,
        int limit, string? last, CancellationToken ct);

    ValueTask CreateUploadAsync(UploadSession session, CancellationToken ct);
    ValueTask<UploadSession?> GetUploadAsync(UploadId id, CancellationToken ct);
    ValueTask DeleteUploadAsync(UploadId id, CancellationToken ct);
    ValueTask<int> CountUploadsAsync(CancellationToken ct);

    /// <summary>Open sessions that <paramref name="client"/> opened (<see cref="UploadSession.Client"/>).</summary>
    ValueTask<int> CountUploadsByClientAsync(string client, CancellationToken ct);
    ValueTask<IReadOnlyList<UploadId>> ListUploadsStartedBeforeAsync(DateTimeOffset cutoff, CancellationToken ct);

    /// <summary>
    /// One consistent snapshot of the store's counts. It MAY read every row (slow on a large store): callers cache it
    /// rather than asking per request.
    /// </summary>
    ValueTask<StoreStatistics> GetStatisticsAsync(CancellationToken ct);

    /// <summary>Every manifest of every repository (for verification).</summary>
    IAsyncEnumerable<(RepositoryName Repository, Digest Digest)> ListManifestsAsync(CancellationToken ct);

    /// <summary>The store's own consistency checks; empty when all is well.</summary>
    ValueTask<IReadOnlyList<string>> CheckIntegrityAsync(CancellationToken ct);

    /// <summary>Every blob digest the metadata knows, with its recorded size (for verification).</summary>
    IAsyncEnumerable<(Digest Digest, long Size)> ListBlobsAsync(CancellationToken ct);
}
