namespace Registry.Storage.Model;

/// <summary>Identifies an upload session: 32 lowercase hex characters, so it is safe as a path segment.</summary>
public readonly record struct UploadId
{
    private UploadId(string value) => Value = value;

    public string Value { get; }

    public override string ToString() => Value;

    public static UploadId New() => new(Guid.CreateVersion7().ToString("N"));

    public static bool TryParse(string? value, out UploadId id)
    {
        id = default;
        if (value is not { Length: 32 }) return false;
        foreach (var c in value)
            if (!char.IsAsciiDigit(c) && c is not (>= 'a' and <= 'f')) return false;
        id = new UploadId(value);
        return true;
    }
}

/// <summary>What a manifest points at: blobs (config, layers) or other manifests (index entries).</summary>
public enum ReferenceKind
{
    Blob = 0,
    Manifest = 1,
}

public readonly record struct ManifestReference(Digest Target, ReferenceKind Kind);

/// <summary>A blob the registry supplies itself (already published), linked together with a manifest.</summary>
public readonly record struct ProvidedBlob(Digest Digest, long Size);

/// <summary>A stored manifest. Its bytes live in the blob store under <see cref="Digest"/>.</summary>
public sealed record ManifestRecord(
    Digest Digest,
    string MediaType,
    long Size,
    string? ArtifactType,
    Digest? Subject,
    string? AnnotationsJson,
    DateTimeOffset PushedAt);

/// <summary>One page of a listing; <see cref="HasMore"/> says whether a next page exists.</summary>
public sealed record Page<T>(IReadOnlyList<T> Items, bool HasMore);

/// <summary>
/// What the store holds, for monitoring: repositories, manifests (counted once per repository that holds them), blobs
/// (content-addressed, manifests included) with their total size in bytes, and open upload sessions.
/// </summary>
public sealed record StoreStatistics(long Repositories, long Manifests, long Blobs, long BlobBytes, long Uploads);

/// <param name="Client">Who opened the session (an identity or a client address, see the API layer), for the
/// per-client cap; null for sessions recorded before clients were.</param>
/// <param name="Owner">The identity that opened the session (null without authentication); only it may continue it.</param>
public sealed record UploadSession(UploadId Id, RepositoryName Repository, DateTimeOffset StartedAt, string? Client = null,
    string? Owner = null);

public enum PutManifestStatus
{
    Stored,
    /// <summary>A referenced blob or child manifest is not in the repository.</summary>
    MissingReference,
}

public readonly record struct PutManifestResult(PutManifestStatus Status, Digest? Missing = null);

/// <summary>One change, as the outbox records it. <see cref="Id"/> increases with every event.</summary>
public sealed record RegistryEvent(long Id, DateTimeOffset At, string Action, string Repository, string? Digest,
    string? Tag, string? MediaType, long? Size);

public static class EventActions
{
    public const string RepositoryCreate = "repository.create";
    public const string ManifestPush = "manifest.push";
    public const string ManifestDelete = "manifest.delete";
    public const string TagCreate = "tag.create";
    public const string TagUpdate = "tag.update";
    public const string TagDelete = "tag.delete";
    public const string BlobDelete = "blob.delete";

    public static readonly IReadOnlyList<string> All =
        [RepositoryCreate, ManifestPush, ManifestDelete, TagCreate, TagUpdate, TagDelete, BlobDelete];
}
