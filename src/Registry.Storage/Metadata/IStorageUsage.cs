using Registry.Storage.Model;

namespace Registry.Storage.Metadata;

/// <summary>The content store as a whole: distinct blobs (layers, configs, manifests) and their bytes, each once.</summary>
public readonly record struct TotalUsage(long Blobs, long Bytes);

/// <summary>
/// What one repository holds (its blob links and its manifests), deduplicated: <see cref="UniqueBytes"/> are in no other
/// repository (what deleting the repository would free), <see cref="SharedBytes"/> also in at least one other.
/// </summary>
public sealed record RepositoryUsage(string Repository, long UniqueBytes, long SharedBytes);

/// <summary>Dedup-aware storage usage, a read model of the metadata.</summary>
public interface IStorageUsage
{
    ValueTask<TotalUsage> GetTotalUsageAsync(CancellationToken ct);

    /// <summary>Repositories in name order after <paramref name="last"/>.</summary>
    ValueTask<Page<RepositoryUsage>> ListRepositoryUsageAsync(int limit, string? last, CancellationToken ct);

    /// <summary>The usage of the named repositories (those that exist).</summary>
    ValueTask<IReadOnlyDictionary<string, RepositoryUsage>> GetRepositoryUsageAsync(IReadOnlyCollection<string> repositories,
        CancellationToken ct);
}
