using System.Data;
using System.Runtime.CompilerServices;
using Npgsql;
using Registry.Storage.Model;

namespace Registry.Storage.Metadata.Postgres;

/// <summary>
/// The metadata store that several replicas share: one PostgreSQL database (docs/storage.md, "PostgreSQL"). Each
/// public method is one transaction and keeps no state in the process, so any replica may serve any request.
/// <para>
/// Writes run SERIALIZABLE and are retried on serialization failures and deadlocks: every decision a write takes
/// (a reference check before a manifest is stored, garbage collection's "unreferenced" before it deletes) holds against
/// all concurrent writes, as it did under SQLite's single writer. Transactions that append events take the outbox
/// lock (a transaction-level advisory lock) after their other work and hold it until their commit, so event ids
/// commit in increasing order and a reader at "id &gt; cursor" never skips one.
/// </para>
/// </summary>
public sealed partial class PostgresMetadataStore : IMetadataStore, IDeliveryCursors, IDistributionImportStore, ILeaseStore,
    IDisposable, IAsyncDisposable
{
    /// <summary>Transaction advisory lock key that orders the outbox ("outbox" in ASCII).</summary>
    internal const long OutboxLock = 0x6f75_7462_6f78;

    /// <summary>The LISTEN/NOTIFY channel that carries "something changed" between replicas.</summary>
    internal const string Channel = "registry_changes";

    private const int MaxAttempts = 30;

    private readonly NpgsqlDataSource _source;
    private readonly ChangeListener _listener;

    private PostgresMetadataStore(NpgsqlDataSource source)
    {
        _source = source;
        _listener = new ChangeListener(source);
    }

    /// <summary>
    /// Opens the store: connects, applies the migrations the database lacks (under the migration lock, so replicas may
    /// start together) and starts listening for changes committed by other replicas.
    /// </summary>
    public static async Task<PostgresMetadataStore> OpenAsync(string connectionString, CancellationToken ct = default)
    {
        var source = CreateDataSource(connectionString);
        try
        {
            await PostgresSchema.MigrateAsync(source, ct);
        }
        catch
        {
            await source.DisposeAsync();
            throw;
        }
        var store = new PostgresMetadataStore(source);
        try
        {
            await store._listener.StartAsync(ct);
        }
        catch
        {
            await store.DisposeAsync();
            throw;
        }
        return store;
    }

    /// <summary>
    /// The slim builder: only the type handlers named here are rooted (no JSON, ranges or reflection-based mapping),
    /// which keeps Native AOT publishing free of trim warnings. Arrays carry the batch parameters (<c>text[]</c>).
    /// </summary>
    internal static NpgsqlDataSource CreateDataSource(string connectionString)
    {
        var builder = new NpgsqlSlimDataSourceBuilder(connectionString);
        builder.EnableArrays();
        // Hot statements are parsed once per physical connection, unless the operator chose otherwise.
        if (builder.ConnectionStringBuilder.MaxAutoPrepare == 0) builder.ConnectionStringBuilder.MaxAutoPrepare = 64;
        if (string.IsNullOrEmpty(builder.ConnectionStringBuilder.ApplicationName))
            builder.ConnectionStringBuilder.ApplicationName = "registry";
        return builder.Build();
    }

    /// <summary>The schema version this code writes.</summary>
    public static int SchemaVersion => PostgresSchema.Version;

    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();

    private int _disposed;

    /// <summary>Idempotent: the host disposes the one store once per contract it was registered as.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        await _listener.DisposeAsync();
        await _source.DisposeAsync();
    }

    private static long Ms(DateTimeOffset time) => time.ToUnixTimeMilliseconds();

    private static bool Retryable(PostgresException e) =>
        e.SqlState is PostgresErrorCodes.SerializationFailure or PostgresErrorCodes.DeadlockDetected
            or PostgresErrorCodes.UniqueViolation;

    /// <summary>
    /// Runs <paramref name="work"/> in one SERIALIZABLE transaction, retried from the start when PostgreSQL refuses it
    /// for a concurrent write (work MUST only touch the database). <paramref name="isChange"/> false (bookkeeping:
    /// delivery cursors, leases) sends no change notification. <paramref name="isolation"/> READ COMMITTED is for one
    /// statement on one row by its key, which no other row's writer can make wrong: under SERIALIZABLE, the upload
    /// rows every push inserts and deletes share index pages (or a table lock, when the planner scans the small
    /// table), so concurrent pushes failed each other's transactions; on a busy 2-core machine a closing PUT ran out
    /// of retries and answered 500 (found by the crash harness's scale-out mode).
    /// </summary>
    private async ValueTask<T> WriteAsync<T>(Func<PgWrite, CancellationToken, Task<T>> work, CancellationToken ct,
        bool isChange = true, IsolationLevel isolation = IsolationLevel.Serializable)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await using var connection = await _source.OpenConnectionAsync(ct);
                await using var tx = await connection.BeginTransactionAsync(isolation, ct);
                var write = new PgWrite(connection, tx);
                var result = await work(write, ct);
                if (write.RolledBack)
                {
                    await tx.RollbackAsync(ct);
                    return result;
                }
                await write.FinishAsync(isChange, ct);
                await tx.CommitAsync(ct);
                if (isChange) _listener.Wake();
                return result;
            }
            catch (PostgresException e) when (Retryable(e) && attempt < MaxAttempts)
            {
                // Back off a little, more each time, so that colliding writers spread out.
                await Task.Delay(Random.Shared.Next(0, Math.Min(attempt, 10) * 2 + 1), ct);
            }
        }
    }

    private async ValueTask<T> ReadAsync<T>(Func<NpgsqlConnection, CancellationToken, Task<T>> work, CancellationToken ct)
    {
        await using var connection = await _source.OpenConnectionAsync(ct);
        return await work(connection, ct);
    }

    private static async Task<T?> ScalarAsync<T>(NpgsqlCommand command, CancellationToken ct) where T : struct
    {
        await using (command)
            return await command.ExecuteScalarAsync(ct) is T value ? value : null;
    }

    private static async Task<string?> StringAsync(NpgsqlCommand command, CancellationToken ct)
    {
        await using (command)
            return await command.ExecuteScalarAsync(ct) as string;
    }

    private static async Task<int> ExecuteAsync(NpgsqlCommand command, CancellationToken ct)
    {
        await using (command)
            return await command.ExecuteNonQueryAsync(ct);
    }

    private static async Task<List<T>> ListAsync<T>(NpgsqlCommand command, Func<NpgsqlDataReader, T?> row, CancellationToken ct)
    {
        var items = new List<T>();
        await using (command)
        await using (var reader = await command.ExecuteReaderAsync(ct))
            while (await reader.ReadAsync(ct))
                if (row(reader) is { } item) items.Add(item);
        return items;
    }

    private static async Task<List<Digest>> DigestsAsync(NpgsqlCommand command, CancellationToken ct) =>
        (await ListAsync<Digest?>(command, r => Digest.Parse(r.GetString(0)), ct)).Select(d => d!.Value).ToList();

    private static NpgsqlCommand Command(NpgsqlConnection connection, string sql, params NpgsqlParameter[] parameters) =>
        Pg.Command(connection, null, sql, parameters);

    private static Task<long?> RepositoryIdAsync(PgWrite db, RepositoryName repository, CancellationToken ct) =>
        ScalarAsync<long>(db.Command("SELECT id FROM repositories WHERE name = $1", Pg.Text(repository.Value)), ct);

    private static async Task<long> EnsureRepositoryAsync(PgWrite db, RepositoryName repository, long now, CancellationToken ct)
    {
        if (await RepositoryIdAsync(db, repository, ct) is { } id) return id;
        var created = await ScalarAsync<long>(db.Command(
            "INSERT INTO repositories(name, created_at) VALUES ($1, $2) RETURNING id",
            Pg.Text(repository.Value), Pg.Int8(now)), ct);
        db.AddEvent(now, EventActions.RepositoryCreate, repository);
        return created!.Value;
    }

    private static Task<int> EnsureBlobAsync(PgWrite db, Digest digest, long size, long now, CancellationToken ct) =>
        ExecuteAsync(db.Command(
            "INSERT INTO blobs(digest, size, created_at) VALUES ($1, $2, $3) ON CONFLICT (digest) DO NOTHING",
            Pg.Text(digest.ToString()), Pg.Int8(size), Pg.Int8(now)), ct);

    public ValueTask<bool> RepositoryExistsAsync(RepositoryName repository, CancellationToken ct) =>
        ReadAsync(async (c, t) => await ScalarAsync<int>(Command(c, "SELECT 1 FROM repositories WHERE name = $1",
            Pg.Text(repository.Value)), t) is not null, ct);

    public ValueTask<long?> GetLinkedBlobSizeAsync(RepositoryName repository, Digest digest, CancellationToken ct) =>
        ReadAsync((c, t) => ScalarAsync<long>(Command(c, """
            SELECT b.size FROM repository_blobs rb
            JOIN repositories r ON r.id = rb.repository_id
            JOIN blobs b ON b.digest = rb.digest
            WHERE r.name = $1 AND rb.digest = $2
            """, Pg.Text(repository.Value), Pg.Text(digest.ToString())), t), ct);

    public ValueTask<long?> GetBlobSizeAsync(Digest digest, CancellationToken ct) =>
        ReadAsync((c, t) => ScalarAsync<long>(Command(c, "SELECT size FROM blobs WHERE digest = $1",
            Pg.Text(digest.ToString())), t), ct);

    public ValueTask<long?> FindLinkedBlobSizeAsync(Digest digest, Func<RepositoryName, bool> visible, CancellationToken ct) =>
        ReadAsync(async (c, t) =>
        {
            await using var command = Command(c, """
                SELECT r.name, b.size FROM repository_blobs rb
                JOIN repositories r ON r.id = rb.repository_id
                JOIN blobs b ON b.digest = rb.digest
                WHERE rb.digest = $1 ORDER BY r.name
                """, Pg.Text(digest.ToString()));
            await using var reader = await command.ExecuteReaderAsync(t);
            while (await reader.ReadAsync(t))
                if (RepositoryName.TryParse(reader.GetString(0), out var name) && visible(name))
                    return (long?)reader.GetInt64(1);
            return null;
        }, ct);

    public async ValueTask LinkBlobAsync(RepositoryName repository, Digest digest, long size, DateTimeOffset now,
        CancellationToken ct) =>
        await WriteAsync(async (db, t) =>
        {
            var ms = Ms(now);
            await LinkAsync(db, await EnsureRepositoryAsync(db, repository, ms, t), digest, size, ms, t);
            return true;
        }, ct);

    private static async Task LinkAsync(PgWrite db, long repositoryId, Digest digest, long size, long now, CancellationToken ct)
    {
        await EnsureBlobAsync(db, digest, size, now, ct);
        // Linking again renews the link's grace period (garbage collection keeps recent links).
        await ExecuteAsync(db.Command("""
            INSERT INTO repository_blobs(repository_id, digest, linked_at) VALUES ($1, $2, $3)
            ON CONFLICT (repository_id, digest) DO UPDATE SET linked_at = greatest(repository_blobs.linked_at, excluded.linked_at)
            """, Pg.Int8(repositoryId), Pg.Text(digest.ToString()), Pg.Int8(now)), ct);
    }

    public ValueTask<bool> UnlinkBlobAsync(RepositoryName repository, Digest digest, DateTimeOffset now, CancellationToken ct) =>
        WriteAsync(async (db, t) =>
        {
            var deleted = await ExecuteAsync(db.Command("""
                DELETE FROM repository_blobs
                WHERE repository_id = (SELECT id FROM repositories WHERE name = $1) AND digest = $2
                """, Pg.Text(repository.Value), Pg.Text(digest.ToString())), t);
            if (deleted == 0) return false;
            db.AddEvent(Ms(now), EventActions.BlobDelete, repository, digest);
            return true;
        }, ct);

    public ValueTask<ManifestRecord?> GetManifestAsync(RepositoryName repository, Reference reference, CancellationToken ct) =>
        ReadAsync(async (c, t) =>
        {
            await using var command = Command(c, reference.IsDigest
                ? $"""
                   SELECT {ManifestRows.Columns} FROM manifests m JOIN repositories r ON r.id = m.repository_id
                   WHERE r.name = $1 AND m.digest = $2
                   """
                : $"""
                   SELECT {ManifestRows.Columns} FROM tags t
                   JOIN repositories r ON r.id = t.repository_id
                   JOIN manifests m ON m.repository_id = t.repository_id AND m.digest = t.digest
                   WHERE r.name = $1 AND t.name = $2
                   """, Pg.Text(repository.Value), Pg.Text(reference.ToString()));
            await using var reader = await command.ExecuteReaderAsync(t);
            return await reader.ReadAsync(t) ? ManifestRows.Read(reader) : null;
        }, ct);

    /// <summary>The first of <paramref name="references"/> (in their order) the repository does not hold; one round trip.</summary>
    private static async Task<Digest?> FirstMissingAsync(NpgsqlConnection connection, NpgsqlTransaction? tx,
        long? repositoryId, IReadOnlyList<ManifestReference> references, CancellationToken ct)
    {
        if (references.Count == 0) return null;
        if (repositoryId is null) return references[0].Target;
        var missing = await ScalarAsync<long>(Pg.Command(connection, tx, """
            SELECT r.ord FROM unnest($2::text[], $3::integer[]) WITH ORDINALITY AS r(target, kind, ord)
            WHERE NOT CASE r.kind
                WHEN 0 THEN EXISTS (SELECT 1 FROM repository_blobs WHERE repository_id = $1 AND digest = r.target)
                ELSE EXISTS (SELECT 1 FROM manifests WHERE repository_id = $1 AND digest = r.target) END
            ORDER BY r.ord LIMIT 1
            """, Pg.Int8(repositoryId), Pg.TextArray(references.Select(r => r.Target.ToString()).ToArray()),
            Pg.Int4Array(references.Select(r => (int)r.Kind).ToArray())), ct);
        return missing is { } ordinal ? references[(int)ordinal - 1].Target : null;
    }

    public ValueTask<Digest?> FindMissingReferenceAsync(RepositoryName repository,
        IReadOnlyList<ManifestReference> references, CancellationToken ct) =>
        ReadAsync(async (c, t) =>
        {
            var id = await ScalarAsync<long>(Command(c, "SELECT id FROM repositories WHERE name = $1",
                Pg.Text(repository.Value)), t);
            return await FirstMissingAsync(c, null, id, references, t);
        }, ct);

    public ValueTask<PutManifestResult> PutManifestAsync(RepositoryName repository, ManifestRecord manifest,
        IReadOnlyList<ManifestReference> references, IReadOnlyList<Tag> tags, CancellationToken ct,
        IReadOnlyList<ProvidedBlob>? provided = null) =>
        WriteAsync(async (db, t) =>
        {
            var now = Ms(manifest.PushedAt);
            // Created inside this transaction: a refused manifest rolls the repository (and its event) back too.
            var repositoryId = await EnsureRepositoryAsync(db, repository, now, t);
            foreach (var blob in provided ?? []) await LinkAsync(db, repositoryId, blob.Digest, blob.Size, now, t);
            if (await FirstMissingAsync(db.Connection, null, repositoryId, references, t) is { } missing)
            {
                db.Rollback();
                return new PutManifestResult(PutManifestStatus.MissingReference, missing);
            }

            await InsertManifestAsync(db, repositoryId, manifest, references, now, t);
            db.AddEvent(now, EventActions.ManifestPush, repository, manifest.Digest,
                tags.Count > 0 ? tags[0].Value : null, manifest.MediaType, manifest.Size);
            foreach (var tag in tags)
            {
                var before = await StringAsync(db.Command("SELECT digest FROM tags WHERE repository_id = $1 AND name = $2",
                    Pg.Int8(repositoryId), Pg.Text(tag.Value)), t);
                if (before != manifest.Digest.ToString())
                    db.AddEvent(now, before is null ? EventActions.TagCreate : EventActions.TagUpdate,
                        repository, manifest.Digest, tag.Value, manifest.MediaType, manifest.Size);
                await ExecuteAsync(db.Command("""
                    INSERT INTO tags(repository_id, name, digest, updated_at) VALUES ($1, $2, $3, $4)
                    ON CONFLICT (repository_id, name) DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at
                    """, Pg.Int8(repositoryId), Pg.Text(tag.Value), Pg.Text(manifest.Digest.ToString()), Pg.Int8(now)), t);
            }
            return new PutManifestResult(PutManifestStatus.Stored);
        }, ct);

    /// <summary>
    /// Records the manifest's content and its row with its references (the bytes MUST already be published); false
    /// when the repository already held it.
    /// </summary>
    private static async Task<bool> InsertManifestAsync(PgWrite db, long repositoryId, ManifestRecord manifest,
        IReadOnlyList<ManifestReference> references, long now, CancellationToken ct)
    {
        await EnsureBlobAsync(db, manifest.Digest, manifest.Size, now, ct);
        var inserted = await ExecuteAsync(db.Command("""
            INSERT INTO manifests(repository_id, digest, media_type, size, artifact_type, subject, annotations, pushed_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
            ON CONFLICT DO NOTHING
            """, Pg.Int8(repositoryId), Pg.Text(manifest.Digest.ToString()), Pg.Text(manifest.MediaType),
            Pg.Int8(manifest.Size), Pg.Text(manifest.ArtifactType), Pg.Text(manifest.Subject?.ToString()),
            Pg.Text(manifest.AnnotationsJson), Pg.Int8(Ms(manifest.PushedAt))), ct);
        if (inserted == 0) return false;
        if (references.Count > 0)
            await ExecuteAsync(db.Command("""
                INSERT INTO manifest_references(repository_id, manifest, target, kind)
                SELECT $1, $2, r.target, r.kind FROM unnest($3::text[], $4::integer[]) AS r(target, kind)
                ON CONFLICT DO NOTHING
                """, Pg.Int8(repositoryId), Pg.Text(manifest.Digest.ToString()),
                Pg.TextArray(references.Select(r => r.Target.ToString()).ToArray()),
                Pg.Int4Array(references.Select(r => (int)r.Kind).ToArray())), ct);
        return true;
    }

    public ValueTask<bool> DeleteManifestAsync(RepositoryName repository, Digest digest, DateTimeOffset now,
        CancellationToken ct) =>
        WriteAsync(async (db, t) =>
        {
            if (await RepositoryIdAsync(db, repository, t) is not { } repositoryId) return false;
            var tags = await ListAsync(db.Command(
                "DELETE FROM tags WHERE repository_id = $1 AND digest = $2 RETURNING name",
                Pg.Int8(repositoryId), Pg.Text(digest.ToString())), r => r.GetString(0), t);
            tags.Sort(StringComparer.Ordinal);
            await ExecuteAsync(db.Command("DELETE FROM manifest_references WHERE repository_id = $1 AND manifest = $2",
                Pg.Int8(repositoryId), Pg.Text(digest.ToString())), t);
            var deleted = await ExecuteAsync(db.Command("DELETE FROM manifests WHERE repository_id = $1 AND digest = $2",
                Pg.Int8(repositoryId), Pg.Text(digest.ToString())), t);
            if (deleted == 0)
            {
                db.Rollback();
                return false;
            }
            foreach (var tag in tags) db.AddEvent(Ms(now), EventActions.TagDelete, repository, digest, tag);
            db.AddEvent(Ms(now), EventActions.ManifestDelete, repository, digest);
            return true;
        }, ct);

    public ValueTask<bool> DeleteTagAsync(RepositoryName repository, Tag tag, DateTimeOffset now, CancellationToken ct) =>
        WriteAsync(async (db, t) =>
        {
            var digest = await StringAsync(db.Command("""
                DELETE FROM tags WHERE repository_id = (SELECT id FROM repositories WHERE name = $1) AND name = $2
                RETURNING digest
                """, Pg.Text(repository.Value), Pg.Text(tag.Value)), t);
            if (digest is null) return false;
            db.AddEvent(Ms(now), EventActions.TagDelete, repository, Digest.Parse(digest), tag.Value);
            return true;
        }, ct);

    public ValueTask<IReadOnlyList<RegistryEvent>> ReadEventsAsync(long afterId, int limit, CancellationToken ct) =>
        ReadAsync<IReadOnlyList<RegistryEvent>>(async (c, t) => await ListAsync(Command(c, """
            SELECT id, at, action, repository, digest, tag, media_type, size FROM events
            WHERE id > $1 ORDER BY id LIMIT $2
            """, Pg.Int8(afterId), Pg.Int4(limit)), reader => new RegistryEvent(reader.GetInt64(0),
            DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(1)), reader.GetString(2), reader.GetString(3),
            reader.IsDBNull(4) ? null : reader.GetString(4), reader.IsDBNull(5) ? null : reader.GetString(5),
            reader.IsDBNull(6) ? null : reader.GetString(6), reader.IsDBNull(7) ? null : reader.GetInt64(7)), t), ct);

    public ValueTask<long> LatestEventIdAsync(CancellationToken ct) =>
        ReadAsync(async (c, t) => await ScalarAsync<long>(Command(c, "SELECT coalesce(max(id), 0) FROM events"), t) ?? 0, ct);

    /// <summary>Completes at the next change committed by this process or, through LISTEN/NOTIFY, by any other.</summary>
    public Task WaitForChangeAsync(CancellationToken ct) => _listener.WaitAsync(ct);

    public ValueTask<int> PruneEventsAsync(DateTimeOffset before, CancellationToken ct) =>
        WriteAsync((db, t) => ExecuteAsync(db.Command("DELETE FROM events WHERE at < $1", Pg.Int8(Ms(before))), t), ct);

    private static readonly Page<string> NoNames = new([], false);

    private static async Task<Page<string>> ReadNamesAsync(NpgsqlCommand command, int limit, CancellationToken ct)
    {
        var names = await ListAsync(command, r => r.GetString(0), ct);
        var more = names.Count > limit;
        if (more) names.RemoveAt(names.Count - 1);
        return new Page<string>(names, more);
    }

    /// <summary>
    /// Read from the database every time: a per-process cache (as SQLite's) would go stale when another replica
    /// writes. The primary key (repository, name COLLATE "C") serves the page in order.
    /// </summary>
    public ValueTask<Page<string>> ListTagsAsync(RepositoryName repository, int limit, string? last, CancellationToken ct) =>
        limit == 0 ? ValueTask.FromResult(NoNames) : ReadAsync((c, t) => ReadNamesAsync(Command(c, """
            SELECT t.name FROM tags t JOIN repositories r ON r.id = t.repository_id
            WHERE r.name = $1 AND t.name > $2 ORDER BY t.name LIMIT $3
            """, Pg.Text(repository.Value), Pg.Text(last ?? ""), Pg.Int4(limit + 1)), limit, t), ct);

    public ValueTask<Page<string>> ListRepositoriesAsync(int limit, string? last, CancellationToken ct,
        Func<RepositoryName, bool>? visible = null)
    {
        if (limit == 0) return ValueTask.FromResult(NoNames);
        if (visible is null)
            return ReadAsync((c, t) => ReadNamesAsync(Command(c,
                "SELECT name FROM repositories WHERE name > $1 ORDER BY name LIMIT $2",
                Pg.Text(last ?? ""), Pg.Int4(limit + 1)), limit, t), ct);

        // Filtered: walk the names in order in batches until the page and one more visible name are found.
        return ReadAsync(async (c, t) =>
        {
            var names = new List<string>();
            var after = last ?? "";
            while (true)
            {
                t.ThrowIfCancellationRequested();
                var batch = await ListAsync(Command(c,
                    "SELECT name FROM repositories WHERE name > $1 ORDER BY name LIMIT 1000", Pg.Text(after)),
                    r => r.GetString(0), t);
                foreach (var name in batch)
                {
                    after = name;
                    if (!RepositoryName.TryParse(name, out var parsed) || !visible(parsed)) continue;
                    if (names.Count == limit) return new Page<string>(names, true);
                    names.Add(name);
                }
                if (batch.Count < 1000) return new Page<string>(names, false);
            }
        }, ct);
    }

    public ValueTask<Page<ManifestRecord>> ListReferrersAsync(RepositoryName repository, Digest subject,
        string? artifactType, int limit, string? last, CancellationToken ct) =>
        limit == 0 ? ValueTask.FromResult(new Page<ManifestRecord>([], false)) : ReadAsync(async (c, t) =>
        {
            var items = await ListAsync(Command(c, $"""
                SELECT {ManifestRows.Columns} FROM manifests m JOIN repositories r ON r.id = m.repository_id
                WHERE r.name = $1 AND m.subject = $2 AND m.digest > $3
                  AND ($4::text IS NULL OR m.artifact_type = $4)
                ORDER BY m.digest LIMIT $5
                """, Pg.Text(repository.Value), Pg.Text(subject.ToString()), Pg.Text(last ?? ""), Pg.Text(artifactType),
                Pg.Int4(limit + 1)), ManifestRows.Read, t);
            var more = items.Count > limit;
            if (more) items.RemoveAt(items.Count - 1);
            return new Page<ManifestRecord>(items, more);
        }, ct);

    public async ValueTask CreateUploadAsync(UploadSession session, CancellationToken ct) =>
        await WriteAsync((db, t) => ExecuteAsync(db.Command(
            "INSERT INTO uploads(id, repository, started_at, client, owner) VALUES ($1, $2, $3, $4, $5)",
            Pg.Text(session.Id.Value), Pg.Text(session.Repository.Value), Pg.Int8(Ms(session.StartedAt)),
            Pg.Text(session.Client), Pg.Text(session.Owner)), t), ct, isolation: IsolationLevel.ReadCommitted);

    public ValueTask<UploadSession?> GetUploadAsync(UploadId id, CancellationToken ct) =>
        ReadAsync(async (c, t) =>
        {
            await using var command = Command(c, "SELECT repository, started_at, client, owner FROM uploads WHERE id = $1",
                Pg.Text(id.Value));
            await using var reader = await command.ExecuteReaderAsync(t);
            if (!await reader.ReadAsync(t) || !RepositoryName.TryParse(reader.GetString(0), out var repository))
                return null;
            return new UploadSession(id, repository, DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(1)),
                reader.IsDBNull(2) ? null : reader.GetString(2), reader.IsDBNull(3) ? null : reader.GetString(3));
        }, ct);

    public async ValueTask DeleteUploadAsync(UploadId id, CancellationToken ct) =>
        await WriteAsync((db, t) => ExecuteAsync(db.Command("DELETE FROM uploads WHERE id = $1", Pg.Text(id.Value)), t), ct,
            isolation: IsolationLevel.ReadCommitted);

    public ValueTask<int> CountUploadsAsync(CancellationToken ct) =>
        ReadAsync(async (c, t) => (int)(await ScalarAsync<long>(Command(c, "SELECT count(*) FROM uploads"), t) ?? 0), ct);

    public ValueTask<int> CountUploadsByClientAsync(string client, CancellationToken ct) =>
        ReadAsync(async (c, t) => (int)(await ScalarAsync<long>(Command(c, "SELECT count(*) FROM uploads WHERE client = $1",
            Pg.Text(client)), t) ?? 0), ct);

    public ValueTask<IReadOnlyList<UploadId>> ListUploadsStartedBeforeAsync(DateTimeOffset cutoff, CancellationToken ct) =>
        ReadAsync<IReadOnlyList<UploadId>>(async (c, t) =>
        {
            var ids = await ListAsync<UploadId?>(Command(c, "SELECT id FROM uploads WHERE started_at < $1",
                Pg.Int8(Ms(cutoff))), r => UploadId.TryParse(r.GetString(0), out var id) ? id : null, t);
            return ids.Select(i => i!.Value).ToList();
        }, ct);

    public ValueTask<long?> GetCursorAsync(string name, CancellationToken ct) =>
        ReadAsync((c, t) => ScalarAsync<long>(Command(c, "SELECT last_id FROM webhook_cursors WHERE name = $1",
            Pg.Text(name)), t), ct);

    public async ValueTask SetCursorAsync(string name, long lastEventId, CancellationToken ct) =>
        await WriteAsync((db, t) => ExecuteAsync(db.Command("""
            INSERT INTO webhook_cursors(name, last_id) VALUES ($1, $2)
            ON CONFLICT (name) DO UPDATE SET last_id = excluded.last_id
            """, Pg.Text(name), Pg.Int8(lastEventId)), t), ct, isChange: false);

    public ValueTask<bool> IsRepositoryImportedAsync(RepositoryName repository, CancellationToken ct) =>
        ReadAsync(async (c, t) => await ScalarAsync<int>(Command(c, "SELECT 1 FROM distribution_imports WHERE repository = $1",
            Pg.Text(repository.Value)), t) is not null, ct);

    public ValueTask<bool> ImportRepositoryAsync(RepositoryImport import, string source, DateTimeOffset now,
        CancellationToken ct) =>
        WriteAsync(async (db, t) =>
        {
            var repository = import.Repository;
            if (await ScalarAsync<int>(db.Command("SELECT 1 FROM distribution_imports WHERE repository = $1",
                    Pg.Text(repository.Value)), t) is not null)
                return false;

            var ms = Ms(now);
            var repositoryId = await EnsureRepositoryAsync(db, repository, ms, t);
            foreach (var (digest, size) in import.Blobs)
            {
                await EnsureBlobAsync(db, digest, size, ms, t);
                await ExecuteAsync(db.Command("""
                    INSERT INTO repository_blobs(repository_id, digest, linked_at) VALUES ($1, $2, $3)
                    ON CONFLICT DO NOTHING
                    """, Pg.Int8(repositoryId), Pg.Text(digest.ToString()), Pg.Int8(ms)), t);
            }
            foreach (var (manifest, references) in import.Manifests)
            {
                if (!await InsertManifestAsync(db, repositoryId, manifest, references, ms, t)) continue;
                db.AddEvent(ms, EventActions.ManifestPush, repository, manifest.Digest, null, manifest.MediaType, manifest.Size);
            }
            foreach (var tag in import.Tags)
            {
                var inserted = await ExecuteAsync(db.Command("""
                    INSERT INTO tags(repository_id, name, digest, updated_at) VALUES ($1, $2, $3, $4)
                    ON CONFLICT (repository_id, name) DO NOTHING
                    """, Pg.Int8(repositoryId), Pg.Text(tag.Tag.Value), Pg.Text(tag.Manifest.ToString()),
                    Pg.Int8(Ms(tag.UpdatedAt))), t);
                if (inserted > 0) db.AddEvent(ms, EventActions.TagCreate, repository, tag.Manifest, tag.Tag.Value);
            }
            await ExecuteAsync(db.Command(
                "INSERT INTO distribution_imports(repository, source, imported_at) VALUES ($1, $2, $3)",
                Pg.Text(repository.Value), Pg.Text(source), Pg.Int8(ms)), t);
            return true;
        }, ct);

    public ValueTask<StoreStatistics> GetStatisticsAsync(CancellationToken ct) =>
        ReadAsync(async (c, t) =>
        {
            // One statement, so one snapshot: the counts agree with each other.
            await using var command = Command(c, """
                SELECT (SELECT count(*) FROM repositories), (SELECT count(*) FROM manifests), (SELECT count(*) FROM blobs),
                       (SELECT coalesce(sum(size), 0)::bigint FROM blobs), (SELECT count(*) FROM uploads)
                """);
            await using var reader = await command.ExecuteReaderAsync(t);
            await reader.ReadAsync(t);
            return new StoreStatistics(reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3),
                reader.GetInt64(4));
        }, ct);

    public async IAsyncEnumerable<(Digest Digest, long Size)> ListBlobsAsync([EnumeratorCancellation] CancellationToken ct)
    {
        await using var connection = await _source.OpenConnectionAsync(ct);
        await using var command = Command(connection, "SELECT digest, size FROM blobs ORDER BY digest");
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
            yield return (Digest.Parse(reader.GetString(0)), reader.GetInt64(1));
    }

    public async IAsyncEnumerable<(RepositoryName Repository, Digest Digest)> ListManifestsAsync(
        [EnumeratorCancellation] CancellationToken ct)
    {
        await using var connection = await _source.OpenConnectionAsync(ct);
        await using var command = Command(connection,
            "SELECT r.name, m.digest FROM manifests m JOIN repositories r ON r.id = m.repository_id ORDER BY r.name, m.digest");
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
            if (RepositoryName.TryParse(reader.GetString(0), out var name))
                yield return (name, Digest.Parse(reader.GetString(1)));
    }

    /// <summary>
    /// PostgreSQL enforces the foreign keys itself and checks its pages on read, so what is left to check is what the
    /// schema cannot say: names that are not valid repository names, and the schema version.
    /// </summary>
    public ValueTask<IReadOnlyList<string>> CheckIntegrityAsync(CancellationToken ct) =>
        ReadAsync<IReadOnlyList<string>>(async (c, t) =>
        {
            var problems = await ListAsync(Command(c, "SELECT name FROM repositories"),
                r => RepositoryName.TryParse(r.GetString(0), out _) ? null : $"invalid repository name '{r.GetString(0)}'", t);
            var version = await ScalarAsync<int>(Command(c, "SELECT max(version) FROM schema_version"), t);
            if (version != SchemaVersion) problems.Add($"schema version {version} where {SchemaVersion} is expected");
            return problems;
        }, ct);

    public ValueTask<bool> TryAcquireLeaseAsync(string name, string holder, TimeSpan ttl, CancellationToken ct) =>
        WriteAsync(async (db, t) => await StringAsync(db.Command("""
            INSERT INTO leases(name, holder, expires_at) VALUES ($1, $2, clock_timestamp() + $3 * interval '1 millisecond')
            ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
            WHERE leases.holder = excluded.holder OR leases.expires_at <= clock_timestamp()
            RETURNING holder
            """, Pg.Text(name), Pg.Text(holder), Pg.Int8((long)ttl.TotalMilliseconds)), t) is not null, ct, isChange: false);

    public async ValueTask ReleaseLeaseAsync(string name, string holder, CancellationToken ct) =>
        await WriteAsync((db, t) => ExecuteAsync(db.Command("DELETE FROM leases WHERE name = $1 AND holder = $2",
            Pg.Text(name), Pg.Text(holder)), t), ct, isChange: false);

    public ValueTask<string?> GetLeaseHolderAsync(string name, CancellationToken ct) =>
        ReadAsync((c, t) => StringAsync(Command(c,
            "SELECT holder FROM leases WHERE name = $1 AND expires_at > clock_timestamp()", Pg.Text(name)), t), ct);
}
