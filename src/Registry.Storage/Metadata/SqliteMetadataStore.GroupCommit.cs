using Registry.Storage.Durability;
using Registry.Storage.Model;

namespace Registry.Storage.Metadata;

/// <summary>
/// Group commit of writes. Every write is queued; one loop at a time takes everything queued and runs it in ONE
/// transaction, each write inside its own savepoint (so a write that fails or discards itself is rolled back alone and
/// the others still commit), commits, and asks for one WAL fsync that starts after that commit. A write's caller gets
/// its answer only once that fsync is done. While the fsync of one group runs, the next group is already being
/// built and committed, so N concurrent writes cost about one commit and one fsync instead of N of each.
/// Writes keep their order: within a group they run in the order they were queued, each seeing the ones before it,
/// exactly as if they had run one by one. A write queued while no loop runs starts one on its caller's thread for
/// one group (no hop to the thread pool and back on a quiet registry, nor for the first write of each burst), and
/// hands what was queued meanwhile to a loop on the thread pool.
/// </summary>
public sealed partial class SqliteMetadataStore
{
    /// <summary>Most writes in one transaction: bounds how long the first of a group waits for the last.</summary>
    private const int MaxGroup = 256;

    private readonly object _queueGate = new();
    private List<QueuedWrite> _queue = new();
    private Task? _loop;
    /// <summary>A loop is running (or about to): it takes every write queued before it clears this, under the gate.</summary>
    private bool _looping;
    private bool _stopped;
    private long _groups;
    private long _groupedWrites;

    /// <summary>Transactions committed by the group commit loop, and the writes they held (a ratio above 1 is sharing).</summary>
    public (long Groups, long Writes) GroupCommits => (Interlocked.Read(ref _groups), Interlocked.Read(ref _groupedWrites));

    private abstract class QueuedWrite(CancellationToken ct, RepositoryName? tagsOf, bool isChange, bool awaitsDurable)
    {
        public CancellationToken Ct { get; } = ct;
        public RepositoryName? TagsOf { get; } = tagsOf;
        public bool IsChange { get; } = isChange;
        /// <summary>Its caller waits for the WAL fsync; a group of writes that all do not asks for none.</summary>
        public bool AwaitsDurable { get; } = awaitsDurable;

        /// <summary>Runs the write on the writer connection, inside the group's transaction; false: nothing to keep.</summary>
        public abstract bool Run(Prepared db);

        /// <summary>Answers the caller: kept writes once <paramref name="durable"/> completes.</summary>
        public abstract void Complete(Task durable);

        public abstract void Fail(Exception error);

        public abstract void Cancel();
    }

    private sealed class QueuedWrite<T>(Func<Prepared, T> work, CancellationToken ct, RepositoryName? tagsOf, bool isChange,
        bool awaitsDurable) : QueuedWrite(ct, tagsOf, isChange, awaitsDurable)
    {
        private T? _result;
        private Exception? _error;

        public TaskCompletionSource<(T Result, Task Durable)> Answer { get; } =
            new(TaskCreationOptions.RunContinuationsAsynchronously);

        public override bool Run(Prepared db)
        {
            try
            {
                _result = work(db);
                return !db.Discarded;
            }
            catch (Exception e)
            {
                _error = e;
                return false;
            }
        }

        public override void Complete(Task durable)
        {
            if (_error is not null) Answer.TrySetException(_error);
            else Answer.TrySetResult((_result!, durable));
        }

        public override void Fail(Exception error) => Answer.TrySetException(error);

        public override void Cancel() => Answer.TrySetCanceled(Ct);
    }

    /// <summary>
    /// Runs <paramref name="work"/> in a transaction on the writer connection and returns once the change is committed
    /// (and, when the store is durable, on disk). <paramref name="tagsOf"/> names the repository whose tags the write may
    /// change: its cached tag list is dropped once the change is committed. <paramref name="isChange"/> false
    /// (bookkeeping such as delivery cursors) does not wake <see cref="WaitForChangeAsync"/>. A write that calls
    /// <see cref="Prepared.Discard"/> or throws keeps nothing. <paramref name="awaitDurable"/> false: returns once
    /// committed, before the WAL flush that follows; the change is durable no later than the next write that does wait.
    /// </summary>
    private async ValueTask<T> WriteAsync<T>(Func<Prepared, T> work, CancellationToken ct, RepositoryName? tagsOf = null,
        bool isChange = true, bool awaitDurable = true)
    {
        var write = new QueuedWrite<T>(work, ct, tagsOf, isChange, awaitDurable);
        bool runHere;
        lock (_queueGate)
        {
            ObjectDisposedException.ThrowIf(_stopped, this);
            _queue.Add(write);
            runHere = !_looping;
            _looping = true;
        }
        // Nobody is committing: this caller commits the group its write is in, on its own thread (no hand-off to the
        // thread pool and back for the common case), and leaves whatever was queued meanwhile to a loop.
        if (runHere) CommitGroups(handOff: true);
        var (result, durable) = await write.Answer.Task;
        if (awaitDurable) await durable;
        return result;
    }

