using Registry.Storage.Model;

namespace Registry.Storage.Metadata.Postgres;

public sealed partial class PostgresMetadataStore : IStorageUsage
{
    /// <summary>
    /// Per repository of <c>chosen</c>: every digest it holds (links and manifests, once each), with its size and
    /// whether another repository holds it too.
    /// </summary>
    private const string UsageOf = """
        held(repository_id, digest) AS (
            SELECT repository_id, digest FROM repository_blobs WHERE repository_id IN (SELECT id FROM chosen)
            UNION SELECT repository_id, digest FROM manifests WHERE repository_id IN (SELECT id FROM chosen)),
        holders(digest, count) AS (
            SELECT digest, count(DISTINCT repository_id) FROM (
                SELECT repository_id, digest FROM repository_blobs WHERE digest IN (SELECT digest FROM held)
                UNION SELECT repository_id, digest FROM manifests WHERE digest IN (SELECT digest FROM held)) AS h
            GROUP BY digest)
        SELECT c.name,
               coalesce(sum(CASE WHEN h.count = 1 THEN b.size END), 0)::bigint,
               coalesce(sum(CASE WHEN h.count > 1 THEN b.size END), 0)::bigint
        FROM chosen c
        LEFT JOIN held ON held.repository_id = c.id
        LEFT JOIN blobs b ON b.digest = held.digest
        LEFT JOIN holders h ON h.digest = held.digest
        GROUP BY c.id, c.name ORDER BY c.name
        """;

    public ValueTask<TotalUsage> GetTotalUsageAsync(CancellationToken ct) =>
        ReadAsync(async (c, t) =>
        {
            await using var command = Command(c, "SELECT count(*), coalesce(sum(size), 0)::bigint FROM blobs");
            await using var reader = await command.ExecuteReaderAsync(t);
            await reader.ReadAsync(t);
            return new TotalUsage(reader.GetInt64(0), reader.GetInt64(1));
        }, ct);

    public ValueTask<Page<RepositoryUsage>> ListRepositoryUsageAsync(int limit, string? last, CancellationToken ct) =>
        limit == 0 ? ValueTask.FromResult(new Page<RepositoryUsage>([], false)) : ReadAsync(async (c, t) =>
        {
            var items = await ListAsync(Command(c, $"""
                WITH chosen(id, name) AS (SELECT id, name FROM repositories WHERE name > $1 ORDER BY name LIMIT $2),
                {UsageOf}
                """, Pg.Text(last ?? ""), Pg.Int4(limit + 1)),
                r => new RepositoryUsage(r.GetString(0), r.GetInt64(1), r.GetInt64(2)), t);
            var more = items.Count > limit;
            if (more) items.RemoveAt(items.Count - 1);
            return new Page<RepositoryUsage>(items, more);
        }, ct);

    public ValueTask<IReadOnlyDictionary<string, RepositoryUsage>> GetRepositoryUsageAsync(
        IReadOnlyCollection<string> repositories, CancellationToken ct) =>
        repositories.Count == 0
            ? ValueTask.FromResult<IReadOnlyDictionary<string, RepositoryUsage>>(new Dictionary<string, RepositoryUsage>())
            : ReadAsync<IReadOnlyDictionary<string, RepositoryUsage>>(async (c, t) => (await ListAsync(Command(c, $"""
                WITH chosen(id, name) AS (SELECT id, name FROM repositories WHERE name = ANY ($1::text[])),
                {UsageOf}
                """, Pg.TextArray(repositories.ToArray())),
                r => new RepositoryUsage(r.GetString(0), r.GetInt64(1), r.GetInt64(2)), t)).ToDictionary(u => u.Repository), ct);
}
