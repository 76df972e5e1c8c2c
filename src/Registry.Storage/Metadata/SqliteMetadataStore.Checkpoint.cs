using Microsoft.Data.Sqlite;

namespace Registry.Storage.Metadata;

/// <summary>
/// WAL checkpoints off the group commit loop. SQLite's own checkpoint runs inside the commit that crosses its
/// threshold, so every write queued behind that commit waits while about a thousand pages are copied into the
/// database and the database is fsynced: under a stream of pushes, a 5–15 ms stall of the loop every 50–70 ms
/// (perf trace of the fsyncs; about 11 % of the time). Here a checkpoint is done in two steps:
/// <list type="number">
/// <item>a checkpointer, on a connection of its own, copies what is committed into the database a short while after
/// writes happen (PASSIVE: it never blocks the writer, which goes on appending to the WAL meanwhile);</item>
/// <item>the writer, before its next group, checkpoints the few frames committed while the checkpointer ran. The
/// database then holds the whole WAL, and the group's first write starts the WAL over from its beginning (SQLite
/// does that only when the WAL was wholly copied as the transaction began and no reader is using it, which a
/// checkpoint beside a busy writer never reaches on its own).</item>
/// </list>
/// The WAL therefore holds what is committed during one pass of the checkpointer, more than SQLite's 1000 pages
/// under heavy writes. The writer's automatic checkpoint stays as the bound for when the checkpointer falls behind,
/// at <see cref="WriterCheckpointPages"/> (16 MiB). Checkpoints copy only committed frames, and SQLite fsyncs the
/// WAL before and the database after copying, so a crash at any point leaves a consistent database, as before.
/// </summary>
public sealed partial class SqliteMetadataStore
{
    /// <summary>WAL pages at which the writer checkpoints by itself (SQLite's default is 1000).</summary>
    internal const int WriterCheckpointPages = 4096;

    /// <summary>How long the checkpointer lets commits gather after the first one before it copies them.</summary>
    private static readonly TimeSpan CheckpointDelay = TimeSpan.FromMilliseconds(50);

    private readonly SemaphoreSlim _checkpointWanted = new(0, 1);
    private readonly CancellationTokenSource _stopCheckpoints = new();
    private Task? _checkpointer;
    /// <summary>1 from a commit's request until the checkpointer's pass for it has ended.</summary>
    private int _checkpointRequested;
    /// <summary>1 once the checkpointer copied frames the writer has not caught up with yet.</summary>
    private int _catchUp;
    private long _checkpointerPasses;
    private long _writerCatchUps;

    /// <summary>Passes of the checkpointer, and catch-ups of the writer after them.</summary>
    public (long Passes, long CatchUps) Checkpoints =>
        (Interlocked.Read(ref _checkpointerPasses), Interlocked.Read(ref _writerCatchUps));

    /// <summary>The writer's connection: the only one that writes, with its own checkpoint threshold.</summary>
    private Prepared OpenWriter()
    {
        var connection = Open();
        Execute(connection, $"PRAGMA wal_autocheckpoint = {WriterCheckpointPages}");
        _checkpointer ??= Task.Run(CheckpointLoopAsync);
        return new Prepared(connection) { Pending = _pendingContent };
    }

    /// <summary>After a commit: the checkpointer copies it (and whatever follows it) shortly.</summary>
    private void CheckpointSoon()
    {
        if (Interlocked.CompareExchange(ref _checkpointRequested, 1, 0) == 0) _checkpointWanted.Release();
    }

    /// <summary>On the writer before a group's BEGIN: copies what the checkpointer left, so the WAL can start over.</summary>
    private void CatchUpCheckpoint(Prepared writer)
    {
        if (Interlocked.Exchange(ref _catchUp, 0) == 0) return;
        try
        {
            Checkpoint(writer.Connection);
            Interlocked.Increment(ref _writerCatchUps);
        }
        catch (SqliteException)
        {
            // Not this group's failure: the WAL goes on growing until the next pass or the writer's own threshold.
        }
    }

    private async Task CheckpointLoopAsync()
    {
        var stop = _stopCheckpoints.Token;
        using var connection = Open();
        try
        {
            while (true)
            {
                await _checkpointWanted.WaitAsync(stop);
                await Task.Delay(CheckpointDelay, stop);
                try
                {
                    if (Checkpoint(connection) > 0) Volatile.Write(ref _catchUp, 1);
                    Interlocked.Increment(ref _checkpointerPasses);
                }
                catch (SqliteException)
                {
                    // Busy or failing disk: nothing was lost, and the writer's own threshold still bounds the WAL.
                }
                Volatile.Write(ref _checkpointRequested, 0);
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            // The store is closing.
        }
    }

    /// <summary>
    /// A PASSIVE checkpoint on <paramref name="connection"/>: how many frames of the WAL are now in the database (all
    /// of them unless a reader's snapshot held some back; 0 when the WAL is empty).
    /// </summary>
    private static long Checkpoint(SqliteConnection connection)
    {
        using var command = Command(connection, "PRAGMA wal_checkpoint(PASSIVE)");
        using var reader = command.ExecuteReader();
        // busy, frames in the WAL, frames of it copied into the database (-1 when not in WAL mode).
        return reader.Read() ? Math.Max(0, reader.GetInt64(2)) : 0;
    }

    /// <summary>
    /// At close (which may come twice), after the group commit stopped: the checkpointer ends before the connections
    /// close.
    /// </summary>
    private void StopCheckpoints()
    {
        _stopCheckpoints.Cancel();
        try
        {
            _checkpointer?.Wait();
        }
        catch (AggregateException)
        {
            // A failed pass has nothing left to report: the close's own checkpoint follows.
        }
    }
}
