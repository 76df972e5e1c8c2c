using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Registry.Storage.Durability;

/// <summary>
/// Group commit of publishes into one filesystem. A publish moves a file written under <c>tmp/</c> (or
/// <c>uploads/</c>) to its content address so that it survives a power loss: its data is made durable, then it is
/// renamed, then the new name is made durable. Concurrent publishes are done in rounds, one round at a time, each
/// taking every publish queued before it starts:
/// <list type="number">
/// <item>the data of every file in the round that is not on disk yet is made durable;</item>
/// <item>every file of the round is renamed;</item>
/// <item>the new names are made durable, and only then is the round answered.</item>
/// </list>
/// Step 3 of one round and step 1 of the next are the same flush (see <see cref="RunRounds"/>): one <c>syncfs</c> of
/// the filesystem, or an <c>fdatasync</c>/<c>fsync</c> when it is a single file or folder. So each publish still sees
/// "data durable, then rename, then name durable", and N concurrent small pushes cost about one flush per round
/// instead of 2N. Publishes queued while a round runs form the next one.
/// <para>
/// <c>syncfs</c> flushes everything dirty on the filesystem, not only the round's files, so it is used only while
/// little is waiting to be written back (<see cref="Contended"/>: the kernel's dirty and writeback pages, from
/// <c>/proc/meminfo</c>, under <see cref="ContendedBytes"/>). When another writer has a lot in flight (a build
/// writing gigabytes onto the same disk), each file is fsynced on its own by its request and a round fsyncs each of
/// its folders: slower than one <c>syncfs</c> on a quiet disk, but never a wait for somebody else's gigabytes.
/// </para>
/// </summary>
internal sealed class PublishRounds : IDisposable
{

    /// <summary>Dirty plus writeback bytes above which a syncfs would mostly wait for other writers' data.</summary>
    internal const long ContendedBytes = 32L << 20;

    private readonly int _root;
    private long _contendedCheckedAt = long.MinValue;
    private bool _contended;
    private readonly object _gate = new();
    private List<Publish> _queue = new();
    private bool _running;
    private long _rounds;
    private long _published;

    /// <summary>Rounds run so far and the publishes they held (a ratio above 1 is sharing).</summary>
    public (long Rounds, long Publishes) Statistics => (Interlocked.Read(ref _rounds), Interlocked.Read(ref _published));

    private sealed class Publish(string? source, SafeFileHandle? unsynced, string target, ManualResetEventSlim? hold = null)
    {
        /// <summary>For tests: the round waits for it before doing anything.</summary>
        public ManualResetEventSlim? Hold { get; } = hold;
        /// <summary>Null: only wait until the name <see cref="Target"/> (published earlier) is durable.</summary>
        public string? Source { get; } = source;
        public SafeFileHandle? Unsynced { get; } = unsynced;
        public string Target { get; } = target;
        public bool Moved { get; set; }
        public Exception? Error { get; set; }
        public TaskCompletionSource<bool> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private readonly Func<long> _pendingWriteback;

    /// <param name="root">A folder of the filesystem the publishes happen in (for <c>syncfs</c>).</param>
    /// <param name="pendingWriteback">Bytes waiting to be written back (default: <see cref="PendingWritebackBytes"/>).</param>
    public PublishRounds(string root, Func<long>? pendingWriteback = null)
    {
        _pendingWriteback = pendingWriteback ?? PendingWritebackBytes;
        _root = FileSync.OpenFolder(root);
    }

    /// <summary>
    /// Moves <paramref name="source"/> to <paramref name="target"/> and returns once the data and the name are durable:
    /// true if it was moved, false if <paramref name="target"/> already existed (same digest, same content; the source
    /// is left where it is). <paramref name="unsynced"/>: the open file, when its data is not fsynced yet; it MUST stay
    /// open until this completes.
    /// </summary>
    public Task<bool> PublishAsync(string source, SafeFileHandle? unsynced, string target) =>
        Enqueue(new Publish(source, unsynced, target));

    /// <summary>Returns once the name <paramref name="path"/> (already in place) is durable in its folder.</summary>
    public Task NameDurableAsync(string path) => Enqueue(new Publish(null, null, path));

    private Task<bool> Enqueue(Publish publish)
    {
        lock (_gate)
        {
            _queue.Add(publish);
            if (!_running)
            {
                _running = true;
                _ = Task.Run(RunRounds);
            }
        }
        return publish.Done.Task;
    }

