using Registry.Storage.Blobs;
using Registry.Storage.Model;

namespace Registry.Storage.Metadata;

/// <summary>Small blob content in the <c>blob_content</c> table (see <see cref="IInlineContent"/>).</summary>
public sealed partial class SqliteMetadataStore : IInlineContent
{
    public byte[]? ReadContent(Digest digest)
    {
        using var lease = Read();
        var command = lease.Command("SELECT content FROM blob_content WHERE digest = $digest");
        command.Parameters.AddWithValue("$digest", digest.ToString());
        return command.ExecuteScalar() as byte[];
    }

    public (long Length, DateTimeOffset WrittenAt)? StatContent(Digest digest)
    {
        using var lease = Read();
        var command = lease.Command("SELECT length(content), written_at FROM blob_content WHERE digest = $digest");
        command.Parameters.AddWithValue("$digest", digest.ToString());
        using var reader = command.ExecuteReader();
        if (!reader.Read()) return null;
        return (reader.GetInt64(0), DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(1)));
    }

    public ValueTask PutContentAsync(Digest digest, ReadOnlyMemory<byte> content, DateTimeOffset now, CancellationToken ct)
    {
        // Copied now: the caller's buffer may be reused once this returns, and the write runs later, on the loop.
        var bytes = content.ToArray();
        return new(WriteAsync(db =>
        {
            var command = db.Command("""
                INSERT INTO blob_content(digest, written_at, content) VALUES ($digest, $now, $content)
                ON CONFLICT(digest) DO NOTHING
                """);
            command.Parameters.AddWithValue("$digest", digest.ToString());
            command.Parameters.AddWithValue("$now", Ms(now));
            command.Parameters.AddWithValue("$content", bytes);
            if (command.ExecuteNonQuery() == 0) db.Discard();
            return true;
        }, ct, isChange: false, awaitDurable: false).AsTask());
    }

    public ValueTask<long?> DeleteContentAsync(Digest digest, CancellationToken ct) =>
        WriteAsync(db =>
        {
            var command = db.Command("DELETE FROM blob_content WHERE digest = $digest RETURNING length(content)");
            command.Parameters.AddWithValue("$digest", digest.ToString());
            var length = command.ExecuteScalar() as long?;
            if (length is null) db.Discard();
            return length;
        }, ct, isChange: false);

    public IReadOnlyList<Digest> ListContent()
    {
        using var lease = Read();
        var command = lease.Command("SELECT digest FROM blob_content");
        using var reader = command.ExecuteReader();
        var digests = new List<Digest>();
        while (reader.Read())
            if (Digest.TryParse(reader.GetString(0), out var digest)) digests.Add(digest);
        return digests;
    }
}
