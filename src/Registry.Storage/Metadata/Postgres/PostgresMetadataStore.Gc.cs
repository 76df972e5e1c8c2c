using System.Data;
using Npgsql;
using Registry.Storage.Model;

namespace Registry.Storage.Metadata.Postgres;

/// <summary>
/// Garbage collection's queries and deletions (docs/storage.md, "Garbage collection"). The deciding transactions are
/// SERIALIZABLE like every write here, so "unreferenced" holds against pushes committing at the same time.
/// </summary>
public sealed partial class PostgresMetadataStore : IGarbageCollectionStore
{
    /// <summary>
    /// The manifests of repository <c>$1</c> with whether each is reachable: roots are the tagged ones (minus the tags in
    /// <c>$2</c>) and those pushed at or after <c>$3</c>; reachability follows index children, subjects and referrers
    /// (one edge list, since PostgreSQL allows one recursive reference).
    /// </summary>
    private const string MarkQuery = """
        WITH RECURSIVE edges(source, target) AS (
            SELECT manifest, target FROM manifest_references WHERE repository_id = $1 AND kind = 1
            UNION ALL SELECT digest, subject FROM manifests WHERE repository_id = $1 AND subject IS NOT NULL
            UNION ALL SELECT subject, digest FROM manifests WHERE repository_id = $1 AND subject IS NOT NULL),
        reach(digest) AS (
            SELECT digest FROM tags WHERE repository_id = $1 AND name <> ALL ($2::text[])
            UNION SELECT digest FROM manifests WHERE repository_id = $1 AND pushed_at >= $3
            UNION SELECT e.target FROM reach JOIN edges e ON e.source = reach.digest)
        SELECT m.digest, m.digest IN (SELECT digest FROM reach) FROM manifests m WHERE m.repository_id = $1
        """;

    public ValueTask<IReadOnlyList<RepositoryName>> ListAllRepositoriesAsync(CancellationToken ct) =>
        ReadAsync<IReadOnlyList<RepositoryName>>(async (c, t) =>
            (await ListAsync<RepositoryName?>(Command(c, "SELECT name FROM repositories ORDER BY name"),
                r => RepositoryName.TryParse(r.GetString(0), out var name) ? name : null, t)).Select(n => n!.Value).ToList(), ct);

