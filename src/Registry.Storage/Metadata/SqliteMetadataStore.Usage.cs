using Microsoft.Data.Sqlite;
using Registry.Storage.Model;

namespace Registry.Storage.Metadata;

public sealed partial class SqliteMetadataStore : IStorageUsage
{
    /// <summary>
    /// Per repository of <c>chosen</c>: every digest it holds (links and manifests, once each), with its size and
    /// whether another repository holds it too.
    /// </summary>
    private const string UsageOf = """
        WITH held(repository_id, digest) AS (
            SELECT repository_id, digest FROM repository_blobs WHERE repository_id IN (SELECT id FROM chosen)
            UNION SELECT repository_id, digest FROM manifests WHERE repository_id IN (SELECT id FROM chosen)),
        holders(digest, count) AS (
            SELECT digest, count(DISTINCT repository_id) FROM (
                SELECT repository_id, digest FROM repository_blobs WHERE digest IN (SELECT digest FROM held)
                UNION SELECT repository_id, digest FROM manifests WHERE digest IN (SELECT digest FROM held))
            GROUP BY digest)
        SELECT c.name,
               coalesce(sum(CASE WHEN h.count = 1 THEN b.size END), 0),
               coalesce(sum(CASE WHEN h.count > 1 THEN b.size END), 0)
        FROM chosen c
        LEFT JOIN held ON held.repository_id = c.id
        LEFT JOIN blobs b ON b.digest = held.digest
        LEFT JOIN holders h ON h.digest = held.digest
        GROUP BY c.id ORDER BY c.name
        """;

    public ValueTask<TotalUsage> GetTotalUsageAsync(CancellationToken ct)
    {
        using var lease = Read();
        using var reader = lease.Command("SELECT count(*), coalesce(sum(size), 0) FROM blobs").ExecuteReader();
        reader.Read();
        return ValueTask.FromResult(new TotalUsage(reader.GetInt64(0), reader.GetInt64(1)));
    }

    private static List<RepositoryUsage> ReadUsage(SqliteCommand command)
    {
        var items = new List<RepositoryUsage>();
        using var reader = command.ExecuteReader();
        while (reader.Read()) items.Add(new RepositoryUsage(reader.GetString(0), reader.GetInt64(1), reader.GetInt64(2)));
        return items;
    }

    public ValueTask<Page<RepositoryUsage>> ListRepositoryUsageAsync(int limit, string? last, CancellationToken ct)
    {
        if (limit == 0) return ValueTask.FromResult(new Page<RepositoryUsage>([], false));
        using var lease = Read();
        var command = lease.Command($"""
            WITH chosen(id, name) AS (SELECT id, name FROM repositories WHERE name > $last ORDER BY name LIMIT $limit),
            {UsageOf["WITH ".Length..]}
            """);
        command.Parameters.AddWithValue("$last", last ?? "");
        command.Parameters.AddWithValue("$limit", limit + 1);
        var items = ReadUsage(command);
        var more = items.Count > limit;
        if (more) items.RemoveAt(items.Count - 1);
        return ValueTask.FromResult(new Page<RepositoryUsage>(items, more));
    }

    public ValueTask<IReadOnlyDictionary<string, RepositoryUsage>> GetRepositoryUsageAsync(
        IReadOnlyCollection<string> repositories, CancellationToken ct)
    {
        if (repositories.Count == 0)
            return ValueTask.FromResult<IReadOnlyDictionary<string, RepositoryUsage>>(new Dictionary<string, RepositoryUsage>());
        using var lease = Read();
        var command = lease.Command($"""
            WITH chosen(id, name) AS (SELECT id, name FROM repositories WHERE name IN (SELECT value FROM json_each($names))),
            {UsageOf["WITH ".Length..]}
            """);
        command.Parameters.AddWithValue("$names", JsonArray(repositories));
        return ValueTask.FromResult<IReadOnlyDictionary<string, RepositoryUsage>>(
            ReadUsage(command).ToDictionary(u => u.Repository));
    }
}
