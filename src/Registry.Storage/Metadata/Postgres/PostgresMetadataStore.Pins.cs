using System.Data;
using Npgsql;
using Registry.Storage.Model;

namespace Registry.Storage.Metadata.Postgres;

/// <summary>
/// The rows behind <see cref="PostgresBlobPins"/>: a pin is a row of <c>blob_pins</c>, a digest being swept a row of
/// <c>blob_sweeps</c>, each with its holder (one process) and an expiry on the database's clock that the holder renews.
/// Taking a pin and taking a sweep each first take a transaction advisory lock per digest (<see cref="DigestLocks"/>,
/// held until the commit), then read the other table and write their own, READ COMMITTED: of a pin and a sweep of one
/// digest asked for at the same time, the second waits for the first to commit and its statement then sees the
/// first's row, so they are never both held. (They were SERIALIZABLE transactions before: PostgreSQL scans these
/// small tables whole, so every pin conflicted with every concurrent sweep, whatever the digests, and 40 pins racing
/// 40 sweeps ran out of retries.)
/// </summary>
public sealed partial class PostgresMetadataStore
{
    /// <summary>The first key of the two-key advisory locks on digests ("pins"), apart from the outbox's one-key lock.</summary>
    private const int DigestLocks = 0x70696e73;

    // Advisory locks live in the server's shared lock table (max_locks_per_transaction per connection): a sweep
    // takes them in chunks of this many digests, one transaction each.
    private const int SweepChunk = 256;

    /// <summary>Takes a pin unless the digest is being swept (an unexpired sweep row); true when taken.</summary>
    internal ValueTask<bool> TryInsertPinAsync(string holder, long id, Digest digest, TimeSpan ttl, CancellationToken ct) =>
        WriteAsync(async (db, t) =>
        {
            var key = digest.ToString();
            await ExecuteAsync(db.Command("SELECT pg_advisory_xact_lock($1, hashtext($2))", Pg.Int4(DigestLocks),
                Pg.Text(key)), t);
            // A statement of its own: under READ COMMITTED it sees every sweep committed while the lock was awaited.
            return await ExecuteAsync(db.Command("""
                INSERT INTO blob_pins(holder, id, digest, expires_at)
                SELECT $1, $2, $3, clock_timestamp() + $4 * interval '1 millisecond'
                WHERE NOT EXISTS (SELECT 1 FROM blob_sweeps s WHERE s.digest = $3 AND s.expires_at > clock_timestamp())
                """, Pg.Text(holder), Pg.Int8(id), Pg.Text(key), Pg.Int8((long)ttl.TotalMilliseconds)), t) == 1;
        }, ct, isChange: false, IsolationLevel.ReadCommitted);

    /// <summary>
    /// One round trip, not waiting for the WAL flush: dropping a pin decides nothing, and a drop lost in a database crash
    /// leaves a row that nobody renews, which expires.
    /// </summary>
    internal async ValueTask DeletePinAsync(string holder, long id, CancellationToken ct)
    {
        await using var batch = Unflushed("DELETE FROM blob_pins WHERE holder = $1 AND id = $2", Pg.Text(holder), Pg.Int8(id));
        await batch.ExecuteNonQueryAsync(ct);
    }

    /// <summary>
    /// <paramref name="sql"/> in the implicit transaction of a batch whose commit does not wait for the WAL flush
    /// (<c>synchronous_commit</c> off for that transaction only): for bookkeeping that a crash may lose.
    /// </summary>
    private NpgsqlBatch Unflushed(string sql, params NpgsqlParameter[] parameters)
    {
        var batch = _source.CreateBatch();
        batch.BatchCommands.Add(new NpgsqlBatchCommand("SELECT set_config('synchronous_commit', 'off', true)"));
        var command = new NpgsqlBatchCommand(sql);
        foreach (var parameter in parameters) command.Parameters.Add(parameter);
        batch.BatchCommands.Add(command);
        return batch;
    }

