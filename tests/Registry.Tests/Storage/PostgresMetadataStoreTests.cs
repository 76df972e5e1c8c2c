using System.Collections.Concurrent;
using System.Text;
using Npgsql;
using Registry.Storage.Metadata;
using Registry.Storage.Metadata.Postgres;
using Registry.Storage.Model;
using Registry.Tests.Stack;

namespace Registry.Tests.Storage;

/// <summary>What only a store shared by several processes has to get right: start-up, outbox order, notification, leases.</summary>
public sealed class PostgresMetadataStoreTests : IAsyncLifetime
{
    private readonly List<PostgresMetadataStore> _stores = [];
    private string _database = "";

    public async Task InitializeAsync() => _database = await PostgresStack.CreateDatabaseAsync();

    public async Task DisposeAsync()
    {
        foreach (var store in _stores) await store.DisposeAsync();
    }

    private async Task<PostgresMetadataStore> OpenAsync()
    {
        var store = await PostgresMetadataStore.OpenAsync(_database);
        lock (_stores) _stores.Add(store);
        return store;
    }

    private static RepositoryName Repo(string name) => RepositoryName.TryParse(name, out var n) ? n : throw new ArgumentException(name);

    private static ManifestRecord Manifest(string content) =>
        new(Digest.Compute(DigestAlgorithm.Sha256, Encoding.UTF8.GetBytes(content)), "application/vnd.oci.image.manifest.v1+json",
            content.Length, null, null, null, DateTimeOffset.UtcNow);