    /// <param name="handOff">Commit one group, then start a loop on the thread pool for what is queued, if anything.</param>
    private void CommitGroups(bool handOff)
    {
        for (var groups = 0; ; groups++)
        {
            List<QueuedWrite> group;
            lock (_queueGate)
            {
                if (_queue.Count == 0)
                {
                    _looping = false;
                    return;
                }
                if (handOff && groups == 1)
                {
                    _loop = Task.Run(() => CommitGroups(handOff: false));
                    return;
                }
                if (_queue.Count <= MaxGroup)
                {
                    group = _queue;
                    _queue = new List<QueuedWrite>();
                }
                else
                {
                    group = _queue.GetRange(0, MaxGroup);
                    _queue.RemoveRange(0, MaxGroup);
                }
            }
            try
            {
                CommitGroup(group);
            }
            catch (Exception e)
            {
                // Never leave a caller waiting: whatever was not answered yet fails.
                foreach (var write in group) write.Fail(e);
            }
        }
    }

    private void CommitGroup(List<QueuedWrite> group)
    {
        var kept = new List<QueuedWrite>(group.Count);
        var answered = new List<QueuedWrite>(group.Count);
        try
        {
            var db = _writer ??= OpenWriter();
            CatchUpCheckpoint(db);
            db.ContentWritten.Clear();
            using var tx = db.Connection.BeginTransaction(deferred: false);
            db.Transaction = tx;
            try
            {
                // A lone write needs no savepoint: the transaction is its own.
                var alone = group.Count == 1;
                foreach (var write in group)
                {
                    if (write.Ct.IsCancellationRequested)
                    {
                        write.Cancel();
                        continue;
                    }
                    answered.Add(write);
                    if (!alone) db.Command("SAVEPOINT one_write").ExecuteNonQuery();
                    db.ResetDiscarded();
                    var contentBefore = db.ContentWritten.Count;
                    var keep = write.Run(db);
                    if (keep) kept.Add(write);
                    else db.ContentWritten.RemoveRange(contentBefore, db.ContentWritten.Count - contentBefore);
                    if (alone) continue;
                    if (!keep) db.Command("ROLLBACK TO one_write").ExecuteNonQuery();
                    db.Command("RELEASE one_write").ExecuteNonQuery();
                }
            }
            finally
            {
                db.Transaction = null;
                db.ResetDiscarded();
            }
            if (kept.Count == 0)
            {
                tx.Rollback();
                foreach (var write in answered) write.Complete(Task.CompletedTask);
                return;
            }
            tx.Commit();
            CheckpointSoon();
            ContentCommitted(db);
            Interlocked.Increment(ref _groups);
            Interlocked.Add(ref _groupedWrites, kept.Count);
        }
        catch (Exception e)
        {
            // The transaction itself failed (disk full, I/O error): nothing of the group was kept.
            foreach (var write in answered) write.Fail(e);
            return;
        }

        var woke = false;
        var awaited = false;
        foreach (var write in kept)
        {
            if (write.TagsOf is { } repository) _tagLists.Invalidate(repository.Value);
            woke |= write.IsChange;
            awaited |= write.AwaitsDurable;
        }
        if (woke)
            Interlocked.Exchange(ref _committed, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously))
                .TrySetResult();
        // Asked now, awaited by each caller: the next group commits while this fsync runs. A group whose callers all
        // go on without it asks for none: the next fsync anybody waits for covers it (the WAL is flushed in order).
        var durable = awaited ? _walSync?.SyncAsync() ?? Task.CompletedTask : Task.CompletedTask;
        foreach (var write in answered) write.Complete(durable);
    }

    /// <summary>Writes queued and not yet taken by a group.</summary>
    internal int QueuedWrites
    {
        get
        {
            lock (_queueGate) return _queue.Count;
        }
    }

    /// <summary>
    /// For tests: occupies the group commit loop until the result is disposed, so that writes queued meanwhile are
    /// committed together when it is.
    /// </summary>
    internal IDisposable HoldWrites()
    {
        var release = new ManualResetEventSlim();
        using var started = new ManualResetEventSlim();
        // On the thread pool: a write queued while nobody commits runs on its caller's thread.
        _ = Task.Run(() => WriteAsync(_ =>
        {
            started.Set();
            release.Wait();
            return true;
        }, CancellationToken.None, isChange: false).AsTask());
        started.Wait();
        return release.AsReleaser();
    }

    /// <summary>Refuses new writes and waits for the queued ones to finish.</summary>
    private void StopGroupCommit()
    {
        Task? loop;
        lock (_queueGate)
        {
            _stopped = true;
            loop = _loop;
        }
        try
        {
            loop?.Wait();
            // A caller may be committing a group on its own thread, or have just handed the rest to a new loop.
            var spin = new SpinWait();
            while (Volatile.Read(ref _looping))
            {
                spin.SpinOnce();
                lock (_queueGate) loop = _loop;
                loop?.Wait();
            }
        }
        catch (AggregateException)
        {
            // Each write's caller has its own answer; the loop itself has nothing to report.
        }
    }
}
