using Registry.Storage.Model;

namespace Registry.Storage.Metadata.Postgres;

/// <summary>
/// The read models of the search and tag details extensions, as SQL over the core tables: the same queries as
/// SQLite's, in byte order (the name columns are <c>COLLATE "C"</c>).
/// </summary>
public sealed partial class PostgresMetadataStore : ISearchReadModel, ITagDetailsReadModel
{
    public ValueTask<Page<RepositorySearchHit>> SearchRepositoriesAsync(RepositorySearch query, int limit, string? last,
        Func<RepositoryName, bool>? visible, CancellationToken ct) =>
        limit == 0 ? ValueTask.FromResult(new Page<RepositorySearchHit>([], false)) : ReadAsync(async (c, t) =>
        {
            var hits = new List<RepositorySearchHit>();
            var after = last ?? "";
            // Filtered: read in batches until the page and one more visible hit are found (no short pages).
            var batch = visible is null ? limit + 1 : Math.Max(limit + 1, 500);
            while (hits.Count <= limit)
            {
                t.ThrowIfCancellationRequested();
                var read = 0;
                await using (var command = Command(c, """
                    SELECT r.name,
                      (SELECT count(*) FROM tags t WHERE t.repository_id = r.id),
                      ((SELECT coalesce(sum(b.size), 0) FROM repository_blobs rb JOIN blobs b ON b.digest = rb.digest
                          WHERE rb.repository_id = r.id)
                       + (SELECT coalesce(sum(m.size), 0) FROM manifests m WHERE m.repository_id = r.id))::bigint,
                      (SELECT max(m.pushed_at) FROM manifests m WHERE m.repository_id = r.id)
                    FROM repositories r
                    WHERE r.name > $1
                      AND ($2::text IS NULL OR strpos(r.name, $2) > 0)
                      AND ($3::text IS NULL OR starts_with(r.name, $3))
                      AND ($4::text IS NULL OR EXISTS (SELECT 1 FROM manifests m
                            WHERE m.repository_id = r.id AND m.artifact_type = $4))
                      AND ($5::text IS NULL OR EXISTS (SELECT 1 FROM manifests m
                            WHERE m.repository_id = r.id AND m.media_type = $5))
                    ORDER BY r.name LIMIT $6
                    """, Pg.Text(after), Pg.Text(query.Contains), Pg.Text(query.Prefix), Pg.Text(query.ArtifactType),
                    Pg.Text(query.MediaType), Pg.Int4(batch)))
                await using (var reader = await command.ExecuteReaderAsync(t))
                    while (hits.Count <= limit && await reader.ReadAsync(t))
                    {
                        read++;
                        var name = reader.GetString(0);
                        after = name;
                        if (!RepositoryName.TryParse(name, out var repository) || visible?.Invoke(repository) == false)
                            continue;
                        hits.Add(new RepositorySearchHit(repository, reader.GetInt64(1), reader.GetInt64(2),
                            reader.IsDBNull(3) ? null : DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(3))));
                    }
                if (read < batch) break;
            }
            var more = hits.Count > limit;
            if (more) hits.RemoveAt(hits.Count - 1);
            return new Page<RepositorySearchHit>(hits, more);
        }, ct);

    public ValueTask<Page<TagDetail>> ListTagDetailsAsync(RepositoryName repository, int limit, string? last,
        CancellationToken ct) =>
        limit == 0 ? ValueTask.FromResult(new Page<TagDetail>([], false)) : ReadAsync(async (c, t) =>
        {
            var rows = await ListAsync(Command(c, """
                SELECT t.name, m.digest, m.media_type, m.artifact_type, m.size, t.updated_at
                FROM tags t
                JOIN repositories r ON r.id = t.repository_id
                JOIN manifests m ON m.repository_id = t.repository_id AND m.digest = t.digest
                WHERE r.name = $1 AND t.name > $2
                ORDER BY t.name LIMIT $3
                """, Pg.Text(repository.Value), Pg.Text(last ?? ""), Pg.Int4(limit + 1)),
                r => Tag.TryParse(r.GetString(0), out var tag)
                    ? new TagDetail(tag, Digest.Parse(r.GetString(1)), r.GetString(2), r.IsDBNull(3) ? null : r.GetString(3),
                        r.GetInt64(4), DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(5)))
                    : null, t);
            var more = rows.Count > limit;
            if (more) rows.RemoveAt(rows.Count - 1);
            return new Page<TagDetail>(rows, more);
        }, ct);
}
