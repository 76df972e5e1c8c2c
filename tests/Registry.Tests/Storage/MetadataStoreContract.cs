using System.Text;
using Registry.Storage.Metadata;
using Registry.Storage.Metadata.Postgres;
using Registry.Storage.Model;
using Registry.Tests.Stack;

namespace Registry.Tests.Storage;

/// <summary>
/// What every metadata store MUST do, whatever its engine: one class per implementation below runs these same tests,
/// each on a fresh store (SQLite: a new file; PostgreSQL: a new database on the test stack).
/// </summary>
public abstract class MetadataStoreContract : IAsyncLifetime
{
    private readonly List<object> _opened = [];

    /// <summary>A new, empty store; the test class disposes it.</summary>
    protected abstract Task<IMetadataStore> OpenStoreAsync();

    protected async Task<IMetadataStore> StoreAsync()
    {
        var store = await OpenStoreAsync();
        _opened.Add(store);
        return store;
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public virtual async Task DisposeAsync()
    {
        foreach (var store in _opened)
            if (store is IAsyncDisposable asynchronous) await asynchronous.DisposeAsync();
            else ((IDisposable)store).Dispose();
    }

    private static readonly DateTimeOffset T0 = DateTimeOffset.FromUnixTimeMilliseconds(1_750_000_000_000);

    protected static RepositoryName Repo(string name) =>
        RepositoryName.TryParse(name, out var n) ? n : throw new ArgumentException(name);

    protected static Tag TagOf(string name) => Tag.TryParse(name, out var t) ? t : throw new ArgumentException(name);

    protected static Digest DigestOf(string content) => Digest.Compute(DigestAlgorithm.Sha256, Encoding.UTF8.GetBytes(content));

    protected static ManifestRecord Manifest(string content, string? artifactType = null, Digest? subject = null,
        DateTimeOffset? at = null) =>
        new(DigestOf(content), "application/vnd.oci.image.manifest.v1+json", content.Length, artifactType, subject, null,
            at ?? T0);

    protected static async Task<Digest> PutAsync(IMetadataStore store, RepositoryName repo, string content, params string[] tags)
    {
        var record = Manifest(content);
        var result = await store.PutManifestAsync(repo, record, [], tags.Select(TagOf).ToList(), default);
        result.Status.Should().Be(PutManifestStatus.Stored);
        return record.Digest;
    }

    private static async Task<List<string>> AllTagsAsync(IMetadataStore store, RepositoryName repo, int pageSize)
    {
        var all = new List<string>();
        string? last = null;
        while (true)
        {
            var page = await store.ListTagsAsync(repo, pageSize, last, default);
            all.AddRange(page.Items);
            if (!page.HasMore) return all;
            page.Items.Should().HaveCount(pageSize);
            last = page.Items[^1];
        }
    }

    [Fact]
    public async Task Every_change_to_tags_shows_in_the_next_listing()
    {
        var store = await StoreAsync();
        var repo = Repo("contract/app");
        var first = await PutAsync(store, repo, "one", "b", "a");
        (await AllTagsAsync(store, repo, 100)).Should().Equal("a", "b");

        await PutAsync(store, repo, "two", "c");
        (await AllTagsAsync(store, repo, 100)).Should().Equal("a", "b", "c");

        (await store.DeleteTagAsync(repo, TagOf("b"), T0, default)).Should().BeTrue();
        (await AllTagsAsync(store, repo, 100)).Should().Equal("a", "c");

        (await store.DeleteManifestAsync(repo, first, T0, default)).Should().BeTrue();
        (await AllTagsAsync(store, repo, 100)).Should().Equal("c");
    }

    [Fact]
    public async Task Tag_pages_start_after_any_last_value()
    {
        var store = await StoreAsync();
        var repo = Repo("contract/pages");
        await PutAsync(store, repo, "m", "v1", "v2", "v3", "v4");
        (await AllTagsAsync(store, repo, 3)).Should().Equal("v1", "v2", "v3", "v4");

        var afterMissing = await store.ListTagsAsync(repo, 10, "v2a", default);
        afterMissing.Items.Should().Equal("v3", "v4");
        afterMissing.HasMore.Should().BeFalse();
        (await store.ListTagsAsync(repo, 10, "", default)).Items.Should().HaveCount(4);
        (await store.ListTagsAsync(repo, 10, "~", default)).Items.Should().BeEmpty();
        (await store.ListTagsAsync(repo, 0, null, default)).Items.Should().BeEmpty();
        (await store.ListTagsAsync(repo, 2, "v1", default)).Should().BeEquivalentTo(new { Items = new[] { "v2", "v3" }, HasMore = true });
    }

    [Fact]
    public async Task Tags_and_repositories_are_listed_in_byte_order_not_the_locale_s()
    {
        var store = await StoreAsync();
        // Byte order: '-' < '.' < digits < upper case < '_' < lower case; a locale collation sorts case and
        // punctuation differently.
        var names = new[] { "ab", "a_b", "a/b", "a.b", "a-b", "a0" };
        foreach (var name in names) await PutAsync(store, Repo(name), name, "Zeta", "alpha", "_x", "Alpha", "9", "a-b", "a.b");

        (await store.ListRepositoriesAsync(100, null, default)).Items.Should().Equal("a-b", "a.b", "a/b", "a0", "a_b", "ab");
        (await store.ListRepositoriesAsync(2, "a.b", default)).Items.Should().Equal("a/b", "a0");
        (await AllTagsAsync(store, Repo("ab"), 100)).Should().Equal("9", "Alpha", "Zeta", "_x", "a-b", "a.b", "alpha");
        (await store.ListTagsAsync(Repo("ab"), 2, "Zeta", default)).Items.Should().Equal("_x", "a-b");
    }

    [Fact]
    public async Task A_filtered_catalog_page_is_full_whenever_more_visible_names_exist()
    {
        var store = await StoreAsync();
        foreach (var i in Enumerable.Range(0, 30)) await PutAsync(store, Repo($"team{i % 3}/app{i:D2}"), $"c{i}");

        var page = await store.ListRepositoriesAsync(4, null, default, name => name.Value.StartsWith("team1/", StringComparison.Ordinal));

        page.Items.Should().Equal("team1/app01", "team1/app04", "team1/app07", "team1/app10");
        page.HasMore.Should().BeTrue();
    }

    [Fact]
    public async Task Listing_while_tags_are_written_never_leaves_a_stale_list()
    {
        var store = await StoreAsync();
        var repo = Repo("contract/race");
        const int writers = 4, perWriter = 60;
        using var done = new CancellationTokenSource();
        var reader = Task.Run(async () =>
        {
            while (!done.IsCancellationRequested) await store.ListTagsAsync(repo, 100, null, default);
        });
        await Task.WhenAll(Enumerable.Range(0, writers).Select(w => Task.Run(async () =>
        {
            for (var i = 0; i < perWriter; i++) await PutAsync(store, repo, $"{w}-{i}", $"w{w}-{i:D3}");
        })));
        await done.CancelAsync();
        await reader;

        var all = await AllTagsAsync(store, repo, 1000);
        all.Should().HaveCount(writers * perWriter).And.BeInAscendingOrder(StringComparer.Ordinal);
    }

    [Fact]
    public async Task A_refused_manifest_leaves_no_repository_link_row_or_event()
    {
        var store = await StoreAsync();
        var repo = Repo("contract/refused");
        var missing = DigestOf("layer never pushed");
        var empty = DigestOf("{}");

        var result = await store.PutManifestAsync(repo, Manifest("refused"), [new ManifestReference(missing, ReferenceKind.Blob)],
            [TagOf("v1")], default, [new ProvidedBlob(empty, 2)]);

        result.Should().Be(new PutManifestResult(PutManifestStatus.MissingReference, missing));
        (await store.RepositoryExistsAsync(repo, default)).Should().BeFalse();
        (await store.GetBlobSizeAsync(empty, default)).Should().BeNull("the provided blob was linked in the refused transaction");
        (await store.GetManifestAsync(repo, Reference.Of(TagOf("v1")), default)).Should().BeNull();
        (await store.LatestEventIdAsync(default)).Should().Be(0);
    }

    [Fact]
    public async Task A_manifest_is_stored_once_its_references_are_in_the_repository()
    {
        var store = await StoreAsync();
        var repo = Repo("contract/refs");
        var layer = DigestOf("layer");
        await store.LinkBlobAsync(repo, layer, 5, T0, default);
        var child = await PutAsync(store, repo, "child");
        var references = new[] { new ManifestReference(layer, ReferenceKind.Blob), new ManifestReference(child, ReferenceKind.Manifest) };

        (await store.FindMissingReferenceAsync(repo, references, default)).Should().BeNull();
        (await store.FindMissingReferenceAsync(Repo("contract/other"), references, default)).Should().Be(layer);
        var result = await store.PutManifestAsync(repo, Manifest("parent"), references, [TagOf("latest")], default);

        result.Status.Should().Be(PutManifestStatus.Stored);
        (await store.GetManifestAsync(repo, Reference.Of(TagOf("latest")), default))!.Digest.Should().Be(DigestOf("parent"));
        (await store.GetLinkedBlobSizeAsync(repo, layer, default)).Should().Be(5);
        (await store.FindLinkedBlobSizeAsync(layer, _ => true, default)).Should().Be(5);
        (await store.FindLinkedBlobSizeAsync(layer, _ => false, default)).Should().BeNull();
    }

    [Fact]
    public async Task Referrers_are_listed_in_digest_order_and_filtered_by_artifact_type()
    {
        var store = await StoreAsync();
        var repo = Repo("contract/referrers");
        var subject = await PutAsync(store, repo, "subject", "v1");
        var referrers = Enumerable.Range(0, 5)
            .Select(i => Manifest($"sig{i}", i % 2 == 0 ? "application/vnd.example.sig" : "application/vnd.example.sbom", subject))
            .ToList();
        foreach (var referrer in referrers) (await store.PutManifestAsync(repo, referrer, [], [], default)).Status.Should().Be(PutManifestStatus.Stored);
        var ordered = referrers.Select(r => r.Digest.ToString()).Order(StringComparer.Ordinal).ToList();

        var all = await store.ListReferrersAsync(repo, subject, null, 10, null, default);
        var page = await store.ListReferrersAsync(repo, subject, null, 2, ordered[0], default);
        var signatures = await store.ListReferrersAsync(repo, subject, "application/vnd.example.sig", 10, null, default);

        all.Items.Select(r => r.Digest.ToString()).Should().Equal(ordered);
        page.Items.Select(r => r.Digest.ToString()).Should().Equal(ordered[1], ordered[2]);
        page.HasMore.Should().BeTrue();
        signatures.Items.Should().HaveCount(3).And.OnlyContain(r => r.ArtifactType == "application/vnd.example.sig");
    }

    [Fact]
    public async Task Every_change_appends_its_events_in_order()
    {
        var store = await StoreAsync();
        var repo = Repo("contract/events");
        var first = await PutAsync(store, repo, "one", "v1");
        await PutAsync(store, repo, "two", "v1");
        await store.DeleteManifestAsync(repo, first, T0, default);
        await store.LinkBlobAsync(repo, DigestOf("blob"), 4, T0, default);
        await store.UnlinkBlobAsync(repo, DigestOf("blob"), T0, default);

        var events = await store.ReadEventsAsync(0, 100, default);

        events.Select(e => e.Action).Should().Equal(EventActions.RepositoryCreate, EventActions.ManifestPush,
            EventActions.TagCreate, EventActions.ManifestPush, EventActions.TagUpdate, EventActions.ManifestDelete,
            EventActions.BlobDelete);
        events.Select(e => e.Id).Should().BeInAscendingOrder().And.OnlyHaveUniqueItems();
        (await store.LatestEventIdAsync(default)).Should().Be(events[^1].Id);
        (await store.ReadEventsAsync(events[2].Id, 2, default)).Select(e => e.Id).Should().Equal(events[3].Id, events[4].Id);
        (await store.PruneEventsAsync(T0.AddMilliseconds(1), default)).Should().Be(events.Count);
    }

    [Fact]
    public async Task A_delivery_cursor_write_does_not_count_as_a_change()
    {
        var store = await StoreAsync();
        var cursors = (IDeliveryCursors)store;
        var change = store.WaitForChangeAsync(CancellationToken.None);

        await cursors.SetCursorAsync("hook", 42, CancellationToken.None);
        await cursors.SetCursorAsync("hook", 43, CancellationToken.None);

        (await cursors.GetCursorAsync("hook", CancellationToken.None)).Should().Be(43);
        (await cursors.GetCursorAsync("never", CancellationToken.None)).Should().BeNull();
        change.IsCompleted.Should().BeFalse("acknowledging an event must not wake every consumer");
    }

    [Fact]
    public async Task A_committed_change_wakes_the_waiters()
    {
        var store = await StoreAsync();
        var change = store.WaitForChangeAsync(CancellationToken.None);

        await PutAsync(store, Repo("contract/wake"), "m", "v1");

        await change.WaitAsync(TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task Upload_sessions_are_counted_per_client_and_listed_by_age()
    {
        var store = await StoreAsync();
        var old = new UploadSession(UploadId.New(), Repo("contract/up"), T0, "address:10.0.0.1", "alice");
        var young = new UploadSession(UploadId.New(), Repo("contract/up"), T0.AddHours(2), "address:10.0.0.1");
        await store.CreateUploadAsync(old, default);
        await store.CreateUploadAsync(young, default);

        (await store.GetUploadAsync(old.Id, default)).Should().Be(old);
        (await store.CountUploadsAsync(default)).Should().Be(2);
        (await store.CountUploadsByClientAsync("address:10.0.0.1", default)).Should().Be(2);
        (await store.ListUploadsStartedBeforeAsync(T0.AddHours(1), default)).Should().Equal(old.Id);
        await store.DeleteUploadAsync(old.Id, default);
        (await store.GetUploadAsync(old.Id, default)).Should().BeNull();
        (await store.GetStatisticsAsync(default)).Uploads.Should().Be(1);
    }

    [Fact]
    public async Task Links_younger_than_the_grace_period_are_kept_by_the_sweep()
    {
        var store = await StoreAsync();
        var gc = (IGarbageCollectionStore)store;
        var repo = Repo("contract/grace");
        var loose = DigestOf("loose");
        await store.LinkBlobAsync(repo, loose, 5, T0, default);

        (await gc.SweepLinksAsync(repo, T0, dryRun: false, default)).Should().BeEmpty("linked at the cutoff itself");
        (await gc.SweepLinksAsync(repo, T0.AddSeconds(1), dryRun: true, default)).Should().Equal(loose);
        (await store.GetLinkedBlobSizeAsync(repo, loose, default)).Should().Be(5, "a dry run deletes nothing");
        await store.LinkBlobAsync(repo, loose, 5, T0.AddMinutes(1), default);
        (await gc.SweepLinksAsync(repo, T0.AddSeconds(1), dryRun: false, default)).Should().BeEmpty("linking again renewed it");
        (await gc.SweepLinksAsync(repo, T0.AddMinutes(2), dryRun: false, default)).Should().Equal(loose);
        (await store.GetLinkedBlobSizeAsync(repo, loose, default)).Should().BeNull();
    }

    [Fact]
    public async Task Only_unreferenced_blobs_are_tombstoned_and_tombstones_are_cleared()
    {
        var store = await StoreAsync();
        var gc = (IGarbageCollectionStore)store;
        var repo = Repo("contract/tomb");
        var kept = DigestOf("kept");
        var gone = DigestOf("gone");
        await store.LinkBlobAsync(repo, kept, 4, T0, default);
        await store.LinkBlobAsync(repo, gone, 4, T0, default);
        await store.UnlinkBlobAsync(repo, gone, T0, default);

        (await gc.ListUnreferencedBlobsAsync(default)).Should().Equal(new BlobRecord(gone, 4));
        (await gc.TombstoneBlobsAsync([kept, gone], T0, default)).Should().Equal(new BlobRecord(gone, 4));

        (await store.GetBlobSizeAsync(gone, default)).Should().BeNull();
        (await gc.ListTombstonesAsync(default)).Should().Equal(gone);
        (await gc.ListRecordedDigestsAsync(default)).Should().BeEquivalentTo([kept]);
        await gc.ClearTombstonesAsync([gone], default);
        (await gc.ListTombstonesAsync(default)).Should().BeEmpty();
    }

    [Fact]
    public async Task Children_of_a_tagged_index_and_referrers_of_a_live_subject_are_reachable()
    {
        var store = await StoreAsync();
        var gc = (IGarbageCollectionStore)store;
        var repo = Repo("contract/mark");
        var child = await PutAsync(store, repo, "child");
        var orphan = await PutAsync(store, repo, "orphan");
        await store.PutManifestAsync(repo, Manifest("index"), [new ManifestReference(child, ReferenceKind.Manifest)],
            [TagOf("v1")], default);
        await store.PutManifestAsync(repo, Manifest("signature", "application/vnd.example.sig", DigestOf("index")), [], [], default);

        var (reachable, unreachable) = await gc.MarkManifestsAsync(repo, T0.AddDays(1), [], default);
        var swept = await gc.SweepManifestsAsync(repo, T0.AddDays(1), [orphan, child], T0.AddDays(1), default);

        reachable.Should().Be(3);
        unreachable.Should().Equal(orphan);
        swept.Should().Equal(orphan);
        (await gc.MarkManifestsAsync(repo, T0.AddDays(1), [TagOf("v1")], default)).Reachable.Should().Be(0);
        var plan = await gc.PlanAsync(new Dictionary<RepositoryName, IReadOnlyCollection<Tag>> { [repo] = [TagOf("v1")] },
            T0.AddDays(1), T0, default);
        plan.Repositories.Should().ContainSingle().Which.Manifests.Should().HaveCount(3, "without v1 nothing left is reachable");
        (await store.GetManifestAsync(repo, Reference.Of(TagOf("v1")), default)).Should().NotBeNull("a plan changes nothing");
    }

    [Fact]
    public async Task Gc_runs_are_kept_finished_interrupted_and_pruned()
    {
        var store = await StoreAsync();
        var gc = (IGarbageCollectionStore)store;
        var first = await gc.StartGcRunAsync(dryRun: true, "api", T0, default);
        await gc.FinishGcRunAsync(first, GcRunStatus.Succeeded, """{"swept":0}""", T0.AddSeconds(1), default);
        var second = await gc.StartGcRunAsync(dryRun: false, "schedule", T0.AddSeconds(2), default);
        var third = await gc.StartGcRunAsync(dryRun: false, "schedule", T0.AddSeconds(3), default);
        await gc.FinishGcRunAsync(third, GcRunStatus.Failed, "{}", T0.AddSeconds(4), default);

        (await gc.GetGcRunAsync(first, default)).Should().Be(new GcRunRecord(first, true, "api", T0, T0.AddSeconds(1),
            GcRunStatus.Succeeded, """{"swept":0}"""));
        (await gc.InterruptGcRunsAsync(T0.AddSeconds(5), default)).Should().Be(1);
        (await gc.GetGcRunAsync(second, default))!.Status.Should().Be(GcRunStatus.Interrupted);
        await gc.PruneGcRunsAsync(2, default);
        (await gc.ListGcRunsAsync(10, default)).Select(r => r.Id).Should().Equal(third, second);
    }

    [Fact]
    public async Task Usage_counts_content_held_by_one_repository_as_unique_and_by_several_as_shared()
    {
        var store = await StoreAsync();
        var usage = (IStorageUsage)store;
        await store.LinkBlobAsync(Repo("usage/a"), DigestOf("shared"), 100, T0, default);
        await store.LinkBlobAsync(Repo("usage/b"), DigestOf("shared"), 100, T0, default);
        await store.LinkBlobAsync(Repo("usage/a"), DigestOf("own"), 10, T0, default);

        (await usage.GetTotalUsageAsync(default)).Should().Be(new TotalUsage(2, 110));
        (await usage.ListRepositoryUsageAsync(10, null, default)).Items.Should().Equal(
            new RepositoryUsage("usage/a", 10, 100), new RepositoryUsage("usage/b", 0, 100));
        (await usage.GetRepositoryUsageAsync(["usage/b", "usage/none"], default)).Should().ContainSingle()
            .Which.Value.Should().Be(new RepositoryUsage("usage/b", 0, 100));
        (await store.GetStatisticsAsync(default)).Should().Be(new StoreStatistics(2, 0, 2, 110, 0));
    }

    [Fact]
    public async Task A_repository_is_imported_once_and_keeps_the_tags_it_has()
    {
        var store = await StoreAsync();
        var imports = (IDistributionImportStore)store;
        var repo = Repo("contract/import");
        var layer = DigestOf("imported layer");
        var manifest = Manifest("imported");
        var import = new RepositoryImport(repo, [(layer, 14)],
            [new ImportedManifest(manifest, [new ManifestReference(layer, ReferenceKind.Blob)])],
            [new ImportedTag(TagOf("v1"), manifest.Digest, T0)]);

        (await imports.ImportRepositoryAsync(import, "/old", T0, default)).Should().BeTrue();
        (await imports.ImportRepositoryAsync(import, "/old", T0, default)).Should().BeFalse();

        (await imports.IsRepositoryImportedAsync(repo, default)).Should().BeTrue();
        (await store.GetManifestAsync(repo, Reference.Of(TagOf("v1")), default))!.Digest.Should().Be(manifest.Digest);
        (await store.ReadEventsAsync(0, 10, default)).Select(e => e.Action).Should().Equal(
            EventActions.RepositoryCreate, EventActions.ManifestPush, EventActions.TagCreate);
        var listed = new List<(RepositoryName, Digest)>();
        await foreach (var item in store.ListManifestsAsync(default)) listed.Add(item);
        listed.Should().Equal((repo, manifest.Digest));
        (await store.CheckIntegrityAsync(default)).Should().BeEmpty();
    }
}

public sealed class SqliteMetadataStoreContractTests : MetadataStoreContract
{
    private readonly string _folder = Directory.CreateTempSubdirectory("contract-").FullName;

    protected override Task<IMetadataStore> OpenStoreAsync() =>
        Task.FromResult<IMetadataStore>(new SqliteMetadataStore(Path.Combine(_folder, $"{Guid.NewGuid():N}.db"), durable: false));

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_folder, recursive: true);
    }
}

public sealed class PostgresMetadataStoreContractTests : MetadataStoreContract
{
    protected override async Task<IMetadataStore> OpenStoreAsync() =>
        await PostgresMetadataStore.OpenAsync(await PostgresStack.CreateDatabaseAsync());
}
