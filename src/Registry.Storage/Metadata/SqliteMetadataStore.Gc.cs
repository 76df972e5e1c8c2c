using Microsoft.Data.Sqlite;
using Registry.Storage.Model;

namespace Registry.Storage.Metadata;

/// <summary>Garbage collection's queries and deletions (see docs/storage.md, "Garbage collection").</summary>
public sealed partial class SqliteMetadataStore : IGarbageCollectionStore
{
    /// <summary>
    /// The manifests of repository <c>$repo</c> that are not reachable: roots are the tagged ones (minus the tags in
    /// the JSON array <c>$ignored</c>) and those pushed at or after <c>$young</c>; reachability follows index children,
    /// subjects, and referrers. Each recursive step is one row of <c>reach</c> joined by index (CROSS JOIN keeps the
    /// planner from scanning the repository's manifests once per reached row).
    /// </summary>
    private const string UnreachableManifests = """
        WITH RECURSIVE reach(digest) AS (
            SELECT digest FROM tags WHERE repository_id = $repo AND name NOT IN (SELECT value FROM json_each($ignored))
            UNION SELECT digest FROM manifests WHERE repository_id = $repo AND pushed_at >= $young
            UNION SELECT mr.target FROM reach CROSS JOIN manifest_references mr
                WHERE mr.repository_id = $repo AND mr.manifest = reach.digest AND mr.kind = 1
            UNION SELECT m.subject FROM reach CROSS JOIN manifests m
                WHERE m.repository_id = $repo AND m.digest = reach.digest AND m.subject IS NOT NULL
            UNION SELECT m.digest FROM reach CROSS JOIN manifests m
                WHERE m.repository_id = $repo AND m.subject = reach.digest)
        SELECT m.digest, m.digest IN (SELECT digest FROM reach) FROM manifests m WHERE m.repository_id = $repo
        """;

    public ValueTask<IReadOnlyList<RepositoryName>> ListAllRepositoriesAsync(CancellationToken ct)
    {
        using var lease = Read();
        var command = lease.Command("SELECT name FROM repositories ORDER BY name");
        var names = new List<RepositoryName>();
        using var reader = command.ExecuteReader();
        while (reader.Read())
            if (RepositoryName.TryParse(reader.GetString(0), out var name)) names.Add(name);
        return ValueTask.FromResult<IReadOnlyList<RepositoryName>>(names);
    }

