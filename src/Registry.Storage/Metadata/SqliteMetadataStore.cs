using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using Microsoft.Data.Sqlite;
using Registry.Storage.Durability;
using Registry.Storage.Model;

namespace Registry.Storage.Metadata;

/// <summary>
/// The embedded metadata store: one SQLite database in WAL mode. Each public method is one transaction, so a
/// process killed at any instant leaves either the whole change or none of it. Writes are serialised in-process
/// (SQLite has one writer anyway) so that they queue instead of spinning on SQLITE_BUSY, and concurrent writes are
/// committed in groups (see SqliteMetadataStore.GroupCommit.cs).
/// </summary>
public sealed partial class SqliteMetadataStore : IMetadataStore, IDeliveryCursors, IDistributionImportStore, IDisposable
{
    /// <summary>
    /// The schema as versions: migration i (1-based) brings a database from <c>PRAGMA user_version</c> i-1 to i, in
    /// one transaction with the version bump. Never edit a released step; add one. Version 1 is the schema from before
    /// versioning (user_version 0), written with IF NOT EXISTS so it also applies to such a database unchanged.
    /// </summary>
    internal static readonly string[] Migrations =
    [
        """
        CREATE TABLE IF NOT EXISTS repositories (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            created_at INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS blobs (
            digest TEXT PRIMARY KEY,
            size INTEGER NOT NULL,
            created_at INTEGER NOT NULL) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS repository_blobs (
            repository_id INTEGER NOT NULL REFERENCES repositories(id),
            digest TEXT NOT NULL REFERENCES blobs(digest),
            linked_at INTEGER NOT NULL,
            PRIMARY KEY (repository_id, digest)) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS repository_blobs_by_digest ON repository_blobs(digest);
        CREATE TABLE IF NOT EXISTS manifests (
            repository_id INTEGER NOT NULL REFERENCES repositories(id),
            digest TEXT NOT NULL REFERENCES blobs(digest),
            media_type TEXT NOT NULL,
            size INTEGER NOT NULL,
            artifact_type TEXT,
            subject TEXT,
            annotations TEXT,
            pushed_at INTEGER NOT NULL,
            PRIMARY KEY (repository_id, digest)) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS manifests_by_subject ON manifests(repository_id, subject, digest) WHERE subject IS NOT NULL;
        CREATE TABLE IF NOT EXISTS manifest_references (
            repository_id INTEGER NOT NULL,
            manifest TEXT NOT NULL,
            target TEXT NOT NULL,
            kind INTEGER NOT NULL,
            PRIMARY KEY (repository_id, manifest, target),
            FOREIGN KEY (repository_id, manifest) REFERENCES manifests(repository_id, digest) ON DELETE CASCADE) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS tags (
            repository_id INTEGER NOT NULL,
            name TEXT NOT NULL,
            digest TEXT NOT NULL,
            updated_at INTEGER NOT NULL,
            PRIMARY KEY (repository_id, name),
            FOREIGN KEY (repository_id, digest) REFERENCES manifests(repository_id, digest)) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS tags_by_digest ON tags(repository_id, digest);
        CREATE TABLE IF NOT EXISTS uploads (
            id TEXT PRIMARY KEY,
            repository TEXT NOT NULL,
            started_at INTEGER NOT NULL) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS uploads_by_start ON uploads(started_at);
        CREATE TABLE IF NOT EXISTS events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at INTEGER NOT NULL,
            action TEXT NOT NULL,
            repository TEXT NOT NULL,
            digest TEXT,
            tag TEXT,
            media_type TEXT,
            size INTEGER);
        CREATE INDEX IF NOT EXISTS events_by_time ON events(at);
        """,
        // 2: garbage collection. A tombstone names a blob whose row is gone and whose file is being deleted (a crash
        // leaves it for the next start to finish); gc_runs keeps every run's report.
        """
        CREATE TABLE gc_tombstones (
            digest TEXT PRIMARY KEY,
            size INTEGER NOT NULL,
            at INTEGER NOT NULL) WITHOUT ROWID;
        CREATE TABLE gc_runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            dry_run INTEGER NOT NULL,
            trigger TEXT NOT NULL,
            started_at INTEGER NOT NULL,
            finished_at INTEGER,
            status TEXT NOT NULL,
            report TEXT);
        CREATE INDEX manifests_by_digest ON manifests(digest);
        CREATE INDEX manifest_references_by_target ON manifest_references(target, repository_id);
        """,
        // 3: upload sessions know who opened them (client: the per-client cap; owner: only that identity may continue
        // a session), webhook delivery cursors live in the schema, registry:2 imports are recorded per repository.
        """
        ALTER TABLE uploads ADD COLUMN client TEXT;
        ALTER TABLE uploads ADD COLUMN owner TEXT;
        CREATE INDEX uploads_by_client ON uploads(client) WHERE client IS NOT NULL;
        CREATE TABLE IF NOT EXISTS webhook_cursors (
            name TEXT PRIMARY KEY,
            last_id INTEGER NOT NULL) WITHOUT ROWID;
        CREATE TABLE distribution_imports (
            repository TEXT PRIMARY KEY,
            source TEXT NOT NULL,
            imported_at INTEGER NOT NULL) WITHOUT ROWID;
        """,
        // 4: the content of small blobs and manifests (IInlineContent), so that publishing it shares the WAL flush of
        // the row that references it. A rowid table: rows of up to Registry:Storage:InlineBytes do not suit WITHOUT ROWID.
        """
        CREATE TABLE blob_content (
            digest TEXT PRIMARY KEY,
            written_at INTEGER NOT NULL,
            content BLOB NOT NULL);
        """,
    ];