    private async Task<int> SchemaVersionAsync()
    {
        await using var connection = new NpgsqlConnection(_database);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT version FROM schema_version", connection);
        var versions = new List<int>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync()) versions.Add(reader.GetInt32(0));
        return versions.Should().ContainSingle().Subject;
    }

    [Fact]
    public async Task Upload_sessions_opened_and_closed_by_many_pushes_on_two_replicas_at_once_all_succeed()
    {
        // What a busy registry does on every push: a session row written at POST, removed at the closing PUT. Each is
        // independent of every other row, so none may fail because others are written at the same time.
        var replicas = new[] { await OpenAsync(), await OpenAsync() };
        var failures = new ConcurrentQueue<string>();

        await Task.WhenAll(Enumerable.Range(0, 32).Select(worker => Task.Run(async () =>
        {
            var store = replicas[worker % 2];
            for (var i = 0; i < 15; i++)
            {
                var session = new UploadSession(UploadId.New(), Repo($"busy/w{worker}"), DateTimeOffset.UtcNow, "address:127.0.0.1", null);
                try
                {
                    await store.CreateUploadAsync(session, default);
                    await store.DeleteUploadAsync(session.Id, default);
                }
                catch (PostgresException e)
                {
                    failures.Enqueue($"{e.SqlState}: {e.MessageText}");
                }
            }
        })));

        failures.Should().BeEmpty();
        (await replicas[0].CountUploadsAsync(default)).Should().Be(0);
    }

    [Fact]
    public async Task Replicas_starting_together_on_an_empty_database_migrate_it_once()
    {
        var stores = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(OpenAsync)));

        (await SchemaVersionAsync()).Should().Be(PostgresMetadataStore.SchemaVersion);
        await stores[0].LinkBlobAsync(Repo("boot/app"), Manifest("x").Digest, 1, DateTimeOffset.UtcNow, default);
        (await stores[3].RepositoryExistsAsync(Repo("boot/app"), default)).Should().BeTrue();
    }

    [Fact]
    public async Task A_database_with_a_newer_schema_is_refused()
    {
        await OpenAsync();
        await using (var connection = new NpgsqlConnection(_database))
        {
            await connection.OpenAsync();
            await using var bump = new NpgsqlCommand("UPDATE schema_version SET version = version + 1", connection);
            await bump.ExecuteNonQueryAsync();
        }

        var open = () => PostgresMetadataStore.OpenAsync(_database);

        (await open.Should().ThrowAsync<InvalidOperationException>()).WithMessage("*newer than this registry*");
    }

    [Fact]
    public async Task A_reader_following_the_outbox_under_concurrent_writers_sees_every_event_once_in_order()
    {
        // Two stores (two connection pools, as two replicas) write at once; a third follows the outbox the way the
        // webhook dispatcher and the SSE stream do: read after the last id seen, never look back.
        var writers = new[] { await OpenAsync(), await OpenAsync() };
        var reader = await OpenAsync();
        const int tasks = 16, perTask = 25;
        var seen = new List<long>();
        using var stop = new CancellationTokenSource();
        var following = Task.Run(async () =>
        {
            long cursor = 0;
            while (true)
            {
                // Whether the writers are done is taken before each read: an empty batch ends the follow only if every
                // writer had finished before that read began. (Checked after it, a read that began before the last
                // commit and came back empty just after the writers finished ended the follow one batch early: the
                // test failed now and then.)
                var writersDone = stop.IsCancellationRequested;
                var batch = await reader.ReadEventsAsync(cursor, 100, default);
                foreach (var e in batch) seen.Add(e.Id);
                if (batch.Count > 0) cursor = batch[^1].Id;
                else if (writersDone) return;
            }
        });

        await Task.WhenAll(Enumerable.Range(0, tasks).Select(t => Task.Run(async () =>
        {
            for (var i = 0; i < perTask; i++)
            {
                var store = writers[(t + i) % 2];
                var tag = Tag.TryParse($"t{i}", out var parsed) ? parsed : default;
                (await store.PutManifestAsync(Repo($"outbox/r{t}"), Manifest($"{t}-{i}"), [], [tag], default))
                    .Status.Should().Be(PutManifestStatus.Stored);
            }
        })));
        await stop.CancelAsync();
        await following;

        var all = (await reader.ReadEventsAsync(0, 100_000, default)).Select(e => e.Id).ToList();
        // Per task: one repository.create, then per push manifest.push and tag.create.
        all.Should().HaveCount(tasks * (1 + 2 * perTask));
        var missing = all.Except(seen).ToList();
        seen.Should().Equal(all, "the follower must see every committed id, once, in order; it missed [{0}] and saw, " +
            "around them, [{1}]", string.Join(",", missing),
            string.Join(",", seen.Where(id => missing.Any(m => Math.Abs(id - m) < 4))));
    }

    [Fact]
    public async Task A_change_committed_by_one_replica_wakes_the_waiters_of_another()
    {
        var writer = await OpenAsync();
        var other = await OpenAsync();
        var change = other.WaitForChangeAsync(CancellationToken.None);

        await writer.PutManifestAsync(Repo("notify/app"), Manifest("n"), [], [], default);

        await change.WaitAsync(TimeSpan.FromSeconds(30));
        (await other.ReadEventsAsync(0, 10, default)).Should().NotBeEmpty();
    }

    private async Task<List<int>> ListeningBackendsAsync()
    {
        await using var connection = new NpgsqlConnection(_database);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("""
            SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN %' AND pid <> pg_backend_pid()
            """, connection);
        var pids = new List<int>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync()) pids.Add(reader.GetInt32(0));
        return pids;
    }

    [Fact]
    public async Task A_listener_whose_connection_is_killed_reconnects_and_hears_changes_again()
    {
        var listener = await OpenAsync();
        var writer = await OpenAsync();
        var before = await ListeningBackendsAsync();
        before.Should().HaveCount(2, "one listening connection per store");
        await using (var admin = new NpgsqlConnection(_database))
        {
            await admin.OpenAsync();
            foreach (var pid in before)
            {
                await using var kill = new NpgsqlCommand($"SELECT pg_terminate_backend({pid})", admin);
                await kill.ExecuteScalarAsync();
            }
        }
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        List<int> after;
        while ((after = await ListeningBackendsAsync()).Count < 2 || after.Intersect(before).Any())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException("the listeners did not reconnect");
            await Task.Delay(100);
        }
        await Task.Delay(100);
        var change = listener.WaitForChangeAsync(CancellationToken.None);

        await writer.PutManifestAsync(Repo("notify/reconnected"), Manifest("again"), [], [], default);

        await change.WaitAsync(TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task A_refused_manifest_notifies_nobody()
    {
        var writer = await OpenAsync();
        var other = await OpenAsync();
        var change = other.WaitForChangeAsync(CancellationToken.None);

        var result = await writer.PutManifestAsync(Repo("notify/refused"), Manifest("r"),
            [new ManifestReference(Manifest("missing").Digest, ReferenceKind.Blob)], [], default);
        await writer.SetCursorAsync("hook", 1, default);
        // A change after them: if the refused push had notified, its notification would have come first anyway, so
        // wait for this one and check nothing else was recorded.
        var later = other.WaitForChangeAsync(CancellationToken.None);

        result.Status.Should().Be(PutManifestStatus.MissingReference);
        change.IsCompleted.Should().BeFalse();
        await writer.LinkBlobAsync(Repo("notify/other"), Manifest("b").Digest, 1, DateTimeOffset.UtcNow, default);
        await later.WaitAsync(TimeSpan.FromSeconds(30));
        (await other.RepositoryExistsAsync(Repo("notify/refused"), default)).Should().BeFalse();
    }

    [Fact]
    public async Task A_lease_has_one_holder_until_it_is_released()
    {
        ILeaseStore a = await OpenAsync();
        ILeaseStore b = await OpenAsync();

        (await a.TryAcquireLeaseAsync("gc", "replica-a", TimeSpan.FromMinutes(5), default)).Should().BeTrue();
        (await b.TryAcquireLeaseAsync("gc", "replica-b", TimeSpan.FromMinutes(5), default)).Should().BeFalse();
        (await a.TryAcquireLeaseAsync("gc", "replica-a", TimeSpan.FromMinutes(5), default)).Should().BeTrue("a holder renews its own lease");
        (await b.GetLeaseHolderAsync("gc", default)).Should().Be("replica-a");
        (await b.TryAcquireLeaseAsync("webhooks", "replica-b", TimeSpan.FromMinutes(5), default)).Should().BeTrue("leases are independent");

        await b.ReleaseLeaseAsync("gc", "replica-b", default);
        (await a.GetLeaseHolderAsync("gc", default)).Should().Be("replica-a", "only the holder can release a lease");
        await a.ReleaseLeaseAsync("gc", "replica-a", default);
        (await a.GetLeaseHolderAsync("gc", default)).Should().BeNull();
        (await b.TryAcquireLeaseAsync("gc", "replica-b", TimeSpan.FromMinutes(5), default)).Should().BeTrue();
    }

    [Fact]
    public async Task An_expired_lease_can_be_taken_by_another_holder()
    {
        ILeaseStore a = await OpenAsync();
        ILeaseStore b = await OpenAsync();
        (await a.TryAcquireLeaseAsync("gc", "replica-a", TimeSpan.FromMilliseconds(1), default)).Should().BeTrue();
        // The holder stopped renewing (killed): once its time to live has passed on the database's clock, the lease is free.
        while (await b.GetLeaseHolderAsync("gc", default) is not null) await Task.Delay(10);

        (await b.TryAcquireLeaseAsync("gc", "replica-b", TimeSpan.FromMinutes(5), default)).Should().BeTrue();
        (await a.TryAcquireLeaseAsync("gc", "replica-a", TimeSpan.FromMinutes(5), default)).Should().BeFalse("its renewal came too late");
    }

    [Fact]
    public async Task Concurrent_holders_racing_for_a_free_lease_get_it_once()
    {
        var stores = new[] { await OpenAsync(), await OpenAsync() };
        var winners = new ConcurrentBag<string>();

        await Task.WhenAll(Enumerable.Range(0, 20).Select(i => Task.Run(async () =>
        {
            if (await stores[i % 2].TryAcquireLeaseAsync("dispatcher", $"holder-{i}", TimeSpan.FromMinutes(5), default))
                winners.Add($"holder-{i}");
        })));

        winners.Should().ContainSingle();
        (await stores[0].GetLeaseHolderAsync("dispatcher", default)).Should().Be(winners.Single());
    }
}
