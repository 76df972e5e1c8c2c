using Registry.Storage.Model;

namespace Registry.Storage.Blobs.S3;

/// <summary>One uploaded part of a session's multipart upload.</summary>
public readonly record struct UploadedPart(int Number, string ETag, long Size);

/// <summary>
/// Everything an S3 upload session needs between requests, so that any replica can take the next one: the multipart
/// upload (null until the first part), its parts, the byte count, the SHA-256 state over all of those bytes, and the
/// pending tail: the last bytes, fewer than S3's smallest part, held in an object of their own until more arrive.
/// </summary>
public sealed record UploadSessionState(
    string? MultipartUploadId,
    IReadOnlyList<UploadedPart> Parts,
    long Size,
    byte[] HashState,
    string? TailKey,
    long TailSize)
{
    public static UploadSessionState Empty() => new(null, [], 0, new Sha256State().Export(), null, 0);

    private const byte FormatVersion = 1;

    public byte[] Serialise()
    {
        using var memory = new MemoryStream();
        using (var writer = new BinaryWriter(memory))
        {
            writer.Write(FormatVersion);
            writer.Write(Size);
            writer.Write(TailSize);
            WriteOptional(writer, TailKey);
            WriteOptional(writer, MultipartUploadId);
            writer.Write(HashState.Length);
            writer.Write(HashState);
            writer.Write(Parts.Count);
            foreach (var part in Parts)
            {
                writer.Write(part.Number);
                writer.Write(part.Size);
                writer.Write(part.ETag);
            }
        }
        return memory.ToArray();
    }

    /// <summary>Reads a <see cref="Serialise"/>d state; throws <see cref="FormatException"/> for anything else.</summary>
    public static UploadSessionState Deserialise(byte[] bytes)
    {
        try
        {
            using var reader = new BinaryReader(new MemoryStream(bytes));
            if (reader.ReadByte() != FormatVersion) throw new FormatException("unknown upload session format");
            var size = reader.ReadInt64();
            var tailSize = reader.ReadInt64();
            var tailKey = ReadOptional(reader);
            var uploadId = ReadOptional(reader);
            var hash = reader.ReadBytes(reader.ReadInt32());
            var count = reader.ReadInt32();
            var parts = new List<UploadedPart>(count);
            for (var i = 0; i < count; i++)
            {
                var number = reader.ReadInt32();
                var partSize = reader.ReadInt64();
                parts.Add(new UploadedPart(number, reader.ReadString(), partSize));
            }
            return new UploadSessionState(uploadId, parts, size, hash, tailKey, tailSize);
        }
        catch (EndOfStreamException e)
        {
            throw new FormatException("truncated upload session state", e);
        }
    }

    private static void WriteOptional(BinaryWriter writer, string? value)
    {
        writer.Write(value is not null);
        if (value is not null) writer.Write(value);
    }

    private static string? ReadOptional(BinaryReader reader) => reader.ReadBoolean() ? reader.ReadString() : null;
}

/// <summary>A session's state and the version it was read at (for a compare-and-swap replace).</summary>
public sealed record VersionedUploadSession(UploadSessionState State, string Version, DateTimeOffset WrittenAt);

/// <summary>
/// Where S3 upload sessions keep their state between requests. Nothing of a session lives in process memory, so any
/// replica can take its next request. Implemented on the bucket itself (<see cref="S3UploadSessionStore"/>); a
/// shared metadata database can implement it too.
/// </summary>
public interface IUploadSessionStore
{
    /// <summary>Creates the state of a new session; false if the session exists already.</summary>
    ValueTask<bool> CreateAsync(UploadId id, UploadSessionState state, CancellationToken ct);

    ValueTask<VersionedUploadSession?> GetAsync(UploadId id, CancellationToken ct);

    /// <summary>
    /// Replaces the state if it is still at <paramref name="expectedVersion"/> (the commit point of an append); false
    /// when another request changed it in between, in which case nothing was written.
    /// </summary>
    ValueTask<bool> ReplaceAsync(UploadId id, UploadSessionState state, string expectedVersion, CancellationToken ct);

    /// <summary>Removes the state. Idempotent.</summary>
    ValueTask DeleteAsync(UploadId id, CancellationToken ct);

    /// <summary>Sessions whose state was last written before <paramref name="before"/>.</summary>
    IAsyncEnumerable<UploadId> ListWrittenBeforeAsync(DateTimeOffset before, CancellationToken ct);
}
