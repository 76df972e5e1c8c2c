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
/// <item>for content nothing records (a refused push), a sweep of what has waited a second or more, and the store's
/// close.</item>
/// </list>
/// So a push costs one write in the group commit loop and one WAL fsync, where waiting for the content's own commit
/// first cost two writes and two passes. Content leaves memory only once a transaction that wrote it has committed.
/// </summary>
public sealed partial class SqliteMetadataStore : IInlineContent
{
    internal sealed record PendingContent(byte[] Content, long WrittenAt);

    private readonly ConcurrentDictionary<string, PendingContent> _pendingContent = new(StringComparer.Ordinal);
    private Timer? _pendingSweep;
    private readonly object _sweepGate = new();

    /// <summary>How long content nothing has recorded waits in memory before a write of its own takes it.</summary>
    private static readonly TimeSpan PendingSweep = TimeSpan.FromSeconds(1);

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
        // Held already (the empty config of every artifact, a second push of one layer): nothing to keep.
        if (StatContent(digest) is not null) return ValueTask.CompletedTask;
        // Copied: the caller's buffer may be reused once this returns.
        if (_pendingContent.TryAdd(digest.ToString(), new PendingContent(content.ToArray(), Ms(now))))
            lock (_sweepGate) _pendingSweep ??= new Timer(_ => SweepPendingContent(), null, PendingSweep, PendingSweep);
        return ValueTask.CompletedTask;
    }

    /// <summary>Queues one write (not waited for) of every pending content; true if there was any.</summary>
    private bool WriteAllPendingContent()
    {
        if (_pendingContent.IsEmpty) return false;
        _ = WriteAsync(db =>
        {
            var any = false;
            foreach (var key in _pendingContent.Keys) any |= WritePendingContent(db, key);
            if (!any) db.Discard();
            return true;
        }, CancellationToken.None, isChange: false, awaitDurable: false).AsTask();
        return true;
    }

    private void SweepPendingContent()
    {
        try
        {
            if (WriteAllPendingContent()) return;
            // Nothing waits: the timer stops until the next put.
            lock (_sweepGate)
            {
                if (!_pendingContent.IsEmpty) return;
                _pendingSweep?.Dispose();
                _pendingSweep = null;
            }
        }
        catch (ObjectDisposedException)
        {
            // The store is closing; its close wrote what was pending.
        }
    }

    /// <summary>At close, before the group commit stops: what still waits in memory is written.</summary>
    private void StopPendingContent()
    {
        lock (_sweepGate)
        {
            _pendingSweep?.Dispose();
            _pendingSweep = null;
        }
        WriteAllPendingContent();
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
