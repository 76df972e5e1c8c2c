using Registry.Storage.Model;

namespace Registry.Storage.Metadata;

/// <summary>One tag with the time it was last pointed somewhere (for cleanup policies).</summary>
public sealed record TagRecord(Tag Name, Digest Digest, DateTimeOffset UpdatedAt);

/// <summary>A blob the metadata records, with its size.</summary>
public readonly record struct BlobRecord(Digest Digest, long Size);

/// <summary>What a dry run found: per repository its reachable manifest count and what would go, then the blobs.</summary>
public sealed record GcPlan(IReadOnlyList<RepositoryPlan> Repositories, IReadOnlyList<BlobRecord> Blobs);

public sealed record RepositoryPlan(RepositoryName Repository, int ReachableManifests, IReadOnlyList<Digest> Manifests,
    IReadOnlyList<Digest> Links);

/// <summary>A garbage collection run as kept in the metadata: its report is JSON, null while it runs.</summary>
public sealed record GcRunRecord(long Id, bool DryRun, string Trigger, DateTimeOffset StartedAt, DateTimeOffset? FinishedAt,
    string Status, string? ReportJson);

public static class GcRunStatus
{
    public const string Running = "running";
    public const string Succeeded = "succeeded";
    public const string Failed = "failed";
    /// <summary>The process stopped (killed, crashed) while the run was going on.</summary>
    public const string Interrupted = "interrupted";
}

/// <summary>
/// What garbage collection needs from the metadata. Each decision that deletes is taken inside the transaction that
/// deletes, against the state that transaction sees: no push committed before it is missed, and no push committed
/// after it can depend on what it deleted without failing its own reference check. Implementations MUST keep that.
/// </summary>
public interface IGarbageCollectionStore
{
    /// <summary>Every repository name, in order.</summary>
    ValueTask<IReadOnlyList<RepositoryName>> ListAllRepositoriesAsync(CancellationToken ct);

    /// <summary>Every tag of a repository with its last update time.</summary>
    ValueTask<IReadOnlyList<TagRecord>> ListTagRecordsAsync(RepositoryName repository, CancellationToken ct);

    /// <summary>How many manifests of the repository are reachable, ignoring <paramref name="ignoredTags"/>.</summary>
    /// <remarks>
    /// Reachable: tagged; pushed at or after <paramref name="untaggedBefore"/> (null: every manifest); a child of a
    /// reachable index; the subject of a reachable manifest; a referrer of a reachable manifest.
    /// </remarks>
    ValueTask<(int Reachable, IReadOnlyList<Digest> Unreachable)> MarkManifestsAsync(RepositoryName repository,
        DateTimeOffset? untaggedBefore, IReadOnlyCollection<Tag> ignoredTags, CancellationToken ct);

    /// <summary>
    /// In one transaction: deletes the manifests of the repository that are unreachable (as
    /// <see cref="MarkManifestsAsync"/> decides, now) and that are among <paramref name="candidates"/>; returns them.
    /// </summary>
    ValueTask<IReadOnlyList<Digest>> SweepManifestsAsync(RepositoryName repository, DateTimeOffset untaggedBefore,
        IReadOnlyCollection<Digest> candidates, DateTimeOffset now, CancellationToken ct);

    /// <summary>
    /// Links of the repository older than <paramref name="linkedBefore"/> that no manifest of the repository references:
    /// deleted in one transaction unless <paramref name="dryRun"/>; returns them.
    /// </summary>
    ValueTask<IReadOnlyList<Digest>> SweepLinksAsync(RepositoryName repository, DateTimeOffset linkedBefore, bool dryRun,
        CancellationToken ct);

    /// <summary>
    /// What a run would delete after the tags in <paramref name="deletedTags"/> were deleted, decided on one consistent
    /// snapshot and changing nothing: per repository the unreachable manifests (only with
    /// <paramref name="untaggedBefore"/>) and the links no remaining manifest references; then the blobs nothing would
    /// link or reference any more.
    /// </summary>
    ValueTask<GcPlan> PlanAsync(IReadOnlyDictionary<RepositoryName, IReadOnlyCollection<Tag>> deletedTags,
        DateTimeOffset? untaggedBefore, DateTimeOffset linkedBefore, CancellationToken ct);

    /// <summary>Blobs that no repository links and no manifest is or references.</summary>
    ValueTask<IReadOnlyList<BlobRecord>> ListUnreferencedBlobsAsync(CancellationToken ct);

    /// <summary>
    /// In one transaction: of <paramref name="candidates"/>, those still unreferenced lose their blob row and get a
    /// tombstone; returns them. Their files may be deleted once this returns (the commit is durable).
    /// </summary>
    ValueTask<IReadOnlyList<BlobRecord>> TombstoneBlobsAsync(IReadOnlyCollection<Digest> candidates, DateTimeOffset now,
        CancellationToken ct);

    ValueTask<IReadOnlyList<Digest>> ListTombstonesAsync(CancellationToken ct);

    /// <summary>Removes the tombstones once their files are gone.</summary>
    ValueTask ClearTombstonesAsync(IReadOnlyCollection<Digest> digests, CancellationToken ct);

    /// <summary>Every digest with a blob row (for finding files the metadata does not know).</summary>
    ValueTask<IReadOnlySet<Digest>> ListRecordedDigestsAsync(CancellationToken ct);

    ValueTask<long> StartGcRunAsync(bool dryRun, string trigger, DateTimeOffset now, CancellationToken ct);
    ValueTask FinishGcRunAsync(long id, string status, string reportJson, DateTimeOffset now, CancellationToken ct);
    ValueTask<GcRunRecord?> GetGcRunAsync(long id, CancellationToken ct);

    /// <summary>The most recent runs first.</summary>
    ValueTask<IReadOnlyList<GcRunRecord>> ListGcRunsAsync(int limit, CancellationToken ct);

    /// <summary>Deletes the finished runs older than the <paramref name="keep"/> most recent runs.</summary>
    ValueTask PruneGcRunsAsync(int keep, CancellationToken ct);

    /// <summary>
    /// Marks runs still "running" as interrupted; returns how many. The caller MUST hold the <c>gc</c> lease and run
    /// nothing itself: then no live process is running one, and every run still "running" was left by one that stopped.
    /// </summary>
    ValueTask<int> InterruptGcRunsAsync(DateTimeOffset now, CancellationToken ct);
}