    /// <summary>The schema version this code writes.</summary>
    public static int SchemaVersion => Migrations.Length;

    private readonly string _connectionString;
    private readonly ConcurrentBag<Prepared> _readers = new();
    private const int MaxIdleReaders = 32;
    /// <summary>The one connection writes use, only from the group commit loop.</summary>
    private Prepared? _writer;
    private readonly TagListCache _tagLists;
    private TaskCompletionSource _committed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    /// <summary>fsyncs the WAL after commits (grouped), when the store is durable against power loss.</summary>
    private readonly GroupSync? _walSync;

    /// <param name="databasePath">The database file; created with its schema when missing, migrated when older.</param>
    /// <param name="tagCacheCapacity">How many tag names (over all repositories) the tag list cache may hold.</param>
    /// <param name="durable">
    /// A write returns only once its commit is on disk (survives power loss): the WAL is fsynced after the commit,
    /// outside the write lock, so concurrent writers share one fsync. Without it a commit survives a killed process
    /// (the OS holds the WAL pages) but not a power loss.
    /// </param>
    public SqliteMetadataStore(string databasePath, int tagCacheCapacity = 100_000, bool durable = true)
    {
        _tagLists = new TagListCache(tagCacheCapacity);
        if (durable)
        {
            var wal = databasePath + "-wal";
            _walSync = new GroupSync(() => FileSync.SyncFile(wal));
        }
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = databasePath,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Cache = SqliteCacheMode.Private,
            Pooling = true,
            DefaultTimeout = 30,
        }.ToString();
        using var connection = Open();
        Execute(connection, "PRAGMA journal_mode=WAL;");
        Migrate(connection);
        if (durable)
        {
            // The database file and its WAL exist now: make their directory entries durable too.
            FileSync.SyncFolder(Path.GetDirectoryName(Path.GetFullPath(databasePath))!);
        }
    }

    /// <summary>Applies the migrations the database lacks, in order, each in one transaction with its version.</summary>
    private static void Migrate(SqliteConnection connection)
    {
        using var read = Command(connection, "PRAGMA user_version");
        var version = (int)(long)read.ExecuteScalar()!;
        if (version > Migrations.Length)
            throw new InvalidOperationException(
                $"the metadata database has schema version {version}, newer than this registry's {Migrations.Length}; " +
                "run the newer registry or restore a backup");
        for (var next = version; next < Migrations.Length; next++)
        {
            using var tx = connection.BeginTransaction(deferred: false);
            using (var step = Command(connection, Migrations[next], tx)) step.ExecuteNonQuery();
            // PRAGMA takes no parameters; the value is our own integer.
            using (var bump = Command(connection, $"PRAGMA user_version = {next + 1}", tx)) bump.ExecuteNonQuery();
            tx.Commit();
        }
    }

    public void Dispose()
    {
        StopPendingContent();
        StopGroupCommit();
        StopCheckpoints();
        _writer?.Connection.Dispose();
        while (_readers.TryTake(out var reader)) reader.Connection.Dispose();
        SqliteConnection.ClearAllPools();
    }

    private SqliteConnection Open()
    {
        var connection = new SqliteConnection(_connectionString);
        connection.Open();
        // NORMAL: a commit does not fsync the WAL itself; WriteAsync does (grouped) when the store is durable. SQLite
        // still fsyncs at checkpoints, so the database is never corrupt, whatever the setting.
        Execute(connection, "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=30000;");
        return connection;
    }

    /// <summary>A reader connection from the store's own pool (opened once, with its pragmas), returned on dispose.</summary>
    private ReaderLease Read() => new(this, _readers.TryTake(out var reader) ? reader : new Prepared(Open()));

    /// <summary>
    /// A connection with its prepared statements, so a hot statement is parsed once per connection: each pooled
    /// reader has one, and so has the writer.
    /// </summary>
    private sealed class Prepared(SqliteConnection connection)
    {
        private readonly Dictionary<string, SqliteCommand> _statements = new();

        public SqliteConnection Connection { get; } = connection;

        /// <summary>The writer's transaction while a write runs; every command it hands out joins it.</summary>
        public SqliteTransaction? Transaction { get; set; }

        /// <summary>The writer's: inline content waiting to be written (see SqliteMetadataStore.Content.cs).</summary>
        public ConcurrentDictionary<string, PendingContent>? Pending { get; init; }

        /// <summary>Pending content written by the group's transaction so far, dropped from the pending map once it commits.</summary>
        public List<KeyValuePair<string, PendingContent>> ContentWritten { get; } = [];

        /// <summary>Set by a write that keeps nothing of what it did (its changes are rolled back, alone).</summary>
        public bool Discarded { get; private set; }

        public void Discard() => Discarded = true;

        public void ResetDiscarded() => Discarded = false;

        public SqliteCommand Command(string sql)
        {
            if (!_statements.TryGetValue(sql, out var command))
            {
                command = Connection.CreateCommand();
                command.CommandText = sql;
                command.Prepare();
                _statements[sql] = command;
            }
            command.Parameters.Clear();
            command.Transaction = Transaction;
            return command;
        }
    }

    private readonly struct ReaderLease(SqliteMetadataStore store, Prepared reader) : IDisposable
    {
        public SqliteConnection Connection => reader.Connection;

        public Prepared Db => reader;

        /// <summary>A prepared command owned by the pool: set its parameters, execute, do not dispose it.</summary>
        public SqliteCommand Command(string sql) => reader.Command(sql);

        public void Dispose()
        {
            if (store._readers.Count < MaxIdleReaders) store._readers.Add(reader);
            else reader.Connection.Dispose();
        }
    }

    private static void Execute(SqliteConnection connection, string sql, SqliteTransaction? tx = null)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.Transaction = tx;
        command.ExecuteNonQuery();
    }

    private static SqliteCommand Command(SqliteConnection connection, string sql, SqliteTransaction? tx = null)
    {
        var command = connection.CreateCommand();
        command.CommandText = sql;
        command.Transaction = tx;
        return command;
    }

    private static long Ms(DateTimeOffset time) => time.ToUnixTimeMilliseconds();

    private static long? RepositoryId(Prepared db, RepositoryName repository)
    {
        var command = db.Command("SELECT id FROM repositories WHERE name = $name");
        command.Parameters.AddWithValue("$name", repository.Value);
        return command.ExecuteScalar() is long id ? id : null;
    }

    private static long EnsureRepository(Prepared db, RepositoryName repository, long now)
    {
        if (RepositoryId(db, repository) is { } id) return id;
        var command = db.Command("INSERT INTO repositories(name, created_at) VALUES ($name, $now) RETURNING id");
        command.Parameters.AddWithValue("$name", repository.Value);
        command.Parameters.AddWithValue("$now", now);
        var created = (long)command.ExecuteScalar()!;
        AddEvent(db, now, EventActions.RepositoryCreate, repository);
        return created;
    }

    /// <summary>Appends to the outbox inside the caller's transaction: the event exists if and only if the change does.</summary>
    private static void AddEvent(Prepared db, long now, string action,
        RepositoryName repository, Digest? digest = null, string? tag = null, string? mediaType = null, long? size = null)
    {
        var command = db.Command("""
            INSERT INTO events(at, action, repository, digest, tag, media_type, size)
            VALUES ($now, $action, $repo, $digest, $tag, $mediaType, $size)
            """);
        command.Parameters.AddWithValue("$now", now);
        command.Parameters.AddWithValue("$action", action);
        command.Parameters.AddWithValue("$repo", repository.Value);
        command.Parameters.AddWithValue("$digest", (object?)digest?.ToString() ?? DBNull.Value);
        command.Parameters.AddWithValue("$tag", (object?)tag ?? DBNull.Value);
        command.Parameters.AddWithValue("$mediaType", (object?)mediaType ?? DBNull.Value);
        command.Parameters.AddWithValue("$size", (object?)size ?? DBNull.Value);
        command.ExecuteNonQuery();
    }

    private static void EnsureBlob(Prepared db, Digest digest, long size, long now)
    {
        // Content kept inline and not written yet goes in first, in this write's own savepoint: the row that records
        // the blob never commits without it.
        WritePendingContent(db, digest.ToString());
        var command = db.Command("INSERT INTO blobs(digest, size, created_at) VALUES ($digest, $size, $now) ON CONFLICT(digest) DO NOTHING");
        command.Parameters.AddWithValue("$digest", digest.ToString());
        command.Parameters.AddWithValue("$size", size);
        command.Parameters.AddWithValue("$now", now);
        command.ExecuteNonQuery();
    }

    public ValueTask<bool> RepositoryExistsAsync(RepositoryName repository, CancellationToken ct)
    {
        using var lease = Read();
        var command = lease.Command("SELECT 1 FROM repositories WHERE name = $name");
        command.Parameters.AddWithValue("$name", repository.Value);
        return ValueTask.FromResult(command.ExecuteScalar() is not null);
    }

    public ValueTask<long?> GetLinkedBlobSizeAsync(RepositoryName repository, Digest digest, CancellationToken ct)
    {
        using var lease = Read();
        var command = lease.Command("""
            SELECT b.size FROM repository_blobs rb
            JOIN repositories r ON r.id = rb.repository_id
            JOIN blobs b ON b.digest = rb.digest
            WHERE r.name = $name AND rb.digest = $digest
            """);
        command.Parameters.AddWithValue("$name", repository.Value);
        command.Parameters.AddWithValue("$digest", digest.ToString());
        return ValueTask.FromResult(command.ExecuteScalar() is long size ? size : (long?)null);
    }

    public ValueTask<long?> GetBlobSizeAsync(Digest digest, CancellationToken ct)
    {
        using var lease = Read();
        var command = lease.Command("SELECT size FROM blobs WHERE digest = $digest");
        command.Parameters.AddWithValue("$digest", digest.ToString());
        return ValueTask.FromResult(command.ExecuteScalar() is long size ? size : (long?)null);
    }

    public ValueTask<long?> FindLinkedBlobSizeAsync(Digest digest, Func<RepositoryName, bool> visible, CancellationToken ct)
    {
        using var lease = Read();
        var command = lease.Command("""
            SELECT r.name, b.size FROM repository_blobs rb
            JOIN repositories r ON r.id = rb.repository_id
            JOIN blobs b ON b.digest = rb.digest
            WHERE rb.digest = $digest ORDER BY r.name
            """);
        command.Parameters.AddWithValue("$digest", digest.ToString());
        using var reader = command.ExecuteReader();
        while (reader.Read())
            if (RepositoryName.TryParse(reader.GetString(0), out var name) && visible(name))
                return ValueTask.FromResult<long?>(reader.GetInt64(1));
        return ValueTask.FromResult<long?>(null);
    }

    public ValueTask LinkBlobAsync(RepositoryName repository, Digest digest, long size, DateTimeOffset now, CancellationToken ct) =>
        new(WriteAsync(db =>
        {
            var ms = Ms(now);
            Link(db, EnsureRepository(db, repository, ms), digest, size, ms);
            return true;
        }, ct).AsTask());

    private static void Link(Prepared db, long repositoryId, Digest digest, long size, long now)
    {
        EnsureBlob(db, digest, size, now);
        // Linking again renews the link's grace period (garbage collection keeps recent links).
        var command = db.Command("""
            INSERT INTO repository_blobs(repository_id, digest, linked_at) VALUES ($repo, $digest, $now)
            ON CONFLICT DO UPDATE SET linked_at = max(linked_at, excluded.linked_at)
            """);
        command.Parameters.AddWithValue("$repo", repositoryId);
        command.Parameters.AddWithValue("$digest", digest.ToString());
        command.Parameters.AddWithValue("$now", now);
        command.ExecuteNonQuery();
    }

    public ValueTask<bool> UnlinkBlobAsync(RepositoryName repository, Digest digest, DateTimeOffset now, CancellationToken ct) =>
        WriteAsync(db =>
        {
            var command = db.Command("""
                DELETE FROM repository_blobs
                WHERE repository_id = (SELECT id FROM repositories WHERE name = $name) AND digest = $digest
                """);
            command.Parameters.AddWithValue("$name", repository.Value);
            command.Parameters.AddWithValue("$digest", digest.ToString());
            if (command.ExecuteNonQuery() == 0) return false;
            AddEvent(db, Ms(now), EventActions.BlobDelete, repository, digest);
            return true;
        }, ct);

    public ValueTask<ManifestRecord?> GetManifestAsync(RepositoryName repository, Reference reference, CancellationToken ct)
    {
        using var lease = Read();
        var command = lease.Command(reference.IsDigest
            ? $"""
               SELECT {ManifestRows.Columns} FROM manifests m JOIN repositories r ON r.id = m.repository_id
               WHERE r.name = $name AND m.digest = $ref
               """
            : $"""
               SELECT {ManifestRows.Columns} FROM tags t
               JOIN repositories r ON r.id = t.repository_id
               JOIN manifests m ON m.repository_id = t.repository_id AND m.digest = t.digest
               WHERE r.name = $name AND t.name = $ref
               """);
        command.Parameters.AddWithValue("$name", repository.Value);
        command.Parameters.AddWithValue("$ref", reference.ToString());
        using var reader = command.ExecuteReader();
        return ValueTask.FromResult(reader.Read() ? ManifestRows.Read(reader) : null);
    }

    private static Digest? FirstMissing(Prepared db, long? repositoryId,
        IReadOnlyList<ManifestReference> references)
    {
        foreach (var reference in references)
        {
            if (repositoryId is null) return reference.Target;
            var check = db.Command(reference.Kind == ReferenceKind.Blob
                ? "SELECT 1 FROM repository_blobs WHERE repository_id = $repo AND digest = $digest"
                : "SELECT 1 FROM manifests WHERE repository_id = $repo AND digest = $digest");
            check.Parameters.AddWithValue("$repo", repositoryId);
            check.Parameters.AddWithValue("$digest", reference.Target.ToString());
            if (check.ExecuteScalar() is null) return reference.Target;
        }
        return null;
    }

    public ValueTask<Digest?> FindMissingReferenceAsync(RepositoryName repository,
        IReadOnlyList<ManifestReference> references, CancellationToken ct)
    {
        using var lease = Read();
        return ValueTask.FromResult(FirstMissing(lease.Db, RepositoryId(lease.Db, repository), references));
    }

    public ValueTask<PutManifestResult> PutManifestAsync(RepositoryName repository, ManifestRecord manifest,
        IReadOnlyList<ManifestReference> references, IReadOnlyList<Tag> tags, CancellationToken ct,
        IReadOnlyList<ProvidedBlob>? provided = null) =>
        WriteAsync(db =>
        {
            var now = Ms(manifest.PushedAt);
            // Created inside this transaction: a refused manifest rolls the repository (and its event) back too.
            var repositoryId = EnsureRepository(db, repository, now);
            foreach (var blob in provided ?? []) Link(db, repositoryId, blob.Digest, blob.Size, now);
            if (FirstMissing(db, repositoryId, references) is { } missing)
            {
                db.Discard();
                return new PutManifestResult(PutManifestStatus.MissingReference, missing);
            }

            InsertManifest(db, repositoryId, manifest, references, now);

            AddEvent(db, now, EventActions.ManifestPush, repository, manifest.Digest,
                tags.Count > 0 ? tags[0].Value : null, manifest.MediaType, manifest.Size);
            foreach (var tag in tags)
            {
                var previous = db.Command("SELECT digest FROM tags WHERE repository_id = $repo AND name = $name");
                {
                    previous.Parameters.AddWithValue("$repo", repositoryId);
                    previous.Parameters.AddWithValue("$name", tag.Value);
                    var before = previous.ExecuteScalar() as string;
                    if (before != manifest.Digest.ToString())
                        AddEvent(db, now, before is null ? EventActions.TagCreate : EventActions.TagUpdate,
                            repository, manifest.Digest, tag.Value, manifest.MediaType, manifest.Size);
                }
                var upsert = db.Command("""
                    INSERT INTO tags(repository_id, name, digest, updated_at) VALUES ($repo, $name, $digest, $now)
                    ON CONFLICT(repository_id, name) DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at
                    """);
                upsert.Parameters.AddWithValue("$repo", repositoryId);
                upsert.Parameters.AddWithValue("$name", tag.Value);
                upsert.Parameters.AddWithValue("$digest", manifest.Digest.ToString());
                upsert.Parameters.AddWithValue("$now", now);
                upsert.ExecuteNonQuery();
            }
            return new PutManifestResult(PutManifestStatus.Stored);
        }, ct, tagsOf: repository);

    /// <summary>
    /// Records the manifest's content and its row with its references (the bytes MUST already be published); false
    /// when the repository already held it.
    /// </summary>
    private static bool InsertManifest(Prepared db, long repositoryId, ManifestRecord manifest,
        IReadOnlyList<ManifestReference> references, long now)
    {
        EnsureBlob(db, manifest.Digest, manifest.Size, now);
        var insert = db.Command("""
            INSERT INTO manifests(repository_id, digest, media_type, size, artifact_type, subject, annotations, pushed_at)
            VALUES ($repo, $digest, $mediaType, $size, $artifactType, $subject, $annotations, $pushed)
            ON CONFLICT DO NOTHING
            """);
        insert.Parameters.AddWithValue("$repo", repositoryId);
        insert.Parameters.AddWithValue("$digest", manifest.Digest.ToString());
        insert.Parameters.AddWithValue("$mediaType", manifest.MediaType);
        insert.Parameters.AddWithValue("$size", manifest.Size);
        insert.Parameters.AddWithValue("$artifactType", (object?)manifest.ArtifactType ?? DBNull.Value);
        insert.Parameters.AddWithValue("$subject", (object?)manifest.Subject?.ToString() ?? DBNull.Value);
        insert.Parameters.AddWithValue("$annotations", (object?)manifest.AnnotationsJson ?? DBNull.Value);
        insert.Parameters.AddWithValue("$pushed", Ms(manifest.PushedAt));
        if (insert.ExecuteNonQuery() == 0) return false;
        foreach (var reference in references)
        {
            var link = db.Command("""
                INSERT INTO manifest_references(repository_id, manifest, target, kind)
                VALUES ($repo, $manifest, $target, $kind) ON CONFLICT DO NOTHING
                """);
            link.Parameters.AddWithValue("$repo", repositoryId);
            link.Parameters.AddWithValue("$manifest", manifest.Digest.ToString());
            link.Parameters.AddWithValue("$target", reference.Target.ToString());
            link.Parameters.AddWithValue("$kind", (int)reference.Kind);
            link.ExecuteNonQuery();
        }
        return true;
    }

    public ValueTask<bool> DeleteManifestAsync(RepositoryName repository, Digest digest, DateTimeOffset now,
        CancellationToken ct) =>
        WriteAsync(db =>
        {
            if (RepositoryId(db, repository) is not { } repositoryId) return false;
            var tags = new List<string>();
            var select = db.Command("SELECT name FROM tags WHERE repository_id = $repo AND digest = $digest ORDER BY name");
            {
                select.Parameters.AddWithValue("$repo", repositoryId);
                select.Parameters.AddWithValue("$digest", digest.ToString());
                using var reader = select.ExecuteReader();
                while (reader.Read()) tags.Add(reader.GetString(0));
            }
            foreach (var sql in new[]
                     {
                         "DELETE FROM tags WHERE repository_id = $repo AND digest = $digest",
                         "DELETE FROM manifest_references WHERE repository_id = $repo AND manifest = $digest",
                     })
            {
                var command = db.Command(sql);
                command.Parameters.AddWithValue("$repo", repositoryId);
                command.Parameters.AddWithValue("$digest", digest.ToString());
                command.ExecuteNonQuery();
            }
            var delete = db.Command("DELETE FROM manifests WHERE repository_id = $repo AND digest = $digest");
            delete.Parameters.AddWithValue("$repo", repositoryId);
            delete.Parameters.AddWithValue("$digest", digest.ToString());
            if (delete.ExecuteNonQuery() == 0) return false;
            foreach (var tag in tags) AddEvent(db, Ms(now), EventActions.TagDelete, repository, digest, tag);
            AddEvent(db, Ms(now), EventActions.ManifestDelete, repository, digest);
            return true;
        }, ct, tagsOf: repository);

    public ValueTask<bool> DeleteTagAsync(RepositoryName repository, Tag tag, DateTimeOffset now, CancellationToken ct) =>
        WriteAsync(db =>
        {
            var command = db.Command("""
                DELETE FROM tags WHERE repository_id = (SELECT id FROM repositories WHERE name = $name) AND name = $tag
                RETURNING digest
                """);
            command.Parameters.AddWithValue("$name", repository.Value);
            command.Parameters.AddWithValue("$tag", tag.Value);
            if (command.ExecuteScalar() is not string digest) return false;
            AddEvent(db, Ms(now), EventActions.TagDelete, repository, Digest.Parse(digest), tag.Value);
            return true;
        }, ct, tagsOf: repository);

    public async ValueTask<IReadOnlyList<RegistryEvent>> ReadEventsAsync(long afterId, int limit, CancellationToken ct)
    {
        using var lease = Read();
        var command = lease.Command("""
            SELECT id, at, action, repository, digest, tag, media_type, size FROM events
            WHERE id > $after ORDER BY id LIMIT $limit
            """);
        command.Parameters.AddWithValue("$after", afterId);
        command.Parameters.AddWithValue("$limit", limit);
        var events = new List<RegistryEvent>();
        using var reader = await command.ExecuteReaderAsync(ct);
        while (reader.Read())
            events.Add(new RegistryEvent(reader.GetInt64(0), DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(1)),
                reader.GetString(2), reader.GetString(3), reader.IsDBNull(4) ? null : reader.GetString(4),
                reader.IsDBNull(5) ? null : reader.GetString(5), reader.IsDBNull(6) ? null : reader.GetString(6),
                reader.IsDBNull(7) ? null : reader.GetInt64(7)));
        return events;
    }

    public ValueTask<long> LatestEventIdAsync(CancellationToken ct)
    {
        using var lease = Read();
        var command = lease.Command("SELECT coalesce(max(id), 0) FROM events");
        return ValueTask.FromResult((long)command.ExecuteScalar()!);
    }

    public Task WaitForChangeAsync(CancellationToken ct) => Volatile.Read(ref _committed).Task.WaitAsync(ct);

    public ValueTask<int> PruneEventsAsync(DateTimeOffset before, CancellationToken ct) =>
        WriteAsync(db =>
        {
            var command = db.Command("DELETE FROM events WHERE at < $before");
            command.Parameters.AddWithValue("$before", Ms(before));
            return command.ExecuteNonQuery();
        }, ct);

    private static readonly Page<string> NoNames = new([], false);

    private static Page<string> ReadNames(SqliteCommand command, int limit)
    {
        var names = new List<string>(Math.Min(limit, 1024));
        using var reader = command.ExecuteReader();
        while (reader.Read()) names.Add(reader.GetString(0));
        var more = names.Count > limit;
        if (more) names.RemoveAt(names.Count - 1);
        return new Page<string>(names, more);
    }

    public ValueTask<Page<string>> ListTagsAsync(RepositoryName repository, int limit, string? last, CancellationToken ct)
    {
        if (limit == 0) return ValueTask.FromResult(NoNames);
        if ((_tagLists.TryGet(repository.Value, out var cached) ? cached : LoadTags(repository)) is { } tags)
        {
            var start = last is null ? 0 : IndexAfter(tags, last);
            var count = Math.Min(limit, tags.Length - start);
            return ValueTask.FromResult(new Page<string>(new ArraySegment<string>(tags, start, count), start + count < tags.Length));
        }
        using var lease = Read();
        var command = lease.Command("""
            SELECT t.name FROM tags t JOIN repositories r ON r.id = t.repository_id
            WHERE r.name = $name AND t.name > $last ORDER BY t.name LIMIT $limit
            """);
        command.Parameters.AddWithValue("$name", repository.Value);
        command.Parameters.AddWithValue("$last", last ?? "");
        command.Parameters.AddWithValue("$limit", limit + 1);
        return ValueTask.FromResult(ReadNames(command, limit));
    }

    /// <summary>
    /// The position of the first name after <paramref name="last"/>. Ordinal order is the database's (BINARY) order
    /// here: tag names are ASCII, and any other character sorts after ASCII in both UTF-8 and UTF-16.
    /// </summary>
    private static int IndexAfter(string[] sorted, string last)
    {
        var i = Array.BinarySearch(sorted, last, StringComparer.Ordinal);
        return i >= 0 ? i + 1 : ~i;
    }

    /// <summary>All of a repository's tags, sorted, kept in the cache; null if there are too many to keep.</summary>
    private string[]? LoadTags(RepositoryName repository)
    {
        var readAt = _tagLists.Version;
        using var lease = Read();
        var command = lease.Command("""
            SELECT t.name FROM tags t JOIN repositories r ON r.id = t.repository_id
            WHERE r.name = $name ORDER BY t.name LIMIT $limit
            """);
        command.Parameters.AddWithValue("$name", repository.Value);
        command.Parameters.AddWithValue("$limit", _tagLists.Capacity + 1);
        var names = new List<string>();
        using (var reader = command.ExecuteReader())
            while (reader.Read()) names.Add(reader.GetString(0));
        var tags = names.Count > _tagLists.Capacity ? null : names.ToArray();
        _tagLists.Store(repository.Value, tags, readAt);
        return tags;
    }

    public ValueTask<Page<string>> ListRepositoriesAsync(int limit, string? last, CancellationToken ct,
        Func<RepositoryName, bool>? visible = null)
    {
        if (limit == 0) return ValueTask.FromResult(NoNames);
        using var lease = Read();
        var connection = lease.Connection;
        if (visible is null)
        {
            using var command = Command(connection,
                "SELECT name FROM repositories WHERE name > $last ORDER BY name LIMIT $limit");
            command.Parameters.AddWithValue("$last", last ?? "");
            command.Parameters.AddWithValue("$limit", limit + 1);
            return ValueTask.FromResult(ReadNames(command, limit));
        }

        // Filtered: walk the names in order in batches until the page and one more visible name are found, so the
        // page is exact whatever share of the registry the caller may see.
        var names = new List<string>();
        var after = last ?? "";
        using var batch = Command(connection, "SELECT name FROM repositories WHERE name > $last ORDER BY name LIMIT 1000");
        var parameter = batch.Parameters.AddWithValue("$last", after);
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            parameter.Value = after;
            var read = 0;
            using (var reader = batch.ExecuteReader())
                while (reader.Read())
                {
                    read++;
                    after = reader.GetString(0);
                    if (!RepositoryName.TryParse(after, out var name) || !visible(name)) continue;
                    if (names.Count == limit) return ValueTask.FromResult(new Page<string>(names, true));
                    names.Add(after);
                }
            if (read < 1000) return ValueTask.FromResult(new Page<string>(names, false));
        }
    }

    public ValueTask<Page<ManifestRecord>> ListReferrersAsync(RepositoryName repository, Digest subject,
        string? artifactType, int limit, string? last, CancellationToken ct)
    {
        if (limit == 0) return ValueTask.FromResult(new Page<ManifestRecord>([], false));
        using var lease = Read();
        var command = lease.Command($"""
            SELECT {ManifestRows.Columns} FROM manifests m JOIN repositories r ON r.id = m.repository_id
            WHERE r.name = $name AND m.subject = $subject AND m.digest > $last
              AND ($artifactType IS NULL OR m.artifact_type = $artifactType)
            ORDER BY m.digest LIMIT $limit
            """);
        command.Parameters.AddWithValue("$name", repository.Value);
        command.Parameters.AddWithValue("$subject", subject.ToString());
        command.Parameters.AddWithValue("$last", last ?? "");
        command.Parameters.AddWithValue("$artifactType", (object?)artifactType ?? DBNull.Value);
        command.Parameters.AddWithValue("$limit", limit + 1);
        var items = new List<ManifestRecord>();
        using (var reader = command.ExecuteReader())
            while (reader.Read()) items.Add(ManifestRows.Read(reader));
        var more = items.Count > limit;
        if (more) items.RemoveAt(items.Count - 1);
        return ValueTask.FromResult(new Page<ManifestRecord>(items, more));
    }

    public ValueTask CreateUploadAsync(UploadSession session, CancellationToken ct) =>
        new(WriteAsync(db =>
        {
            var command = db.Command("INSERT INTO uploads(id, repository, started_at, client, owner) VALUES ($id, $repo, $now, $client, $owner)");
            command.Parameters.AddWithValue("$client", (object?)session.Client ?? DBNull.Value);
            command.Parameters.AddWithValue("$id", session.Id.Value);
            command.Parameters.AddWithValue("$repo", session.Repository.Value);
            command.Parameters.AddWithValue("$now", Ms(session.StartedAt));
            command.Parameters.AddWithValue("$owner", (object?)session.Owner ?? DBNull.Value);
            return command.ExecuteNonQuery();
        }, ct).AsTask());

    public ValueTask<UploadSession?> GetUploadAsync(UploadId id, CancellationToken ct)
    {
        using var lease = Read();
        var command = lease.Command("SELECT repository, started_at, client, owner FROM uploads WHERE id = $id");
        command.Parameters.AddWithValue("$id", id.Value);
        using var reader = command.ExecuteReader();
        if (!reader.Read() || !RepositoryName.TryParse(reader.GetString(0), out var repository))
            return ValueTask.FromResult<UploadSession?>(null);
        return ValueTask.FromResult<UploadSession?>(
            new UploadSession(id, repository, DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(1)),
                reader.IsDBNull(2) ? null : reader.GetString(2), reader.IsDBNull(3) ? null : reader.GetString(3)));
    }

    public ValueTask DeleteUploadAsync(UploadId id, CancellationToken ct) =>
        new(WriteAsync(db =>
        {
            var command = db.Command("DELETE FROM uploads WHERE id = $id");
            command.Parameters.AddWithValue("$id", id.Value);
            return command.ExecuteNonQuery();
        }, ct).AsTask());

    public ValueTask<int> CountUploadsAsync(CancellationToken ct)
    {
        using var lease = Read();
        var command = lease.Command("SELECT count(*) FROM uploads");
        return ValueTask.FromResult((int)(long)command.ExecuteScalar()!);
    }

    public ValueTask<long?> GetCursorAsync(string name, CancellationToken ct)
    {
        using var lease = Read();
        var command = lease.Command("SELECT last_id FROM webhook_cursors WHERE name = $name");
        command.Parameters.AddWithValue("$name", name);
        return ValueTask.FromResult(command.ExecuteScalar() is long id ? id : (long?)null);
    }

    public ValueTask SetCursorAsync(string name, long lastEventId, CancellationToken ct) =>
        new(WriteAsync(db =>
        {
            var command = db.Command("""
                INSERT INTO webhook_cursors(name, last_id) VALUES ($name, $id)
                ON CONFLICT(name) DO UPDATE SET last_id = excluded.last_id
                """);
            command.Parameters.AddWithValue("$name", name);
            command.Parameters.AddWithValue("$id", lastEventId);
            return command.ExecuteNonQuery();
        }, ct, isChange: false).AsTask());

    public ValueTask<bool> IsRepositoryImportedAsync(RepositoryName repository, CancellationToken ct)
    {
        using var lease = Read();
        var command = lease.Command("SELECT 1 FROM distribution_imports WHERE repository = $name");
        command.Parameters.AddWithValue("$name", repository.Value);
        return ValueTask.FromResult(command.ExecuteScalar() is not null);
    }

    public ValueTask<bool> ImportRepositoryAsync(RepositoryImport import, string source, DateTimeOffset now,
        CancellationToken ct) =>
        WriteAsync(db =>
        {
            var repository = import.Repository;
            var done = db.Command("SELECT 1 FROM distribution_imports WHERE repository = $name");
            done.Parameters.AddWithValue("$name", repository.Value);
            if (done.ExecuteScalar() is not null) return false;

            var ms = Ms(now);
            var repositoryId = EnsureRepository(db, repository, ms);
            foreach (var (digest, size) in import.Blobs)
            {
                EnsureBlob(db, digest, size, ms);
                var link = db.Command("""
                    INSERT INTO repository_blobs(repository_id, digest, linked_at) VALUES ($repo, $digest, $now)
                    ON CONFLICT DO NOTHING
                    """);
                link.Parameters.AddWithValue("$repo", repositoryId);
                link.Parameters.AddWithValue("$digest", digest.ToString());
                link.Parameters.AddWithValue("$now", ms);
                link.ExecuteNonQuery();
            }
            foreach (var (manifest, references) in import.Manifests)
            {
                if (!InsertManifest(db, repositoryId, manifest, references, ms)) continue;
                AddEvent(db, ms, EventActions.ManifestPush, repository, manifest.Digest, null, manifest.MediaType, manifest.Size);
            }
            foreach (var tag in import.Tags)
            {
                var upsert = db.Command("""
                    INSERT INTO tags(repository_id, name, digest, updated_at) VALUES ($repo, $name, $digest, $now)
                    ON CONFLICT(repository_id, name) DO NOTHING
                    """);
                upsert.Parameters.AddWithValue("$repo", repositoryId);
                upsert.Parameters.AddWithValue("$name", tag.Tag.Value);
                upsert.Parameters.AddWithValue("$digest", tag.Manifest.ToString());
                upsert.Parameters.AddWithValue("$now", Ms(tag.UpdatedAt));
                if (upsert.ExecuteNonQuery() > 0)
                    AddEvent(db, ms, EventActions.TagCreate, repository, tag.Manifest, tag.Tag.Value);
            }
            var record = db.Command("INSERT INTO distribution_imports(repository, source, imported_at) VALUES ($name, $source, $now)");
            record.Parameters.AddWithValue("$name", repository.Value);
            record.Parameters.AddWithValue("$source", source);
            record.Parameters.AddWithValue("$now", ms);
            record.ExecuteNonQuery();
            return true;
        }, ct, tagsOf: import.Repository);

    public ValueTask<int> CountUploadsByClientAsync(string client, CancellationToken ct)
    {
        using var lease = Read();
        var command = lease.Command("SELECT count(*) FROM uploads WHERE client = $client");
        command.Parameters.AddWithValue("$client", client);
        return ValueTask.FromResult((int)(long)command.ExecuteScalar()!);
    }

    public ValueTask<StoreStatistics> GetStatisticsAsync(CancellationToken ct)
    {
        using var lease = Read();
        // One statement, so one read transaction: the counts agree with each other.
        var command = lease.Command("""
            SELECT (SELECT count(*) FROM repositories), (SELECT count(*) FROM manifests), (SELECT count(*) FROM blobs),
                   (SELECT coalesce(sum(size), 0) FROM blobs), (SELECT count(*) FROM uploads)
            """);
        using var reader = command.ExecuteReader();
        reader.Read();
        return ValueTask.FromResult(new StoreStatistics(reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2),
            reader.GetInt64(3), reader.GetInt64(4)));
    }

    public ValueTask<IReadOnlyList<UploadId>> ListUploadsStartedBeforeAsync(DateTimeOffset cutoff, CancellationToken ct)
    {
        using var lease = Read();
        var command = lease.Command("SELECT id FROM uploads WHERE started_at < $cutoff");
        command.Parameters.AddWithValue("$cutoff", Ms(cutoff));
        var ids = new List<UploadId>();
        using var reader = command.ExecuteReader();
        while (reader.Read())
            if (UploadId.TryParse(reader.GetString(0), out var id)) ids.Add(id);
        return ValueTask.FromResult<IReadOnlyList<UploadId>>(ids);
    }

    public async IAsyncEnumerable<(Digest Digest, long Size)> ListBlobsAsync([EnumeratorCancellation] CancellationToken ct)
    {
        using var lease = Read();
        var command = lease.Command("SELECT digest, size FROM blobs ORDER BY digest");
        using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
            yield return (Digest.Parse(reader.GetString(0)), reader.GetInt64(1));
    }

    public async IAsyncEnumerable<(RepositoryName Repository, Digest Digest)> ListManifestsAsync(
        [EnumeratorCancellation] CancellationToken ct)
    {
        using var lease = Read();
        var connection = lease.Connection;
        using var command = Command(connection,
            "SELECT r.name, m.digest FROM manifests m JOIN repositories r ON r.id = m.repository_id ORDER BY r.name, m.digest");
        using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
            if (RepositoryName.TryParse(reader.GetString(0), out var name))
                yield return (name, Digest.Parse(reader.GetString(1)));
    }

    public ValueTask<IReadOnlyList<string>> CheckIntegrityAsync(CancellationToken ct)
    {
        var problems = new List<string>();
        using var lease = Read();
        var connection = lease.Connection;
        using (var integrity = Command(connection, "PRAGMA integrity_check"))
        using (var reader = integrity.ExecuteReader())
            while (reader.Read())
                if (reader.GetString(0) != "ok") problems.Add($"sqlite integrity: {reader.GetString(0)}");
        using (var foreignKeys = Command(connection, "PRAGMA foreign_key_check"))
        using (var reader = foreignKeys.ExecuteReader())
            while (reader.Read())
                problems.Add($"dangling reference in table {reader.GetString(0)} (row {reader.GetValue(1)}) to {reader.GetString(2)}");
        using (var names = Command(connection, "SELECT name FROM repositories"))
        using (var reader = names.ExecuteReader())
            while (reader.Read())
                if (!RepositoryName.TryParse(reader.GetString(0), out _)) problems.Add($"invalid repository name '{reader.GetString(0)}'");
        return ValueTask.FromResult<IReadOnlyList<string>>(problems);
    }
}