    public ValueTask<IReadOnlyList<TagRecord>> ListTagRecordsAsync(RepositoryName repository, CancellationToken ct)
    {
        using var lease = Read();
        var command = lease.Command("""
            SELECT t.name, t.digest, t.updated_at FROM tags t JOIN repositories r ON r.id = t.repository_id
            WHERE r.name = $name ORDER BY t.name
            """);
        command.Parameters.AddWithValue("$name", repository.Value);
        var tags = new List<TagRecord>();
        using var reader = command.ExecuteReader();
        while (reader.Read())
            if (Tag.TryParse(reader.GetString(0), out var tag))
                tags.Add(new TagRecord(tag, Digest.Parse(reader.GetString(1)),
                    DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(2))));
        return ValueTask.FromResult<IReadOnlyList<TagRecord>>(tags);
    }

    private static (int Reachable, List<Digest> Unreachable) Mark(Prepared db, long repositoryId, long young,
        IReadOnlyCollection<Tag> ignoredTags)
    {
        var command = db.Command(UnreachableManifests);
        command.Parameters.AddWithValue("$repo", repositoryId);
        command.Parameters.AddWithValue("$young", young);
        command.Parameters.AddWithValue("$ignored", JsonArray(ignoredTags.Select(t => t.Value)));
        var reachable = 0;
        var unreachable = new List<Digest>();
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            if (reader.GetInt64(1) != 0) reachable++;
            else unreachable.Add(Digest.Parse(reader.GetString(0)));
        }
        return (reachable, unreachable);
    }

    private static string JsonArray(IEnumerable<string> values)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var writer = new System.Text.Json.Utf8JsonWriter(buffer))
        {
            writer.WriteStartArray();
            foreach (var value in values) writer.WriteStringValue(value);
            writer.WriteEndArray();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    public ValueTask<(int Reachable, IReadOnlyList<Digest> Unreachable)> MarkManifestsAsync(RepositoryName repository,
        DateTimeOffset? untaggedBefore, IReadOnlyCollection<Tag> ignoredTags, CancellationToken ct)
    {
        using var lease = Read();
        if (RepositoryId(lease.Db, repository) is not { } id)
            return ValueTask.FromResult<(int, IReadOnlyList<Digest>)>((0, []));
        var (reachable, unreachable) = Mark(lease.Db, id, untaggedBefore is { } before ? Ms(before) : long.MinValue,
            ignoredTags);
        return ValueTask.FromResult<(int, IReadOnlyList<Digest>)>((reachable, unreachable));
    }

    public ValueTask<IReadOnlyList<Digest>> SweepManifestsAsync(RepositoryName repository, DateTimeOffset untaggedBefore,
        IReadOnlyCollection<Digest> candidates, DateTimeOffset now, CancellationToken ct) =>
        // Nothing to decide: no write transaction (and no fsync) at all.
        candidates.Count == 0 ? ValueTask.FromResult<IReadOnlyList<Digest>>([]) : WriteAsync<IReadOnlyList<Digest>>(db =>
        {
            if (RepositoryId(db, repository) is not { } repositoryId) return [];
            // Decided again inside the deleting transaction: a push committed since the mark may have made one reachable.
            var wanted = candidates.ToHashSet();
            var (_, unreachable) = Mark(db, repositoryId, Ms(untaggedBefore), []);
            var deleted = unreachable.Where(wanted.Contains).ToList();
            foreach (var digest in deleted)
            {
                foreach (var sql in new[]
                         {
                             "DELETE FROM manifest_references WHERE repository_id = $repo AND manifest = $digest",
                             "DELETE FROM manifests WHERE repository_id = $repo AND digest = $digest",
                         })
                {
                    var command = db.Command(sql);
                    command.Parameters.AddWithValue("$repo", repositoryId);
                    command.Parameters.AddWithValue("$digest", digest.ToString());
                    command.ExecuteNonQuery();
                }
                AddEvent(db, Ms(now), EventActions.ManifestDelete, repository, digest);
            }
            return deleted;
        }, ct, tagsOf: repository);

    public ValueTask<GcPlan> PlanAsync(IReadOnlyDictionary<RepositoryName, IReadOnlyCollection<Tag>> deletedTags,
        DateTimeOffset? untaggedBefore, DateTimeOffset linkedBefore, CancellationToken ct)
    {
        // One read transaction (one snapshot) on a connection of its own; the plan lives in its temp tables, which a
        // reader may write without taking the database's write lock.
        using var connection = Open();
        using var tx = connection.BeginTransaction(deferred: true);
        Execute(connection, """
            CREATE TEMP TABLE gone_manifests(repository_id INTEGER, digest TEXT, PRIMARY KEY (repository_id, digest));
            CREATE TEMP TABLE gone_links(repository_id INTEGER, digest TEXT, PRIMARY KEY (repository_id, digest));
            """, tx);
        var db = new Prepared(connection) { Transaction = tx };
        var plans = new List<RepositoryPlan>();
        var repositories = new List<(long Id, RepositoryName Name)>();
        using (var names = Command(connection, "SELECT id, name FROM repositories ORDER BY name", tx))
        using (var reader = names.ExecuteReader())
            while (reader.Read())
                if (RepositoryName.TryParse(reader.GetString(1), out var name)) repositories.Add((reader.GetInt64(0), name));
        foreach (var (id, name) in repositories)
        {
            var (reachable, unreachable) = Mark(db, id, untaggedBefore is { } before ? Ms(before) : long.MinValue,
                deletedTags.TryGetValue(name, out var tags) ? tags : []);
            foreach (var digest in unreachable)
            {
                using var insert = Command(connection, "INSERT INTO gone_manifests VALUES ($repo, $digest)", tx);
                insert.Parameters.AddWithValue("$repo", id);
                insert.Parameters.AddWithValue("$digest", digest.ToString());
                insert.ExecuteNonQuery();
            }
            using var links = Command(connection, """
                INSERT INTO gone_links
                SELECT repository_id, digest FROM repository_blobs rb
                WHERE repository_id = $repo AND linked_at < $before
                  AND NOT EXISTS (SELECT 1 FROM manifest_references mr INDEXED BY manifest_references_by_target
                                  WHERE mr.target = rb.digest AND mr.repository_id = $repo AND mr.kind = 0
                                    AND NOT EXISTS (SELECT 1 FROM gone_manifests g
                                                    WHERE g.repository_id = $repo AND g.digest = mr.manifest))
                RETURNING digest
                """, tx);
            links.Parameters.AddWithValue("$repo", id);
            links.Parameters.AddWithValue("$before", Ms(linkedBefore));
            plans.Add(new RepositoryPlan(name, reachable, unreachable, ReadDigests(links)));
        }
        var blobs = new List<BlobRecord>();
        using (var select = Command(connection, """
            SELECT b.digest, b.size FROM blobs b
            WHERE NOT EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = b.digest
                                AND NOT EXISTS (SELECT 1 FROM gone_links g WHERE g.repository_id = rb.repository_id AND g.digest = rb.digest))
              AND NOT EXISTS (SELECT 1 FROM manifests m WHERE m.digest = b.digest
                                AND NOT EXISTS (SELECT 1 FROM gone_manifests g WHERE g.repository_id = m.repository_id AND g.digest = m.digest))
              AND NOT EXISTS (SELECT 1 FROM manifest_references mr WHERE mr.target = b.digest
                                AND NOT EXISTS (SELECT 1 FROM gone_manifests g WHERE g.repository_id = mr.repository_id AND g.digest = mr.manifest))
            ORDER BY b.digest
            """, tx))
        using (var reader = select.ExecuteReader())
            while (reader.Read()) blobs.Add(new BlobRecord(Digest.Parse(reader.GetString(0)), reader.GetInt64(1)));
        tx.Rollback();
        return ValueTask.FromResult(new GcPlan(plans, blobs));
    }

    public async ValueTask<IReadOnlyList<Digest>> SweepLinksAsync(RepositoryName repository, DateTimeOffset linkedBefore,
        bool dryRun, CancellationToken ct)
    {
        // One index lookup by (target, repository) per link; left to itself the planner walks the repository's
        // references by primary key for every link (quadratic in the repository's size).
        const string unreferenced = """
            FROM repository_blobs
            WHERE repository_id = (SELECT id FROM repositories WHERE name = $name) AND linked_at < $before
              AND NOT EXISTS (SELECT 1 FROM manifest_references mr INDEXED BY manifest_references_by_target
                              WHERE mr.target = repository_blobs.digest AND mr.repository_id = repository_blobs.repository_id
                                AND mr.kind = 0)
            """;
        // A read first: most runs find nothing in most repositories, and then take no write lock for them.
        using (var lease = Read())
        {
            var select = lease.Command("SELECT digest " + unreferenced);
            select.Parameters.AddWithValue("$name", repository.Value);
            select.Parameters.AddWithValue("$before", Ms(linkedBefore));
            var found = ReadDigests(select);
            if (dryRun || found.Count == 0) return found;
        }
        return await WriteAsync<IReadOnlyList<Digest>>(db =>
        {
            var delete = db.Command("DELETE " + unreferenced + " RETURNING digest");
            delete.Parameters.AddWithValue("$name", repository.Value);
            delete.Parameters.AddWithValue("$before", Ms(linkedBefore));
            return ReadDigests(delete);
        }, ct);
    }

    private static List<Digest> ReadDigests(SqliteCommand command)
    {
        var digests = new List<Digest>();
        using var reader = command.ExecuteReader();
        while (reader.Read()) digests.Add(Digest.Parse(reader.GetString(0)));
        return digests;
    }

    private const string Unreferenced = """
        NOT EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = b.digest)
        AND NOT EXISTS (SELECT 1 FROM manifests m WHERE m.digest = b.digest)
        AND NOT EXISTS (SELECT 1 FROM manifest_references mr WHERE mr.target = b.digest)
        """;

    public ValueTask<IReadOnlyList<BlobRecord>> ListUnreferencedBlobsAsync(CancellationToken ct)
    {
        using var lease = Read();
        var command = lease.Command($"SELECT b.digest, b.size FROM blobs b WHERE {Unreferenced} ORDER BY b.digest");
        var blobs = new List<BlobRecord>();
        using var reader = command.ExecuteReader();
        while (reader.Read()) blobs.Add(new BlobRecord(Digest.Parse(reader.GetString(0)), reader.GetInt64(1)));
        return ValueTask.FromResult<IReadOnlyList<BlobRecord>>(blobs);
    }

    public ValueTask<IReadOnlyList<BlobRecord>> TombstoneBlobsAsync(IReadOnlyCollection<Digest> candidates,
        DateTimeOffset now, CancellationToken ct) =>
        WriteAsync<IReadOnlyList<BlobRecord>>(db =>
        {
            var tombstoned = new List<BlobRecord>();
            foreach (var digest in candidates)
            {
                var delete = db.Command($"DELETE FROM blobs AS b WHERE b.digest = $digest AND {Unreferenced} RETURNING size");
                delete.Parameters.AddWithValue("$digest", digest.ToString());
                if (delete.ExecuteScalar() is not long size) continue;
                var insert = db.Command("""
                    INSERT INTO gc_tombstones(digest, size, at) VALUES ($digest, $size, $now)
                    ON CONFLICT(digest) DO UPDATE SET size = excluded.size, at = excluded.at
                    """);
                insert.Parameters.AddWithValue("$digest", digest.ToString());
                insert.Parameters.AddWithValue("$size", size);
                insert.Parameters.AddWithValue("$now", Ms(now));
                insert.ExecuteNonQuery();
                tombstoned.Add(new BlobRecord(digest, size));
            }
            return tombstoned;
        }, ct);

    public ValueTask<IReadOnlyList<Digest>> ListTombstonesAsync(CancellationToken ct)
    {
        using var lease = Read();
        return ValueTask.FromResult<IReadOnlyList<Digest>>(ReadDigests(lease.Command("SELECT digest FROM gc_tombstones")));
    }

    public async ValueTask ClearTombstonesAsync(IReadOnlyCollection<Digest> digests, CancellationToken ct)
    {
        if (digests.Count == 0) return;
        await WriteAsync(db =>
        {
            foreach (var digest in digests)
            {
                var command = db.Command("DELETE FROM gc_tombstones WHERE digest = $digest");
                command.Parameters.AddWithValue("$digest", digest.ToString());
                command.ExecuteNonQuery();
            }
            return 0;
        }, ct);
    }

    public ValueTask<IReadOnlySet<Digest>> ListRecordedDigestsAsync(CancellationToken ct)
    {
        using var lease = Read();
        var set = new HashSet<Digest>(ReadDigests(lease.Command("SELECT digest FROM blobs")));
        return ValueTask.FromResult<IReadOnlySet<Digest>>(set);
    }

    public ValueTask<long> StartGcRunAsync(bool dryRun, string trigger, DateTimeOffset now, CancellationToken ct) =>
        WriteAsync(db =>
        {
            var command = db.Command("""
                INSERT INTO gc_runs(dry_run, trigger, started_at, status) VALUES ($dry, $trigger, $now, 'running')
                RETURNING id
                """);
            command.Parameters.AddWithValue("$dry", dryRun ? 1 : 0);
            command.Parameters.AddWithValue("$trigger", trigger);
            command.Parameters.AddWithValue("$now", Ms(now));
            return (long)command.ExecuteScalar()!;
        }, ct);

    public async ValueTask FinishGcRunAsync(long id, string status, string reportJson, DateTimeOffset now,
        CancellationToken ct) =>
        await WriteAsync(db =>
        {
            var command = db.Command("UPDATE gc_runs SET status = $status, report = $report, finished_at = $now WHERE id = $id");
            command.Parameters.AddWithValue("$id", id);
            command.Parameters.AddWithValue("$status", status);
            command.Parameters.AddWithValue("$report", reportJson);
            command.Parameters.AddWithValue("$now", Ms(now));
            return command.ExecuteNonQuery();
        }, ct);

    private const string RunColumns = "id, dry_run, trigger, started_at, finished_at, status, report";

    private static GcRunRecord ReadRun(SqliteDataReader reader) => new(reader.GetInt64(0), reader.GetInt64(1) != 0,
        reader.GetString(2), DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(3)),
        reader.IsDBNull(4) ? null : DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(4)), reader.GetString(5),
        reader.IsDBNull(6) ? null : reader.GetString(6));

    public ValueTask<GcRunRecord?> GetGcRunAsync(long id, CancellationToken ct)
    {
        using var lease = Read();
        var command = lease.Command($"SELECT {RunColumns} FROM gc_runs WHERE id = $id");
        command.Parameters.AddWithValue("$id", id);
        using var reader = command.ExecuteReader();
        return ValueTask.FromResult(reader.Read() ? ReadRun(reader) : null);
    }

    public ValueTask<IReadOnlyList<GcRunRecord>> ListGcRunsAsync(int limit, CancellationToken ct)
    {
        using var lease = Read();
        var command = lease.Command($"SELECT {RunColumns} FROM gc_runs ORDER BY id DESC LIMIT $limit");
        command.Parameters.AddWithValue("$limit", limit);
        var runs = new List<GcRunRecord>();
        using var reader = command.ExecuteReader();
        while (reader.Read()) runs.Add(ReadRun(reader));
        return ValueTask.FromResult<IReadOnlyList<GcRunRecord>>(runs);
    }

    public async ValueTask PruneGcRunsAsync(int keep, CancellationToken ct) =>
        await WriteAsync(db =>
        {
            var command = db.Command("""
                DELETE FROM gc_runs WHERE status <> 'running'
                  AND id < (SELECT id FROM gc_runs ORDER BY id DESC LIMIT 1 OFFSET $keep - 1)
                """);
            command.Parameters.AddWithValue("$keep", keep);
            return command.ExecuteNonQuery();
        }, ct);

    public ValueTask<int> InterruptGcRunsAsync(DateTimeOffset now, CancellationToken ct) =>
        WriteAsync(db =>
        {
            var command = db.Command("UPDATE gc_runs SET status = 'interrupted', finished_at = $now WHERE status = 'running'");
            command.Parameters.AddWithValue("$now", Ms(now));
            return command.ExecuteNonQuery();
        }, ct);
}
