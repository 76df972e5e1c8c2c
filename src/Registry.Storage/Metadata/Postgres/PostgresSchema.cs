using Npgsql;

namespace Registry.Storage.Metadata.Postgres;

/// <summary>
/// The PostgreSQL schema as versions, recorded in <c>schema_version</c>. Migration i (1-based) brings a database from
/// version i-1 to i in one transaction with the version bump; a released step is never edited, a change is a new one.
/// Replicas starting at once are serialised by a session advisory lock around the whole migration, so exactly one
/// applies each step and the others find the database current.
/// </summary>
internal static class PostgresSchema
{
    /// <summary>
    /// Every name and digest column that listings order or compare is <c>COLLATE "C"</c>: byte order, as SQLite's
    /// BINARY and the spec's lexical pagination expect, whatever collation the database was created with.
    /// </summary>
    internal static readonly string[] Migrations =
    [
        """
        CREATE TABLE repositories (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            name text COLLATE "C" NOT NULL UNIQUE,
            created_at bigint NOT NULL);
        CREATE TABLE blobs (
            digest text COLLATE "C" PRIMARY KEY,
            size bigint NOT NULL,
            created_at bigint NOT NULL);
        CREATE TABLE repository_blobs (
            repository_id bigint NOT NULL REFERENCES repositories(id),
            digest text COLLATE "C" NOT NULL REFERENCES blobs(digest),
            linked_at bigint NOT NULL,
            PRIMARY KEY (repository_id, digest));
        CREATE INDEX repository_blobs_by_digest ON repository_blobs(digest);
        CREATE TABLE manifests (
            repository_id bigint NOT NULL REFERENCES repositories(id),
            digest text COLLATE "C" NOT NULL REFERENCES blobs(digest),
            media_type text NOT NULL,
            size bigint NOT NULL,
            artifact_type text,
            subject text COLLATE "C",
            annotations text,
            pushed_at bigint NOT NULL,
            PRIMARY KEY (repository_id, digest));
        CREATE INDEX manifests_by_subject ON manifests(repository_id, subject, digest) WHERE subject IS NOT NULL;
        CREATE INDEX manifests_by_digest ON manifests(digest);
        CREATE TABLE manifest_references (
            repository_id bigint NOT NULL,
            manifest text COLLATE "C" NOT NULL,
            target text COLLATE "C" NOT NULL,
            kind integer NOT NULL,
            PRIMARY KEY (repository_id, manifest, target),
            FOREIGN KEY (repository_id, manifest) REFERENCES manifests(repository_id, digest) ON DELETE CASCADE);
        CREATE INDEX manifest_references_by_target ON manifest_references(target, repository_id);
        CREATE TABLE tags (
            repository_id bigint NOT NULL,
            name text COLLATE "C" NOT NULL,
            digest text COLLATE "C" NOT NULL,
            updated_at bigint NOT NULL,
            PRIMARY KEY (repository_id, name),
            FOREIGN KEY (repository_id, digest) REFERENCES manifests(repository_id, digest));
        CREATE INDEX tags_by_digest ON tags(repository_id, digest);
        CREATE TABLE uploads (
            id text PRIMARY KEY,
            repository text NOT NULL,
            started_at bigint NOT NULL,
            client text,
            owner text);
        CREATE INDEX uploads_by_start ON uploads(started_at);
        CREATE INDEX uploads_by_client ON uploads(client) WHERE client IS NOT NULL;
        CREATE TABLE events (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            at bigint NOT NULL,
            action text NOT NULL,
            repository text NOT NULL,
            digest text,
            tag text,
            media_type text,
            size bigint);
        CREATE INDEX events_by_time ON events(at);
        CREATE TABLE webhook_cursors (
            name text PRIMARY KEY,
            last_id bigint NOT NULL);
        CREATE TABLE distribution_imports (
            repository text PRIMARY KEY,
            source text NOT NULL,
            imported_at bigint NOT NULL);
        CREATE TABLE gc_tombstones (
            digest text COLLATE "C" PRIMARY KEY,
            size bigint NOT NULL,
            at bigint NOT NULL);
        CREATE TABLE gc_runs (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            dry_run boolean NOT NULL,
            trigger text NOT NULL,
            started_at bigint NOT NULL,
            finished_at bigint,
            status text NOT NULL,
            report text);
        CREATE TABLE leases (
            name text PRIMARY KEY,
            holder text NOT NULL,
            expires_at timestamptz NOT NULL);
        """,
        // Pins and sweeps that every replica's garbage collection sees (PostgresBlobPins): rows with a lease.
        """
        CREATE TABLE blob_pins (
            holder text NOT NULL,
            id bigint NOT NULL,
            digest text COLLATE "C" NOT NULL,
            expires_at timestamptz NOT NULL,
            PRIMARY KEY (holder, id));
        CREATE INDEX blob_pins_by_digest ON blob_pins(digest);
        CREATE TABLE blob_sweeps (
            digest text COLLATE "C" PRIMARY KEY,
            holder text NOT NULL,
            expires_at timestamptz NOT NULL);
        CREATE INDEX blob_sweeps_by_holder ON blob_sweeps(holder);
        """,
    ];

    public static int Version => Migrations.Length;

    /// <summary>Session advisory lock key held while migrating ("registry" in ASCII).</summary>
    private const long MigrationLock = 0x7265_6769_7374_7279;

    /// <summary>Applies the migrations the database lacks, under the migration lock; refuses a newer schema.</summary>
    public static async Task MigrateAsync(NpgsqlDataSource source, CancellationToken ct)
    {
        await using var connection = await source.OpenConnectionAsync(ct);
        await Execute(connection, null, $"SELECT pg_advisory_lock({MigrationLock})", ct);
        try
        {
            await Execute(connection, null, "CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)", ct);
            await using (var read = new NpgsqlCommand("SELECT max(version) FROM schema_version", connection))
            {
                var version = await read.ExecuteScalarAsync(ct) is int v ? v : 0;
                if (version > Migrations.Length)
                    throw new InvalidOperationException(
                        $"the PostgreSQL metadata database has schema version {version}, newer than this registry's " +
                        $"{Migrations.Length}; run the newer registry or restore a backup");
                for (var next = version; next < Migrations.Length; next++)
                {
                    await using var tx = await connection.BeginTransactionAsync(ct);
                    await Execute(connection, tx, Migrations[next], ct);
                    await Execute(connection, tx, "DELETE FROM schema_version", ct);
                    // Our own integer: no parameter needed.
                    await Execute(connection, tx, $"INSERT INTO schema_version(version) VALUES ({next + 1})", ct);
                    await tx.CommitAsync(ct);
                }
            }
        }
        finally
        {
            await Execute(connection, null, $"SELECT pg_advisory_unlock({MigrationLock})", CancellationToken.None);
        }
    }

    public static async Task<int> ReadVersionAsync(NpgsqlDataSource source, CancellationToken ct)
    {
        await using var command = source.CreateCommand("SELECT max(version) FROM schema_version");
        return await command.ExecuteScalarAsync(ct) is int v ? v : 0;
    }

    private static async Task Execute(NpgsqlConnection connection, NpgsqlTransaction? tx, string sql, CancellationToken ct)
    {
        await using var command = new NpgsqlCommand(sql, connection, tx);
        await command.ExecuteNonQueryAsync(ct);
    }
}
