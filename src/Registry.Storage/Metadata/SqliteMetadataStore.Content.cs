using System.Collections.Concurrent;
using Registry.Storage.Blobs;
using Registry.Storage.Model;

namespace Registry.Storage.Metadata;

/// <summary>
/// Small blob content in the <c>blob_content</c> table (see <see cref="IInlineContent"/>). A put does not wait for a
/// transaction: the content waits in memory (readable at once in this process) until a write writes it, whichever
/// comes first of
/// <list type="bullet">
/// <item>the write that records the blob (a link, a manifest: <c>EnsureBlob</c>), in its own savepoint, so that row
/// never commits without the content;</item>
/// <item>a write of its own, queued by the put and not waited for, for content nothing records (a refused push).</item>
/// </list>
/// So a push costs one pass of the group commit loop and one WAL fsync, where waiting for the content's own commit
/// first cost two passes. Content leaves memory only once a transaction that wrote it has committed.
/// </summary>
public sealed partial class SqliteMetadataStore : IInlineContent
{
    internal sealed record PendingContent(byte[] Content, long WrittenAt);

    private readonly ConcurrentDictionary<string, PendingContent> _pendingContent = new(StringComparer.Ordinal);

    public byte[]? ReadContent(Digest digest)
    {
        if (_pendingContent.TryGetValue(digest.ToString(), out var pending)) return pending.Content;
        using var lease = Read();
        var command = lease.Command("SELECT content FROM blob_content WHERE digest = $digest");
        command.Parameters.AddWithValue("$digest", digest.ToString());
        return command.ExecuteScalar() as byte[];
    }

    public (long Length, DateTimeOffset WrittenAt)? StatContent(Digest digest)
    {
        if (_pendingContent.TryGetValue(digest.ToString(), out var pending))
            return (pending.Content.Length, DateTimeOffset.FromUnixTimeMilliseconds(pending.WrittenAt));
        using var lease = Read();
        var command = lease.Command("SELECT length(content), written_at FROM blob_content WHERE digest = $digest");
        command.Parameters.AddWithValue("$digest", digest.ToString());
        using var reader = command.ExecuteReader();
        if (!reader.Read()) return null;
        return (reader.GetInt64(0), DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(1)));
    }

    public ValueTask PutContentAsync(Digest digest, ReadOnlyMemory<byte> content, DateTimeOffset now, CancellationToken ct)
    {
        var key = digest.ToString();
        // Copied: the caller's buffer may be reused once this returns.
        _pendingContent.TryAdd(key, new PendingContent(content.ToArray(), Ms(now)));
        _ = WriteAsync(db =>
        {
            if (!WritePendingContent(db, key)) db.Discard();
            return true;
        }, CancellationToken.None, isChange: false, awaitDurable: false).AsTask();
        return ValueTask.CompletedTask;
    }

    /// <summary>Writes <paramref name="digest"/>'s pending content, if any, in the current write; true if it did.</summary>
    private static bool WritePendingContent(Prepared db, string digest)
    {
        if (db.Pending is not { } pending || !pending.TryGetValue(digest, out var content)) return false;
        var command = db.Command("""
            INSERT INTO blob_content(digest, written_at, content) VALUES ($digest, $now, $content)
            ON CONFLICT(digest) DO NOTHING
            """);
        command.Parameters.AddWithValue("$digest", digest);
        command.Parameters.AddWithValue("$now", content.WrittenAt);
        command.Parameters.AddWithValue("$content", content.Content);
        command.ExecuteNonQuery();
        db.ContentWritten.Add(new(digest, content));
        return true;
    }

    /// <summary>After a commit: the content it wrote is in the database now, and leaves memory.</summary>
    private void ContentCommitted(Prepared db)
    {
        foreach (var written in db.ContentWritten) _pendingContent.TryRemove(written);
        db.ContentWritten.Clear();
    }

    public async ValueTask<long?> DeleteContentAsync(Digest digest, CancellationToken ct)
    {
        var key = digest.ToString();
        var removed = _pendingContent.TryRemove(key, out var pending);
        var deleted = await WriteAsync(db =>
        {
            var command = db.Command("DELETE FROM blob_content WHERE digest = $digest RETURNING length(content)");
            command.Parameters.AddWithValue("$digest", key);
            var length = command.ExecuteScalar() as long?;
            if (length is null) db.Discard();
            return length;
        }, ct, isChange: false);
        return deleted ?? (removed ? pending!.Content.Length : null);
    }

    public IReadOnlyList<Digest> ListContent()
    {
        var digests = new HashSet<Digest>();
        foreach (var key in _pendingContent.Keys)
            if (Digest.TryParse(key, out var digest)) digests.Add(digest);
        using var lease = Read();
        var command = lease.Command("SELECT digest FROM blob_content");
        using var reader = command.ExecuteReader();
        while (reader.Read())
            if (Digest.TryParse(reader.GetString(0), out var digest)) digests.Add(digest);
        return [.. digests];
    }
}
