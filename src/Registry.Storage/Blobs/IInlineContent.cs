using Registry.Storage.Model;

namespace Registry.Storage.Blobs;

/// <summary>
/// Small blob content kept inside the metadata database instead of in a file of its own (the filesystem store's
/// <c>Registry:Storage:InlineBytes</c>). Publishing it is then a row in the same write-ahead log as the link or
/// manifest row that references it, written before that row: the referencing row's durable commit makes the content
/// durable too, so a small push costs one flush (the WAL's) instead of three (data, rename, folder, then the WAL).
/// Implemented by the SQLite metadata store; its tests: <c>InlineContentTests</c>.
/// </summary>
public interface IInlineContent
{
    /// <summary>The content, or null when none is held under <paramref name="digest"/>.</summary>
    byte[]? ReadContent(Digest digest);

    /// <summary>The content's length and when it was written, or null.</summary>
    (long Length, DateTimeOffset WrittenAt)? StatContent(Digest digest);

    /// <summary>
    /// Keeps <paramref name="content"/> (already verified against <paramref name="digest"/>) without waiting for a
    /// commit: it is readable in this process at once, and written no later than the metadata write that records the
    /// blob, in that write's own transaction step, so it is durable when that write is (the WAL is flushed in order).
    /// Other processes over the same database see it once it is written. Content already held is success.
    /// </summary>
    ValueTask PutContentAsync(Digest digest, ReadOnlyMemory<byte> content, DateTimeOffset now, CancellationToken ct);

    /// <summary>Removes the content and returns how many bytes it held, or null when none was held.</summary>
    ValueTask<long?> DeleteContentAsync(Digest digest, CancellationToken ct);

    /// <summary>Every digest held, read at the time of the call.</summary>
    IReadOnlyList<Digest> ListContent();
}