    /// <summary>
    /// The loop. Each turn takes the publishes queued since the last one and does ONE flush that makes both the
    /// names of the previous turn's renames and the data of the new publishes durable; it then answers the previous
    /// turn and renames the new ones, whose names the next turn's flush covers. Under load each publish therefore
    /// costs a share of two flushes, each shared by two rounds.
    /// </summary>
    private void RunRounds()
    {
        List<Publish> renamed = [];
        var folders = new HashSet<string>(StringComparer.Ordinal);
        while (true)
        {
            List<Publish> next;
            lock (_gate)
            {
                if (_queue.Count == 0 && renamed.Count == 0)
                {
                    _running = false;
                    return;
                }
                next = _queue;
                _queue = new List<Publish>();
            }
            try
            {
                foreach (var publish in next) publish.Hold?.Wait();
                Flush(next, folders);
            }
            catch (Exception e)
            {
                // Neither the previous names nor the new data are known to be durable: nothing of either is answered yes.
                foreach (var publish in renamed) publish.Done.TrySetException(e);
                foreach (var publish in next) publish.Done.TrySetException(e);
                renamed = [];
                folders.Clear();
                continue;
            }
            foreach (var publish in renamed)
                if (publish.Error is { } error) publish.Done.TrySetException(error);
                else publish.Done.TrySetResult(publish.Moved);
            folders.Clear();
            Rename(next, folders);
            renamed = next;
            if (next.Count == 0) continue;
            Interlocked.Increment(ref _rounds);
            Interlocked.Add(ref _published, next.Count);
        }
    }

    /// <summary>
    /// One flush for <paramref name="folders"/> (names renamed into them) and the data of <paramref name="round"/>:
    /// one syncfs, or, for a single operation or while the disk is <see cref="Contended"/>, each fsync on its own.
    /// </summary>
    private void Flush(List<Publish> round, HashSet<string> folders)
    {
        var unsynced = new List<SafeFileHandle>();
        foreach (var publish in round)
            if (publish.Unsynced is { } handle) unsynced.Add(handle);
        var operations = unsynced.Count + folders.Count;
        if (operations == 0) return;
        if (operations > 1 && !Contended)
        {
            SyncFileSystem();
            return;
        }
        foreach (var handle in unsynced) RandomAccess.FlushToDisk(handle);
        foreach (var folder in folders) FileSync.SyncFolder(folder);
    }

    /// <summary>Renames each publish into place and collects the folders whose entries changed (or are waited on).</summary>
    private static void Rename(List<Publish> round, HashSet<string> folders)
    {
        foreach (var publish in round)
        {
            var folder = Path.GetDirectoryName(publish.Target)!;
            folders.Add(folder);
            if (publish.Source is null) continue;
            try
            {
                if (!Directory.Exists(folder))
                {
                    Directory.CreateDirectory(folder);
                    // The new folder's own name lives in its parent.
                    folders.Add(Path.GetDirectoryName(folder)!);
                }
                File.Move(publish.Source, publish.Target, overwrite: false);
                publish.Moved = true;
            }
            catch (IOException) when (File.Exists(publish.Target))
            {
                // Same digest, same content: another writer published it first.
            }
            catch (Exception e)
            {
                publish.Error = e;
            }
        }
    }

    /// <summary>
    /// True while the kernel holds more than <see cref="ContendedBytes"/> waiting to be written back (any filesystem):
    /// then publishes fsync their own files instead of sharing a syncfs. Read at most every 20 ms.
    /// </summary>
    public bool Contended
    {
        get
        {
            var now = Environment.TickCount64;
            if (now - Volatile.Read(ref _contendedCheckedAt) < 20) return Volatile.Read(ref _contended);
            var contended = _pendingWriteback() > ContendedBytes;
            Volatile.Write(ref _contended, contended);
            Volatile.Write(ref _contendedCheckedAt, now);
            return contended;
        }
    }

    /// <summary>The <c>Dirty</c> and <c>Writeback</c> lines of /proc/meminfo, in bytes (0 when unreadable).</summary>
    internal static long PendingWritebackBytes()
    {
        try
        {
            long kib = 0;
            foreach (var line in File.ReadLines("/proc/meminfo"))
            {
                if (!line.StartsWith("Dirty:", StringComparison.Ordinal) &&
                    !line.StartsWith("Writeback:", StringComparison.Ordinal)) continue;
                var value = line.AsSpan(line.IndexOf(':') + 1).Trim();
                var space = value.IndexOf(' ');
                if (long.TryParse(space < 0 ? value : value[..space], out var n)) kib += n;
            }
            return kib * 1024;
        }
        catch (IOException)
        {
            return 0;
        }
    }

    /// <summary>Publishes queued and not yet taken by a round.</summary>
    internal int Queued
    {
        get
        {
            lock (_gate) return _queue.Count;
        }
    }

    /// <summary>
    /// For tests: occupies the rounds until the result is disposed, so that publishes queued meanwhile share the next
    /// round.
    /// </summary>
    internal IDisposable HoldRounds(string anyPublishedPath)
    {
        var release = new ManualResetEventSlim();
        _ = Enqueue(new Publish(null, null, anyPublishedPath, release));
        while (Queued > 0) Thread.Sleep(1);
        return release.AsReleaser();
    }

    private void SyncFileSystem()
    {
        if (syncfs(_root) != 0)
            throw new IOException($"syncfs failed (errno {Marshal.GetLastPInvokeError()})");
    }

    public void Dispose() => FileSync.Close(_root);

    [DllImport("libc", SetLastError = true)]
    private static extern int syncfs(int fd);

}