    /// <summary>Takes a sweep of each digest nobody pins and nobody else sweeps (an expired sweep is taken over).</summary>
    internal async ValueTask<List<Digest>> TryInsertSweepsAsync(string holder, IReadOnlyCollection<Digest> digests,
        TimeSpan ttl, CancellationToken ct)
    {
        var taken = new List<Digest>();
        // Sorted, so that two sweeps of overlapping digests take their locks in the same order (a deadlock would
        // still only cost a retry).
        var wanted = digests.Select(d => d.ToString()).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal);
        foreach (var chunk in wanted.Chunk(SweepChunk))
            taken.AddRange(await WriteAsync(async (db, t) =>
            {
                await ExecuteAsync(db.Command("""
                    SELECT pg_advisory_xact_lock($1, hashtext(d)) FROM unnest($2::text[]) WITH ORDINALITY AS u(d, n)
                    ORDER BY n
                    """, Pg.Int4(DigestLocks), Pg.TextArray(chunk)), t);
                return await DigestsAsync(db.Command("""
                    INSERT INTO blob_sweeps(digest, holder, expires_at)
                    SELECT d, $2, clock_timestamp() + $3 * interval '1 millisecond' FROM unnest($1::text[]) AS d
                    WHERE NOT EXISTS (SELECT 1 FROM blob_pins p WHERE p.digest = d AND p.expires_at > clock_timestamp())
                    ON CONFLICT (digest) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
                    WHERE blob_sweeps.expires_at <= clock_timestamp()
                    RETURNING digest
                    """, Pg.TextArray(chunk), Pg.Text(holder), Pg.Int8((long)ttl.TotalMilliseconds)), t);
            }, ct, isChange: false, IsolationLevel.ReadCommitted));
        return taken;
    }

    /// <summary>Ends sweeps; like dropping a pin, not flushed (a lost end expires).</summary>
    internal async ValueTask DeleteSweepsAsync(string holder, IReadOnlyCollection<Digest> digests, CancellationToken ct)
    {
        await using var batch = Unflushed("DELETE FROM blob_sweeps WHERE holder = $1 AND digest = ANY ($2::text[])",
            Pg.Text(holder), Pg.TextArray(digests.Select(d => d.ToString()).ToArray()));
        await batch.ExecuteNonQueryAsync(ct);
    }

    /// <summary>
    /// Renews the holder's live pins and sweeps for another <paramref name="ttl"/> and deletes rows (anyone's) that
    /// expired a while ago; one round trip.
    /// </summary>
    internal async ValueTask RenewPinsAsync(string holder, long[] pins, string[] sweeps, TimeSpan ttl, CancellationToken ct)
    {
        await using var batch = _source.CreateBatch();
        var renew = new NpgsqlBatchCommand("""
            UPDATE blob_pins SET expires_at = clock_timestamp() + $3 * interval '1 millisecond'
            WHERE holder = $1 AND id = ANY ($2::bigint[])
            """);
        renew.Parameters.Add(Pg.Text(holder));
        renew.Parameters.Add(Pg.Int8Array(pins));
        renew.Parameters.Add(Pg.Int8((long)ttl.TotalMilliseconds));
        batch.BatchCommands.Add(renew);
        var renewSweeps = new NpgsqlBatchCommand("""
            UPDATE blob_sweeps SET expires_at = clock_timestamp() + $3 * interval '1 millisecond'
            WHERE holder = $1 AND digest = ANY ($2::text[])
            """);
        renewSweeps.Parameters.Add(Pg.Text(holder));
        renewSweeps.Parameters.Add(Pg.TextArray(sweeps));
        renewSweeps.Parameters.Add(Pg.Int8((long)ttl.TotalMilliseconds));
        batch.BatchCommands.Add(renewSweeps);
        batch.BatchCommands.Add(new NpgsqlBatchCommand(
            "DELETE FROM blob_pins WHERE expires_at < clock_timestamp() - interval '10 minutes'"));
        batch.BatchCommands.Add(new NpgsqlBatchCommand(
            "DELETE FROM blob_sweeps WHERE expires_at < clock_timestamp() - interval '10 minutes'"));
        await batch.ExecuteNonQueryAsync(ct);
    }

    /// <summary>Drops every pin and sweep of the holder (it stops).</summary>
    internal async ValueTask DeleteHolderPinsAsync(string holder, CancellationToken ct)
    {
        await using var batch = _source.CreateBatch();
        var pins = new NpgsqlBatchCommand("DELETE FROM blob_pins WHERE holder = $1");
        pins.Parameters.Add(Pg.Text(holder));
        batch.BatchCommands.Add(pins);
        var sweeps = new NpgsqlBatchCommand("DELETE FROM blob_sweeps WHERE holder = $1");
        sweeps.Parameters.Add(Pg.Text(holder));
        batch.BatchCommands.Add(sweeps);
        await batch.ExecuteNonQueryAsync(ct);
    }
}
