using Npgsql;
using NpgsqlTypes;
using Registry.Storage.Model;

namespace Registry.Storage.Metadata.Postgres;

/// <summary>
/// One write transaction of <see cref="PostgresMetadataStore"/>: commands join it, and the events it appends are kept
/// until the end, where they are numbered under the outbox lock (see <see cref="PostgresMetadataStore"/>).
/// </summary>
internal sealed class PgWrite(NpgsqlConnection connection, NpgsqlTransaction transaction)
{
    private readonly List<(long At, string Action, string Repository, string? Digest, string? Tag, string? MediaType, long? Size)>
        _events = [];

    public NpgsqlConnection Connection => connection;

    /// <summary>Set by work that decided to keep nothing: the transaction is rolled back instead of committed.</summary>
    public bool RolledBack { get; private set; }

    public void Rollback() => RolledBack = true;

    public int EventCount => _events.Count;

    public NpgsqlCommand Command(string sql, params NpgsqlParameter[] parameters) =>
        Pg.Command(connection, transaction, sql, parameters);

    /// <summary>Appends to the outbox inside this transaction: the event exists if and only if the change does.</summary>
    public void AddEvent(long now, string action, RepositoryName repository, Digest? digest = null, string? tag = null,
        string? mediaType = null, long? size = null) =>
        _events.Add((now, action, repository.Value, digest?.ToString(), tag, mediaType, size));

    /// <summary>
    /// Takes the outbox lock and inserts the events, then queues the change notification; one round trip. The lock is
    /// taken after all other work of the transaction, so its holder never waits for a row lock (no deadlock), and is
    /// held until the commit, so ids become visible in the order they were drawn.
    /// </summary>
    public async Task FinishAsync(bool notify, CancellationToken ct)
    {
        if (_events.Count == 0 && !notify) return;
        await using var batch = new NpgsqlBatch(connection, transaction);
        if (_events.Count > 0)
        {
            batch.BatchCommands.Add(new NpgsqlBatchCommand($"SELECT pg_advisory_xact_lock({PostgresMetadataStore.OutboxLock})"));
            foreach (var e in _events)
            {
                var insert = new NpgsqlBatchCommand("""
                    INSERT INTO events(at, action, repository, digest, tag, media_type, size)
                    VALUES ($1, $2, $3, $4, $5, $6, $7)
                    """);
                insert.Parameters.Add(Pg.Int8(e.At));
                insert.Parameters.Add(Pg.Text(e.Action));
                insert.Parameters.Add(Pg.Text(e.Repository));
                insert.Parameters.Add(Pg.Text(e.Digest));
                insert.Parameters.Add(Pg.Text(e.Tag));
                insert.Parameters.Add(Pg.Text(e.MediaType));
                insert.Parameters.Add(Pg.Int8(e.Size));
                batch.BatchCommands.Add(insert);
            }
        }
        if (notify) batch.BatchCommands.Add(new NpgsqlBatchCommand($"SELECT pg_notify('{PostgresMetadataStore.Channel}', '')"));
        await batch.ExecuteNonQueryAsync(ct);
    }
}

/// <summary>Typed positional parameters (no inference by reflection, so trimming keeps what it needs).</summary>
internal static class Pg
{
    public static NpgsqlParameter Text(string? value) =>
        new() { NpgsqlDbType = NpgsqlDbType.Text, Value = (object?)value ?? DBNull.Value };

    public static NpgsqlParameter Int8(long? value) =>
        new() { NpgsqlDbType = NpgsqlDbType.Bigint, Value = value is { } v ? v : DBNull.Value };

    public static NpgsqlParameter Int4(int value) => new() { NpgsqlDbType = NpgsqlDbType.Integer, Value = value };

    public static NpgsqlParameter Bool(bool value) => new() { NpgsqlDbType = NpgsqlDbType.Boolean, Value = value };

    public static NpgsqlParameter TextArray(string[] values) =>
        new() { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text, Value = values };

    public static NpgsqlParameter Int8Array(long[] values) =>
        new() { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bigint, Value = values };

    public static NpgsqlParameter Int4Array(int[] values) =>
        new() { NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Integer, Value = values };

    public static NpgsqlCommand Command(NpgsqlConnection connection, NpgsqlTransaction? transaction, string sql,
        params NpgsqlParameter[] parameters)
    {
        var command = new NpgsqlCommand(sql, connection, transaction);
        foreach (var parameter in parameters) command.Parameters.Add(parameter);
        return command;
    }
}
