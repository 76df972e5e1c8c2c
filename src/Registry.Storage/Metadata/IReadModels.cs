using Registry.Storage.Model;

namespace Registry.Storage.Metadata;

/// <summary>
/// What a repository search asks: a name substring (<see cref="Contains"/>) and prefix, both lowercase (names are);
/// only repositories holding at least one manifest of the artifact type or media type. Null: no condition.
/// </summary>
public sealed record RepositorySearch(string? Contains = null, string? Prefix = null, string? ArtifactType = null,
    string? MediaType = null);

/// <summary>
/// One search hit: its tag count, its deduplicated size (every blob it links, once, plus its manifests' bytes) and
/// the time of its last manifest push (null without manifests).
/// </summary>
public sealed record RepositorySearchHit(RepositoryName Name, long TagCount, long Size, DateTimeOffset? LastPushed);

/// <summary>The search extension's read model (<c>/v2/_registry/search/repositories</c>).</summary>
public interface ISearchReadModel
{
    /// <summary>
    /// Repositories matching <paramref name="query"/> in name order after <paramref name="last"/>; with
    /// <paramref name="visible"/>, only those it accepts, and a page is still full whenever more visible hits exist.
    /// </summary>
    ValueTask<Page<RepositorySearchHit>> SearchRepositoriesAsync(RepositorySearch query, int limit, string? last,
        Func<RepositoryName, bool>? visible, CancellationToken ct);
}

/// <summary>A tag with its manifest's row: what tag details shows before it reads the manifest's bytes.</summary>
public sealed record TagDetail(Tag Tag, Digest Digest, string MediaType, string? ArtifactType, long ManifestSize,
    DateTimeOffset UpdatedAt);

/// <summary>The tag details extension's read model (<c>/v2/&lt;name&gt;/_registry/tags/details</c>).</summary>
public interface ITagDetailsReadModel
{
    /// <summary>The repository's tags in lexical order after <paramref name="last"/>, each with its manifest.</summary>
    ValueTask<Page<TagDetail>> ListTagDetailsAsync(RepositoryName repository, int limit, string? last, CancellationToken ct);
}
