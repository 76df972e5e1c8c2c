using System.Collections.Concurrent;
using System.IO.Pipelines;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Data.Sqlite;
using Registry.Storage;
using Registry.Storage.Blobs;
using Registry.Storage.Durability;
using Registry.Storage.Metadata;
using Registry.Storage.Model;

namespace Registry.Tests.Storage;

/// <summary>
/// Group commit (issue #13): concurrent writes share one metadata transaction and one WAL fsync, concurrent small
/// publishes share publish rounds, and every write still means exactly what it meant alone.
/// </summary>
public sealed class GroupCommitTests : IDisposable
{
    private const int Writers = 200;
    private readonly StorageLayout _layout;

    public GroupCommitTests()
    {
        _layout = new StorageLayout(Directory.CreateTempSubdirectory("group-commit-").FullName);
        _layout.Initialise();
    }

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(_layout.Root, recursive: true);
    }

    private static RepositoryName Repo(string name) =>
        RepositoryName.TryParse(name, out var repository) ? repository : throw new ArgumentException(name);

    private static Digest DigestOf(byte[] bytes) => Digest.Compute(DigestAlgorithm.Sha256, bytes);

    private static byte[] Content(int i) => Encoding.UTF8.GetBytes($"content {i} {Guid.NewGuid()}");

    /// <summary>Starts every call at once, from pool threads, so that they queue behind each other.</summary>
    private static Task<T[]> AllAtOnce<T>(int count, Func<int, Task<T>> call)
    {
        var start = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var tasks = Enumerable.Range(0, count).Select(i => Task.Run(async () =>
        {
            await start.Task;
            return await call(i);
        })).ToArray();
        start.SetResult();
        return Task.WhenAll(tasks);
    }

    /// <summary>
    /// Starts every call at once while <paramref name="hold"/> occupies the loop, waits until
    /// <paramref name="expectedQueued"/> of them are queued behind it, then lets them go: they form one group.
    /// </summary>
    private static async Task<T[]> QueuedBehind<T>(IDisposable? hold, Func<int> queued, int expectedQueued, int count,
        Func<int, Task<T>> call)
    {
        hold.Should().NotBeNull("group commit is on");
        var all = AllAtOnce(count, call);
        while (queued() < expectedQueued && !all.IsCompleted) await Task.Delay(5);
        hold!.Dispose();
        return await all;
    }

    [Fact]
    public async Task Concurrent_links_share_transactions_and_every_one_is_committed()
    {
        using var store = new SqliteMetadataStore(_layout.DatabasePath, durable: true);
        var blobs = Enumerable.Range(0, Writers).Select(i => DigestOf(Content(i))).ToArray();

        await QueuedBehind(store.HoldWrites(), () => store.QueuedWrites, Writers, Writers, async i =>
        {
            await store.LinkBlobAsync(Repo($"team/app{i % 10}"), blobs[i], 100 + i, DateTimeOffset.UtcNow, default);
            return true;
        });

        for (var i = 0; i < Writers; i++)
            (await store.GetLinkedBlobSizeAsync(Repo($"team/app{i % 10}"), blobs[i], default)).Should().Be(100 + i);
        var (groups, writes) = store.GroupCommits;
        writes.Should().Be(1 + Writers, "the held write and every link");
        groups.Should().Be(2, "the links queued while a transaction ran were committed in the next one");
    }

    [Fact]
    public async Task A_refused_manifest_in_a_group_leaves_nothing_while_the_others_of_the_group_commit()
    {
        using var store = new SqliteMetadataStore(_layout.DatabasePath, durable: true);
        var layer = DigestOf(Content(-1));
        await store.LinkBlobAsync(Repo("good/app"), layer, 10, DateTimeOffset.UtcNow, default);
        var missing = DigestOf(Content(-2));
        var before = await store.LatestEventIdAsync(default);

        var results = await QueuedBehind(store.HoldWrites(), () => store.QueuedWrites, Writers, Writers, async i =>
        {
            var refused = i % 2 == 1;
            var manifest = new ManifestRecord(DigestOf(Content(i)), "application/vnd.oci.image.manifest.v1+json", 300, null,
                null, null, DateTimeOffset.UtcNow);
            Tag.TryParse($"t{i}", out var tag).Should().BeTrue();
            var result = await store.PutManifestAsync(refused ? Repo($"bad/app{i}") : Repo("good/app"), manifest,
                [new ManifestReference(refused ? missing : layer, ReferenceKind.Blob)], [tag], default);
            return (Refused: refused, Result: result, Manifest: manifest);
        });

        foreach (var (refused, result, manifest) in results)
        {
            if (refused)
            {
                result.Status.Should().Be(PutManifestStatus.MissingReference);
                result.Missing.Should().Be(missing);
                continue;
            }
            result.Status.Should().Be(PutManifestStatus.Stored);
            (await store.GetManifestAsync(Repo("good/app"), Reference.Of(manifest.Digest), default)).Should().NotBeNull();
        }
        for (var i = 1; i < Writers; i += 2)
            (await store.RepositoryExistsAsync(Repo($"bad/app{i}"), default)).Should().BeFalse("a refused push creates nothing");
        var events = await store.ReadEventsAsync(before, 10 * Writers, default);
        events.Should().NotContain(e => e.Repository.StartsWith("bad/"), "a refused push leaves no event");
        events.Should().HaveCount(Writers, "each stored manifest has its push event and its tag event")
            .And.BeInAscendingOrder(e => e.Id);
        var (groups, writes) = store.GroupCommits;
        writes.Should().Be(2 + Writers / 2, "the first link, the held write and the stored manifests are kept, not the refused");
        groups.Should().Be(3, "the refused writes were rolled back inside the one shared transaction of all the manifests");
    }

    /// <summary>
    /// Frames in the WAL now: mxFrame, at offset 16 of the WAL-index header that starts the -shm file, in native byte
    /// order (SQLite's walformat.html). The WAL file's length cannot tell: SQLite reuses the file from its start.
    /// </summary>
    private static long WalFrames(string shm)
    {
        using var file = new FileStream(shm, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        Span<byte> header = stackalloc byte[20];
        file.ReadExactly(header);
        return BitConverter.ToUInt32(header[16..]);
    }

    [Fact]
    public async Task Under_a_stream_of_writes_checkpoints_run_beside_the_writer_and_the_WAL_starts_over()
    {
        var linked = new ConcurrentBag<(RepositoryName Repository, Digest Digest, int Size)>();
        var sampling = new object();
        var shm = _layout.DatabasePath + "-shm";
        long maxFrames = 0, lastFrames = 0, restarts = 0;
        using (var store = new SqliteMetadataStore(_layout.DatabasePath, durable: true))
        {
            var next = 0;
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
            // Eight writers that never pause, as a CI farm's pushes: the WAL can only start over if the writer itself
            // finishes each checkpoint the checkpointer began.
            await Task.WhenAll(Enumerable.Range(0, 8).Select(writer => Task.Run(async () =>
            {
                while (store.Checkpoints.CatchUps < 6 && !timeout.IsCancellationRequested)
                {
                    var i = Interlocked.Increment(ref next);
                    var (repository, digest) = (Repo($"ci/app{writer}"), DigestOf(Content(i)));
                    await store.LinkBlobAsync(repository, digest, i, DateTimeOffset.UtcNow, default);
                    linked.Add((repository, digest, i));
                    lock (sampling)
                    {
                        var frames = WalFrames(shm);
                        if (frames < lastFrames) restarts++;
                        lastFrames = frames;
                        maxFrames = Math.Max(maxFrames, frames);
                    }
                }
            })));

            var (passes, catchUps) = store.Checkpoints;
            catchUps.Should().BeGreaterThanOrEqualTo(6, "the writer caught up after the checkpointer's passes");
            passes.Should().BeGreaterThanOrEqualTo(catchUps, "the writer catches up only after a pass of the checkpointer");
        }
        restarts.Should().BeGreaterThanOrEqualTo(3, "the WAL starts over after the writer catches up");
        maxFrames.Should().BeLessThanOrEqualTo(SqliteMetadataStore.WriterCheckpointPages + 1024,
            "the writer's own checkpoint bounds the WAL even when the checkpointer falls behind");

        using var reopened = new SqliteMetadataStore(_layout.DatabasePath, durable: true);
        foreach (var (repository, digest, size) in linked)
            (await reopened.GetLinkedBlobSizeAsync(repository, digest, default)).Should().Be(size);
    }

    [Fact]
    public async Task A_store_whose_checkpointer_ran_may_be_disposed_twice()
    {
        // The host disposes a store registered under two services twice; the second must be a no-op.
        var store = new SqliteMetadataStore(_layout.DatabasePath, durable: true);
        await store.LinkBlobAsync(Repo("twice/app"), DigestOf(Content(0)), 1, DateTimeOffset.UtcNow, default);
        for (var waited = 0; store.Checkpoints.Passes == 0 && waited < 3000; waited++) await Task.Delay(10);
        store.Checkpoints.Passes.Should().BeGreaterThan(0, "a commit starts a pass of the checkpointer");
        store.Dispose();
        store.Invoking(s => s.Dispose()).Should().NotThrow();
    }

    [Fact]
    public async Task A_write_queued_after_a_store_is_disposed_is_refused()
    {
        var store = new SqliteMetadataStore(_layout.DatabasePath, durable: true);
        store.Dispose();

        var link = () => store.LinkBlobAsync(Repo("late/app"), DigestOf(Content(0)), 1, DateTimeOffset.UtcNow, default).AsTask();

        await link.Should().ThrowAsync<ObjectDisposedException>();
    }

    /// <summary>Pushes <see cref="Writers"/> distinct 4 KiB blobs queued behind a held round; each is committed and readable.</summary>
    private static async Task PushSmallBlobsBehindAHeldRound(FileSystemBlobStore store)
    {
        var contents = Enumerable.Range(0, Writers).Select(i => RandomNumberGenerator.GetBytes(4096)).ToArray();

        var results = await QueuedBehind(store.HoldPublishRounds(), () => store.QueuedPublishes, Writers, Writers, i =>
            store.StoreAsync(DigestOf(contents[i]), PipeReader.Create(new MemoryStream(contents[i])), contents[i].Length, default)
                .AsTask());

        results.Should().OnlyContain(r => r.Status == CommitStatus.Committed);
        for (var i = 0; i < Writers; i++)
            File.ReadAllBytes(store.PathOf(DigestOf(contents[i]))).Should().Equal(contents[i]);
    }

    [Fact]
    public async Task Concurrent_small_blobs_share_publish_rounds_and_every_one_is_readable()
    {
        using var store = new FileSystemBlobStore(_layout, flushToDisk: true, pendingWriteback: () => 0);
        await PushSmallBlobsBehindAHeldRound(store);

        Directory.EnumerateFiles(_layout.TempRoot).Should().BeEmpty("every temporary file was renamed into place");
        var (rounds, publishes) = store.PublishStatistics;
        publishes.Should().Be(1 + Writers, "the held round's wait and every blob");
        rounds.Should().Be(2, "the publishes queued while a round ran shared the next one");
    }

    [Fact]
    public async Task With_much_writeback_pending_elsewhere_each_file_is_fsynced_on_its_own_and_names_still_share_rounds()
    {
        using var store = new FileSystemBlobStore(_layout, flushToDisk: true, pendingWriteback: () => 1L << 40);
        await PushSmallBlobsBehindAHeldRound(store);

        Directory.EnumerateFiles(_layout.TempRoot).Should().BeEmpty();
        store.PublishStatistics.Rounds.Should().Be(2, "renames and folder fsyncs are still done in one shared round");
    }

    [Fact]
    public void The_pending_writeback_figure_is_read_from_the_kernel()
    {
        var expected = File.ReadLines("/proc/meminfo")
            .Where(l => l.StartsWith("Dirty:") || l.StartsWith("Writeback:"))
            .Sum(l => long.Parse(l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024);

        PublishRounds.PendingWritebackBytes().Should().BeCloseTo(expected, 256L << 20, "it moves while the machine writes");
    }

    [Fact]
    public async Task Concurrent_pushes_of_the_same_content_all_succeed_and_store_it_once()
    {
        using var store = new FileSystemBlobStore(_layout, flushToDisk: true);
        var content = RandomNumberGenerator.GetBytes(4096);
        var digest = DigestOf(content);

        var results = await QueuedBehind(store.HoldPublishRounds(), () => store.QueuedPublishes, 50, 50, _ =>
            store.StoreAsync(digest, PipeReader.Create(new MemoryStream(content)), content.Length, default).AsTask());

        results.Should().OnlyContain(r => r.Status == CommitStatus.Committed);
        File.ReadAllBytes(store.PathOf(digest)).Should().Equal(content);
        Directory.EnumerateFiles(_layout.TempRoot).Should().BeEmpty();
    }

    [Fact]
    public async Task A_wrong_digest_among_concurrent_pushes_publishes_nothing_for_it()
    {
        using var store = new FileSystemBlobStore(_layout, flushToDisk: true);
        var contents = Enumerable.Range(0, 40).Select(_ => RandomNumberGenerator.GetBytes(4096)).ToArray();
        var claimed = contents.Select((c, i) => i == 7 ? DigestOf(Content(i)) : DigestOf(c)).ToArray();

        var results = await QueuedBehind(store.HoldPublishRounds(), () => store.QueuedPublishes, contents.Length - 1,
            contents.Length, i => store.StoreAsync(claimed[i], PipeReader.Create(new MemoryStream(contents[i])), contents[i].Length, default).AsTask());

        results[7].Status.Should().Be(CommitStatus.DigestMismatch);
        File.Exists(store.PathOf(claimed[7])).Should().BeFalse();
        File.Exists(store.PathOf(DigestOf(contents[7]))).Should().BeFalse("content refused is not kept under its real digest either");
        results.Where((_, i) => i != 7).Should().OnlyContain(r => r.Status == CommitStatus.Committed);
        Directory.EnumerateFiles(_layout.TempRoot).Should().BeEmpty();
    }

    [Fact]
    public async Task Manifest_bytes_put_concurrently_are_all_published()
    {
        using var store = new FileSystemBlobStore(_layout, flushToDisk: true);
        var contents = Enumerable.Range(0, Writers).Select(Content).ToArray();

        await QueuedBehind(store.HoldPublishRounds(), () => store.QueuedPublishes, Writers, Writers, async i =>
        {
            await store.PutAsync(DigestOf(contents[i]), contents[i], default);
            return true;
        });

        for (var i = 0; i < Writers; i++)
            File.ReadAllBytes(store.PathOf(DigestOf(contents[i]))).Should().Equal(contents[i]);
        Directory.EnumerateFiles(_layout.TempRoot).Should().BeEmpty();
    }
}