    public ValueTask<IReadOnlyList<TagRecord>> ListTagRecordsAsync(RepositoryName repository, CancellationToken ct) =>
        ReadAsync<IReadOnlyList<TagRecord>>(async (c, t) => await ListAsync(Command(c, """
            SELECT t.name, t.digest, t.updated_at FROM tags t JOIN repositories r ON r.id = t.repository_id
            WHERE r.name = $1 ORDER BY t.name
            """, Pg.Text(repository.Value)), r => Tag.TryParse(r.GetString(0), out var tag)
            ? new TagRecord(tag, Digest.Parse(r.GetString(1)), DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(2)))
            : null, t), ct);

    private static async Task<(int Reachable, List<Digest> Unreachable)> MarkAsync(NpgsqlConnection connection,
        NpgsqlTransaction? tx, long repositoryId, long young, IReadOnlyCollection<Tag> ignoredTags, CancellationToken ct)
    {
        await using var command = Pg.Command(connection, tx, MarkQuery, Pg.Int8(repositoryId),
            Pg.TextArray(ignoredTags.Select(t => t.Value).ToArray()), Pg.Int8(young));
        var reachable = 0;
        var unreachable = new List<Digest>();
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            if (reader.GetBoolean(1)) reachable++;
            else unreachable.Add(Digest.Parse(reader.GetString(0)));
        }
        return (reachable, unreachable);
    }

    public ValueTask<(int Reachable, IReadOnlyList<Digest> Unreachable)> MarkManifestsAsync(RepositoryName repository,
        DateTimeOffset? untaggedBefore, IReadOnlyCollection<Tag> ignoredTags, CancellationToken ct) =>
        ReadAsync<(int, IReadOnlyList<Digest>)>(async (c, t) =>
        {
            if (await ScalarAsync<long>(Command(c, "SELECT id FROM repositories WHERE name = $1", Pg.Text(repository.Value)), t)
                is not { } id)
                return (0, []);
            var (reachable, unreachable) = await MarkAsync(c, null, id,
                untaggedBefore is { } before ? Ms(before) : long.MinValue, ignoredTags, t);
            return (reachable, unreachable);
        }, ct);

    public ValueTask<IReadOnlyList<Digest>> SweepManifestsAsync(RepositoryName repository, DateTimeOffset untaggedBefore,
        IReadOnlyCollection<Digest> candidates, DateTimeOffset now, CancellationToken ct) =>
        candidates.Count == 0 ? ValueTask.FromResult<IReadOnlyList<Digest>>([]) : WriteAsync<IReadOnlyList<Digest>>(async (db, t) =>
        {
            if (await RepositoryIdAsync(db, repository, t) is not { } repositoryId) return [];
            // Decided again inside the deleting transaction: a push committed since the mark may have made one reachable.
            var wanted = candidates.ToHashSet();
            var (_, unreachable) = await MarkAsync(db.Connection, null, repositoryId, Ms(untaggedBefore), [], t);
            var deleted = unreachable.Where(wanted.Contains).ToList();
            if (deleted.Count == 0) return deleted;
            var digests = Pg.TextArray(deleted.Select(d => d.ToString()).ToArray());
            await ExecuteAsync(db.Command(
                "DELETE FROM manifest_references WHERE repository_id = $1 AND manifest = ANY ($2::text[])",
                Pg.Int8(repositoryId), digests), t);
            await ExecuteAsync(db.Command("DELETE FROM manifests WHERE repository_id = $1 AND digest = ANY ($2::text[])",
                Pg.Int8(repositoryId), Pg.TextArray(deleted.Select(d => d.ToString()).ToArray())), t);
            foreach (var digest in deleted) db.AddEvent(Ms(now), EventActions.ManifestDelete, repository, digest);
            return deleted;
        }, ct);

    public async ValueTask<GcPlan> PlanAsync(IReadOnlyDictionary<RepositoryName, IReadOnlyCollection<Tag>> deletedTags,
        DateTimeOffset? untaggedBefore, DateTimeOffset linkedBefore, CancellationToken ct)
    {
        // One REPEATABLE READ transaction (one snapshot); the plan lives in temporary tables of this connection, which
        // take no lock on the real ones. Rolled back at the end: the plan changes nothing.
        await using var connection = await _source.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(IsolationLevel.RepeatableRead, ct);
        await using (var create = Pg.Command(connection, tx, """
            CREATE TEMP TABLE gone_manifests(repository_id bigint, digest text COLLATE "C", PRIMARY KEY (repository_id, digest)) ON COMMIT DROP;
            CREATE TEMP TABLE gone_links(repository_id bigint, digest text COLLATE "C", PRIMARY KEY (repository_id, digest)) ON COMMIT DROP;
            """))
            await create.ExecuteNonQueryAsync(ct);
        var repositories = await ListAsync<(long, RepositoryName)?>(Pg.Command(connection, tx,
                "SELECT id, name FROM repositories ORDER BY name"),
            r => RepositoryName.TryParse(r.GetString(1), out var name) ? (r.GetInt64(0), name) : null, ct);
        var plans = new List<RepositoryPlan>();
        foreach (var (id, name) in repositories.Select(r => r!.Value))
        {
            var (reachable, unreachable) = await MarkAsync(connection, tx, id,
                untaggedBefore is { } before ? Ms(before) : long.MinValue,
                deletedTags.TryGetValue(name, out var tags) ? tags : [], ct);
            if (unreachable.Count > 0)
                await ExecuteAsync(Pg.Command(connection, tx,
                    "INSERT INTO gone_manifests SELECT $1, d FROM unnest($2::text[]) AS d",
                    Pg.Int8(id), Pg.TextArray(unreachable.Select(d => d.ToString()).ToArray())), ct);
            var links = await DigestsAsync(Pg.Command(connection, tx, """
                INSERT INTO gone_links
                SELECT repository_id, digest FROM repository_blobs rb
                WHERE repository_id = $1 AND linked_at < $2
                  AND NOT EXISTS (SELECT 1 FROM manifest_references mr
                                  WHERE mr.target = rb.digest AND mr.repository_id = $1 AND mr.kind = 0
                                    AND NOT EXISTS (SELECT 1 FROM gone_manifests g
                                                    WHERE g.repository_id = $1 AND g.digest = mr.manifest))
                RETURNING digest
                """, Pg.Int8(id), Pg.Int8(Ms(linkedBefore))), ct);
            links.Sort((a, b) => string.CompareOrdinal(a.ToString(), b.ToString()));
            plans.Add(new RepositoryPlan(name, reachable, unreachable, links));
        }
        var blobs = await ListAsync(Pg.Command(connection, tx, """
            SELECT b.digest, b.size FROM blobs b
            WHERE NOT EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = b.digest
                                AND NOT EXISTS (SELECT 1 FROM gone_links g WHERE g.repository_id = rb.repository_id AND g.digest = rb.digest))
              AND NOT EXISTS (SELECT 1 FROM manifests m WHERE m.digest = b.digest
                                AND NOT EXISTS (SELECT 1 FROM gone_manifests g WHERE g.repository_id = m.repository_id AND g.digest = m.digest))
              AND NOT EXISTS (SELECT 1 FROM manifest_references mr WHERE mr.target = b.digest
                                AND NOT EXISTS (SELECT 1 FROM gone_manifests g WHERE g.repository_id = mr.repository_id AND g.digest = mr.manifest))
            ORDER BY b.digest
            """), r => (BlobRecord?)new BlobRecord(Digest.Parse(r.GetString(0)), r.GetInt64(1)), ct);
        await tx.RollbackAsync(ct);
        return new GcPlan(plans, blobs.Select(b => b!.Value).ToList());
    }

    /// <summary>Links of repository <c>$1</c> older than <c>$2</c> that no manifest of the repository references.</summary>
    private const string UnreferencedLinks = """
        FROM repository_blobs rb
        WHERE rb.repository_id = (SELECT id FROM repositories WHERE name = $1) AND rb.linked_at < $2
          AND NOT EXISTS (SELECT 1 FROM manifest_references mr
                          WHERE mr.target = rb.digest AND mr.repository_id = rb.repository_id AND mr.kind = 0)
        """;

    public async ValueTask<IReadOnlyList<Digest>> SweepLinksAsync(RepositoryName repository, DateTimeOffset linkedBefore,
        bool dryRun, CancellationToken ct)
    {
        // A read first: most runs find nothing in most repositories, and then write nothing for them.
        var found = await ReadAsync((c, t) => DigestsAsync(Command(c, "SELECT rb.digest " + UnreferencedLinks + " ORDER BY rb.digest",
            Pg.Text(repository.Value), Pg.Int8(Ms(linkedBefore))), t), ct);
        if (dryRun || found.Count == 0) return found;
        var deleted = await WriteAsync((db, t) => DigestsAsync(db.Command(
            "DELETE " + UnreferencedLinks + " RETURNING rb.digest", Pg.Text(repository.Value), Pg.Int8(Ms(linkedBefore))), t), ct);
        deleted.Sort((a, b) => string.CompareOrdinal(a.ToString(), b.ToString()));
        return deleted;
    }

    private const string Unreferenced = """
        NOT EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = b.digest)
        AND NOT EXISTS (SELECT 1 FROM manifests m WHERE m.digest = b.digest)
        AND NOT EXISTS (SELECT 1 FROM manifest_references mr WHERE mr.target = b.digest)
        """;

    public ValueTask<IReadOnlyList<BlobRecord>> ListUnreferencedBlobsAsync(CancellationToken ct) =>
        ReadAsync<IReadOnlyList<BlobRecord>>(async (c, t) =>
            (await ListAsync(Command(c, $"SELECT b.digest, b.size FROM blobs b WHERE {Unreferenced} ORDER BY b.digest"),
                r => (BlobRecord?)new BlobRecord(Digest.Parse(r.GetString(0)), r.GetInt64(1)), t)).Select(b => b!.Value).ToList(),
            ct);

    public ValueTask<IReadOnlyList<BlobRecord>> TombstoneBlobsAsync(IReadOnlyCollection<Digest> candidates,
        DateTimeOffset now, CancellationToken ct) =>
        candidates.Count == 0 ? ValueTask.FromResult<IReadOnlyList<BlobRecord>>([]) : WriteAsync<IReadOnlyList<BlobRecord>>(async (db, t) =>
        {
            var tombstoned = await ListAsync(db.Command($"""
                WITH gone AS (DELETE FROM blobs AS b WHERE b.digest = ANY ($1::text[]) AND {Unreferenced}
                              RETURNING b.digest, b.size)
                INSERT INTO gc_tombstones(digest, size, at) SELECT digest, size, $2 FROM gone
                ON CONFLICT (digest) DO UPDATE SET size = excluded.size, at = excluded.at
                RETURNING digest, size
                """, Pg.TextArray(candidates.Select(d => d.ToString()).ToArray()), Pg.Int8(Ms(now))),
                r => (BlobRecord?)new BlobRecord(Digest.Parse(r.GetString(0)), r.GetInt64(1)), t);
            return tombstoned.Select(b => b!.Value).ToList();
        }, ct);

    public ValueTask<IReadOnlyList<Digest>> ListTombstonesAsync(CancellationToken ct) =>
        ReadAsync<IReadOnlyList<Digest>>(async (c, t) => await DigestsAsync(Command(c, "SELECT digest FROM gc_tombstones"), t), ct);

    public async ValueTask ClearTombstonesAsync(IReadOnlyCollection<Digest> digests, CancellationToken ct)
    {
        if (digests.Count == 0) return;
        await WriteAsync((db, t) => ExecuteAsync(db.Command("DELETE FROM gc_tombstones WHERE digest = ANY ($1::text[])",
            Pg.TextArray(digests.Select(d => d.ToString()).ToArray())), t), ct);
    }

    public ValueTask<IReadOnlySet<Digest>> ListRecordedDigestsAsync(CancellationToken ct) =>
        ReadAsync<IReadOnlySet<Digest>>(async (c, t) =>
            new HashSet<Digest>(await DigestsAsync(Command(c, "SELECT digest FROM blobs"), t)), ct);

    public ValueTask<long> StartGcRunAsync(bool dryRun, string trigger, DateTimeOffset now, CancellationToken ct) =>
        WriteAsync(async (db, t) => (await ScalarAsync<long>(db.Command("""
            INSERT INTO gc_runs(dry_run, trigger, started_at, status) VALUES ($1, $2, $3, 'running') RETURNING id
            """, Pg.Bool(dryRun), Pg.Text(trigger), Pg.Int8(Ms(now))), t))!.Value, ct);

    public async ValueTask FinishGcRunAsync(long id, string status, string reportJson, DateTimeOffset now,
        CancellationToken ct) =>
        await WriteAsync((db, t) => ExecuteAsync(db.Command(
            "UPDATE gc_runs SET status = $2, report = $3, finished_at = $4 WHERE id = $1",
            Pg.Int8(id), Pg.Text(status), Pg.Text(reportJson), Pg.Int8(Ms(now))), t), ct);

    private const string RunColumns = "id, dry_run, trigger, started_at, finished_at, status, report";

    private static GcRunRecord ReadRun(NpgsqlDataReader reader) => new(reader.GetInt64(0), reader.GetBoolean(1),
        reader.GetString(2), DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(3)),
        reader.IsDBNull(4) ? null : DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(4)), reader.GetString(5),
        reader.IsDBNull(6) ? null : reader.GetString(6));

    public ValueTask<GcRunRecord?> GetGcRunAsync(long id, CancellationToken ct) =>
        ReadAsync(async (c, t) => (await ListAsync(Command(c, $"SELECT {RunColumns} FROM gc_runs WHERE id = $1", Pg.Int8(id)),
            ReadRun, t)).FirstOrDefault(), ct);

    public ValueTask<IReadOnlyList<GcRunRecord>> ListGcRunsAsync(int limit, CancellationToken ct) =>
        ReadAsync<IReadOnlyList<GcRunRecord>>(async (c, t) => await ListAsync(Command(c,
            $"SELECT {RunColumns} FROM gc_runs ORDER BY id DESC LIMIT $1", Pg.Int4(limit)), ReadRun, t), ct);

    public async ValueTask PruneGcRunsAsync(int keep, CancellationToken ct) =>
        await WriteAsync((db, t) => ExecuteAsync(db.Command("""
            DELETE FROM gc_runs WHERE status <> 'running'
              AND id < (SELECT id FROM gc_runs ORDER BY id DESC LIMIT 1 OFFSET $1)
            """, Pg.Int4(Math.Max(keep - 1, 0))), t), ct);

    public ValueTask<int> InterruptGcRunsAsync(DateTimeOffset now, CancellationToken ct) =>
        WriteAsync((db, t) => ExecuteAsync(db.Command(
            "UPDATE gc_runs SET status = 'interrupted', finished_at = $1 WHERE status = 'running'", Pg.Int8(Ms(now))), t), ct);
}
