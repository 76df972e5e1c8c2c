using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace Registry.Storage.Durability;

/// <summary>
/// Group commit of publishes into one filesystem. A publish moves a file written under <c>tmp/</c> (or
/// <c>uploads/</c>) to its content address so that it survives a power loss: its data is made durable, then it is
/// renamed, then the new name is made durable. Concurrent publishes are done in rounds, one round at a time, each
/// taking every publish queued before it starts:
/// <list type="number">
/// <item>the data of every file in the round that is not on disk yet: one <c>fdatasync</c> when there is one, else one
/// <c>syncfs</c> of the filesystem for all of them;</item>
/// <item>every rename of the round;</item>
/// <item>the names: one <c>fsync</c> of the folder when the round touched one folder, else one <c>syncfs</c>.</item>
/// </list>
/// So each publish still sees "data durable, then rename, then name durable", and N concurrent small pushes cost two
/// waits for the disk instead of 2N. Publishes queued while a round runs form the next one.
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
    private const int ReadOnly = 0;
    private static readonly int Directory = RuntimeInformation.ProcessArchitecture is Architecture.Arm64 ? 0x4000 : 0x10000;
    private const int CloseOnExec = 0x80000;

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
        _root = open(Encoding.UTF8.GetBytes(root + "\0"), ReadOnly | Directory | CloseOnExec);
        if (_root < 0) throw new IOException($"cannot open {root} (errno {Marshal.GetLastPInvokeError()})");
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

    private void RunRounds()
    {
        while (true)
        {
            List<Publish> round;
            lock (_gate)
            {
                if (_queue.Count == 0)
                {
                    _running = false;
                    return;
                }
                round = _queue;
                _queue = new List<Publish>();
            }
            try
            {
                Run(round);
                Interlocked.Increment(ref _rounds);
                Interlocked.Add(ref _published, round.Count);
                foreach (var publish in round)
                    if (publish.Error is { } error) publish.Done.TrySetException(error);
                    else publish.Done.TrySetResult(publish.Moved);
            }
            catch (Exception e)
            {
                foreach (var publish in round) publish.Done.TrySetException(e);
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

    private void Run(List<Publish> round)
    {
        foreach (var publish in round) publish.Hold?.Wait();
        var unsynced = new List<SafeFileHandle>();
        foreach (var publish in round)
            if (publish.Unsynced is { } handle) unsynced.Add(handle);
        if (unsynced.Count == 1 || (unsynced.Count > 1 && Contended))
            foreach (var handle in unsynced) RandomAccess.FlushToDisk(handle);
        else if (unsynced.Count > 1) SyncFileSystem();

        var folders = new HashSet<string>(StringComparer.Ordinal);
        foreach (var publish in round)
        {
            var folder = Path.GetDirectoryName(publish.Target)!;
            folders.Add(folder);
            if (publish.Source is null) continue;
            try
            {
                if (!System.IO.Directory.Exists(folder))
                {
                    System.IO.Directory.CreateDirectory(folder);
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
        if (folders.Count > 1 && !Contended) SyncFileSystem();
        else foreach (var folder in folders) FileSync.SyncFolder(folder);
    }

    private void SyncFileSystem()
    {
        if (syncfs(_root) != 0)
            throw new IOException($"syncfs failed (errno {Marshal.GetLastPInvokeError()})");
    }

    public void Dispose() => _ = close(_root);

    [DllImport("libc", SetLastError = true)]
    private static extern int open(byte[] path, int flags);

    [DllImport("libc", SetLastError = true)]
    private static extern int syncfs(int fd);

    [DllImport("libc", SetLastError = false)]
    private static extern int close(int fd);
}
