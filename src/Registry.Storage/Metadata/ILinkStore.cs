using Registry.Storage.Model;

namespace Registry.Storage.Metadata;

/// <summary>
/// Blob records and per-repository links: which repository may read which blob. A repository MUST only see blobs
/// linked to it. Each write is one transaction.
/// </summary>
public interface ILinkStore
{
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

    /// <summary>
    /// Removes the repository's link to the blob (the content stays for other repositories) and appends a
    /// <see cref="EventActions.BlobDelete"/> event; false, and no event, when there was no link.
    /// </summary>
    ValueTask<bool> UnlinkBlobAsync(RepositoryName repository, Digest digest, DateTimeOffset now, CancellationToken ct);
}
