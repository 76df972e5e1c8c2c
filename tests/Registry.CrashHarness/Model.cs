using System.Security.Cryptography;

namespace Registry.CrashHarness;

/// <summary>
/// Bytes of a blob: either kept (configs) or regenerated from a seed (layers), so the ledger of thousands of blobs
/// stays small. <see cref="Digest"/> is computed once when the content is made.
/// </summary>
public sealed class Content
{
    private readonly byte[]? _bytes;
    private readonly int _seed;

    private Content(byte[]? bytes, int seed, int length)
    {
        _bytes = bytes;
        _seed = seed;
        Length = length;
        Digest = Sha256(Bytes());
    }

    public int Length { get; }
    public string Digest { get; }

    public static Content Random(int seed, int length) => new(null, seed, length);

    public static Content Of(byte[] bytes) => new(bytes, 0, bytes.Length);

    public byte[] Bytes()
    {
        if (_bytes is not null) return _bytes;
        var bytes = new byte[Length];
        new Random(_seed).NextBytes(bytes);
        return bytes;
    }

    public static string Sha256(ReadOnlySpan<byte> data) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(data));
}

/// <summary>What the ledger knows about an object: acknowledged, or a change that was in flight when it ended.</summary>
public enum ObjectState
{
    /// <summary>Push acknowledged (or observed present after a restart): must be pullable.</summary>
    Present,
    /// <summary>Delete acknowledged: must stay gone.</summary>
    Deleted,
    /// <summary>A push that got no acknowledgement: may or may not exist; the next check observes which.</summary>
    PushUnknown,
    /// <summary>A delete that got no acknowledgement.</summary>
    DeleteUnknown,
}

public sealed class BlobEntry(Content content, bool standalone)
{
    public Content Content { get; } = content;
    /// <summary>Pushed on its own (not as part of an image): the only blobs the workload deletes.</summary>
    public bool Standalone { get; } = standalone;
    public ObjectState State { get; set; } = ObjectState.PushUnknown;
}

public sealed class ManifestEntry(byte[] bytes, string mediaType, IReadOnlyList<string> blobs, IReadOnlyList<string> children)
{
    public byte[] Bytes { get; } = bytes;
    public string Digest { get; } = Content.Sha256(bytes);
    public string MediaType { get; } = mediaType;
    public IReadOnlyList<string> Blobs { get; } = blobs;
    public IReadOnlyList<string> Children { get; } = children;
    public bool IsIndex => Children.Count > 0;
    /// <summary>Referenced by an index: never deleted, so the index stays complete.</summary>
    public bool Pinned { get; set; }
    public ObjectState State { get; set; } = ObjectState.PushUnknown;
}

/// <summary>
/// A tag: the value of its last acknowledged write (null: absent), plus the values of writes that were in flight
/// when the server died (either may have won).
/// </summary>
public sealed class TagEntry
{
    public string? Value { get; set; }
    public HashSet<string?> Pending { get; } = [];
    public bool Allows(string? digest) => Value == digest || Pending.Contains(digest);
}

/// <summary>An upload session left open: its bytes, how many of them were acknowledged, and how many were sent.</summary>
public sealed class SessionEntry(string location, Content content, bool standalone)
{
    public string Location { get; } = location;
    public Content Content { get; } = content;
    /// <summary>The blob was not going to be referenced by a manifest (see <see cref="BlobEntry.Standalone"/>).</summary>
    public bool Standalone { get; } = standalone;
    /// <summary>Bytes covered by a 202 (the session must hold at least these).</summary>
    public long Acknowledged { get; set; }
    /// <summary>Bytes sent, including a chunk in flight at the kill (the session may hold up to these).</summary>
    public long Sent { get; set; }
    /// <summary>The closing PUT was in flight: the session may be gone and the blob may exist.</summary>
    public bool CommitInFlight { get; set; }
    /// <summary>Opened before the kill (scale-out: it may go on after it, on the surviving replica).</summary>
    public bool OpenedBeforeKill { get; init; }
}

/// <summary>Everything one worker did to its repository, across all rounds. Only that worker touches it during traffic.</summary>
public sealed class RepositoryLedger(string name)
{
    public static readonly string[] TagPool = ["latest", "t0", "t1", "t2", "t3", "t4"];

    public string Name { get; } = name;
    public Dictionary<string, BlobEntry> Blobs { get; } = [];
    public Dictionary<string, ManifestEntry> Manifests { get; } = [];
    public Dictionary<string, TagEntry> Tags { get; } = [];
    public List<SessionEntry> Sessions { get; } = [];
    public int Counter { get; set; }

    public TagEntry Tag(string name)
    {
        if (!Tags.TryGetValue(name, out var tag)) Tags[name] = tag = new TagEntry();
        return tag;
    }

    /// <summary>The entry for this content; a new one starts as an unacknowledged push, a present one stays present.</summary>
    public BlobEntry Blob(Content content, bool standalone)
    {
        if (!Blobs.TryGetValue(content.Digest, out var blob)) Blobs[content.Digest] = blob = new BlobEntry(content, standalone);
        return blob;
    }
}
