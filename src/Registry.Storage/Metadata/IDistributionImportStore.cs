using Registry.Storage.Model;

namespace Registry.Storage.Metadata;

/// <summary>A manifest to import, with what it references (for the referrers index and reference checks).</summary>
public sealed record ImportedManifest(ManifestRecord Record, IReadOnlyList<ManifestReference> References);

/// <summary>A tag to import: its name, the manifest it points at and when it was last set.</summary>
public readonly record struct ImportedTag(Tag Tag, Digest Manifest, DateTimeOffset UpdatedAt);

/// <summary>Everything of one repository of another registry, whose bytes MUST already be published in the blob store.</summary>
public sealed record RepositoryImport(
    RepositoryName Repository,
    IReadOnlyList<(Digest Digest, long Size)> Blobs,
    IReadOnlyList<ImportedManifest> Manifests,
    IReadOnlyList<ImportedTag> Tags);

/// <summary>
/// The metadata side of importing another registry's storage, one repository at a time. Each repository is one
/// transaction that also records that it was imported, so an import killed at any instant holds whole repositories
/// only, and running it again imports exactly the ones that are missing.
/// </summary>
public interface IDistributionImportStore
{
    ValueTask<bool> IsRepositoryImportedAsync(RepositoryName repository, CancellationToken ct);

    /// <summary>
    /// Records the repository's blob links, manifests (with their references) and tags, and that it was imported from
    /// <paramref name="source"/>; false (and no change) when it was imported before. Tags the repository already
    /// has here are kept. Appends the events of what it adds, like any other change.
    /// </summary>
    ValueTask<bool> ImportRepositoryAsync(RepositoryImport import, string source, DateTimeOffset now, CancellationToken ct);
}
