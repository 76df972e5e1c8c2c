using Microsoft.Data.Sqlite;
using Registry.Storage.Model;

namespace Registry.Storage.Metadata;

/// <summary>The read models of the search and tag details extensions, as SQL over the core tables.</summary>
public sealed partial class SqliteMetadataStore : ISearchReadModel, ITagDetailsReadModel
{
    public ValueTask<Page<RepositorySearchHit>> SearchRepositoriesAsync(RepositorySearch query, int limit, string? last,
        Func<RepositoryName, bool>? visible, CancellationToken ct)
    {
        var hits = new List<RepositorySearchHit>();
        if (limit == 0) return ValueTask.FromResult(new Page<RepositorySearchHit>(hits, false));
        using var lease = Read();
        using var command = Command(lease.Connection, """
            SELECT r.name,
              (SELECT count(*) FROM tags t WHERE t.repository_id = r.id),
              (SELECT coalesce(sum(b.size), 0) FROM repository_blobs rb JOIN blobs b ON b.digest = rb.digest
                 WHERE rb.repository_id = r.id)
              + (SELECT coalesce(sum(m.size), 0) FROM manifests m WHERE m.repository_id = r.id),
              (SELECT max(m.pushed_at) FROM manifests m WHERE m.repository_id = r.id)
            FROM repositories r
            WHERE r.name > $last
              AND ($q IS NULL OR instr(r.name, $q) > 0)
              AND ($prefix IS NULL OR substr(r.name, 1, length($prefix)) = $prefix)
              AND ($artifactType IS NULL OR EXISTS (SELECT 1 FROM manifests m
                    WHERE m.repository_id = r.id AND m.artifact_type = $artifactType))
              AND ($mediaType IS NULL OR EXISTS (SELECT 1 FROM manifests m
                    WHERE m.repository_id = r.id AND m.media_type = $mediaType))
            ORDER BY r.name LIMIT $limit
            """);
        var after = command.Parameters.AddWithValue("$last", last ?? "");
        AddNullable(command, "$q", query.Contains);
        AddNullable(command, "$prefix", query.Prefix);
        AddNullable(command, "$artifactType", query.ArtifactType);
        AddNullable(command, "$mediaType", query.MediaType);
        // Filtered: read in batches until the page and one more visible hit are found (no short pages).
        var batch = visible is null ? limit + 1 : Math.Max(limit + 1, 500);
        command.Parameters.AddWithValue("$limit", batch);
        while (hits.Count <= limit)
        {
            ct.ThrowIfCancellationRequested();
            var read = 0;
            using (var reader = command.ExecuteReader())
                while (reader.Read() && hits.Count <= limit)
                {
                    read++;
                    var name = reader.GetString(0);
                    after.Value = name;
                    if (!RepositoryName.TryParse(name, out var repository) || visible?.Invoke(repository) == false)
                        continue;
                    hits.Add(new RepositorySearchHit(repository, reader.GetInt64(1), reader.GetInt64(2),
                        reader.IsDBNull(3) ? null : DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(3))));
                }
            if (read < batch) break;
        }
        var more = hits.Count > limit;
        if (more) hits.RemoveAt(hits.Count - 1);
        return ValueTask.FromResult(new Page<RepositorySearchHit>(hits, more));
    }

    public ValueTask<Page<TagDetail>> ListTagDetailsAsync(RepositoryName repository, int limit, string? last,
        CancellationToken ct)
    {
        var rows = new List<TagDetail>();
        if (limit == 0) return ValueTask.FromResult(new Page<TagDetail>(rows, false));
        using var lease = Read();
        var command = lease.Command("""
            SELECT t.name, m.digest, m.media_type, m.artifact_type, m.size, t.updated_at
            FROM tags t
            JOIN repositories r ON r.id = t.repository_id
            JOIN manifests m ON m.repository_id = t.repository_id AND m.digest = t.digest
            WHERE r.name = $name AND t.name > $last
            ORDER BY t.name LIMIT $limit
            """);
        command.Parameters.AddWithValue("$name", repository.Value);
        command.Parameters.AddWithValue("$last", last ?? "");
        command.Parameters.AddWithValue("$limit", limit + 1);
        using (var reader = command.ExecuteReader())
            while (reader.Read())
                if (Tag.TryParse(reader.GetString(0), out var tag))
                    rows.Add(new TagDetail(tag, Digest.Parse(reader.GetString(1)), reader.GetString(2),
                        reader.IsDBNull(3) ? null : reader.GetString(3), reader.GetInt64(4),
                        DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(5))));
        var more = rows.Count > limit;
        if (more) rows.RemoveAt(rows.Count - 1);
        return ValueTask.FromResult(new Page<TagDetail>(rows, more));
    }

    private static void AddNullable(SqliteCommand command, string name, string? value) =>
        command.Parameters.AddWithValue(name, (object?)value ?? DBNull.Value);
}
