using Registry.Storage.Model;

namespace Registry.Storage.Metadata;

/// <summary>
/// Repositories, manifests, tags and the referrers index, with the listings the distribution API pages through.
/// Each write is one transaction that also appends its events to the outbox (<see cref="IEventOutbox"/>): after a
/// crash at any instant the store holds either all of a change, events included, or none of it.
/// </summary>
/// <remarks>
/// Listings: items come in ascending ordinal order strictly after <c>last</c> (which need not exist); a limit of 0
/// gives an empty page; <see cref="Page{T}.HasMore"/> is true exactly when another item follows the page.
/// </remarks>
public interface IManifestStore
{
    ValueTask<bool> RepositoryExistsAsync(RepositoryName repository, CancellationToken ct);

    /// <summary>The manifest a digest or tag names in the repository, or null.</summary>
    ValueTask<ManifestRecord?> GetManifestAsync(RepositoryName repository, Reference reference, CancellationToken ct);

    /// <summary>The first reference that the repository does not hold, or null when it holds them all.</summary>
    ValueTask<Digest?> FindMissingReferenceAsync(RepositoryName repository, IReadOnlyList<ManifestReference> references,
        CancellationToken ct);

    /// <summary>
    /// Stores a manifest (whose bytes MUST already be published) and points <paramref name="tags"/> at it, after
    /// checking in the same transaction that every reference exists in the repository. <paramref name="provided"/>
    /// are blobs the registry supplies itself (the empty JSON config, already published): they are linked in the same
    /// transaction, before the check. When the check fails nothing at all is kept: no repository, link, row or event.
    /// Pushing the same manifest again is success.
    /// </summary>
    ValueTask<PutManifestResult> PutManifestAsync(RepositoryName repository, ManifestRecord manifest,
        IReadOnlyList<ManifestReference> references, IReadOnlyList<Tag> tags, CancellationToken ct,
        IReadOnlyList<ProvidedBlob>? provided = null);

    /// <summary>Deletes the manifest and every tag pointing at it; false when the repository does not hold it.</summary>
    ValueTask<bool> DeleteManifestAsync(RepositoryName repository, Digest digest, DateTimeOffset now, CancellationToken ct);

    /// <summary>Deletes only the tag (the manifest stays); false when there was no such tag.</summary>
    ValueTask<bool> DeleteTagAsync(RepositoryName repository, Tag tag, DateTimeOffset now, CancellationToken ct);

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
}
