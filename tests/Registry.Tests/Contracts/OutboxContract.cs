using Registry.Storage.Metadata;
using Registry.Storage.Model;
using static Registry.Tests.Contracts.Sample;

namespace Registry.Tests.Contracts;

/// <summary>
/// What every <see cref="IEventOutbox"/> (with <see cref="IDeliveryCursors"/>) promises: the events are exactly the
/// changes, ids increase in commit order, and a reader paging from its cursor misses nothing.
/// </summary>
public abstract class OutboxContract : MetadataContract
{
    private IEventOutbox Outbox => Store;

    private async Task<List<(string Action, string Repository, string? Digest, string? Tag)>> EventsAsync() =>
        (await Outbox.ReadEventsAsync(0, 1000, default)).Select(e => (e.Action, e.Repository, e.Digest, e.Tag)).ToList();

    [Fact]
    public async Task A_push_to_a_new_repository_appends_repository_manifest_and_tag_events_in_that_order()
    {
        var manifest = await PushAsync(Repo("a/app"), "{}", ["v1"]);
        var digest = manifest.Digest.ToString();

        (await EventsAsync()).Should().Equal(
            (EventActions.RepositoryCreate, "a/app", null, null),
            (EventActions.ManifestPush, "a/app", digest, "v1"),
            (EventActions.TagCreate, "a/app", digest, "v1"));
    }

    [Fact]
    public async Task A_pushed_event_carries_the_manifests_media_type_size_and_time()
    {
        var manifest = await PushAsync(Repo("a/app"), "{}", at: T0.AddMinutes(5));

        var push = (await Outbox.ReadEventsAsync(0, 10, default)).Single(e => e.Action == EventActions.ManifestPush);

        push.Should().BeEquivalentTo(new { At = T0.AddMinutes(5), MediaType = ImageManifest, Size = (long?)manifest.Size });
    }

    [Fact]
    public async Task Moving_a_tag_appends_an_update_and_repushing_it_unchanged_appends_no_tag_event()
    {
        await PushAsync(Repo("a/app"), "{\"v\":1}", ["latest"]);
        var second = await PushAsync(Repo("a/app"), "{\"v\":2}", ["latest"]);
        var before = (await EventsAsync()).Count;

        await PushAsync(Repo("a/app"), "{\"v\":2}", ["latest"]);

        var events = await EventsAsync();
        events.Should().Contain((EventActions.TagUpdate, "a/app", second.Digest.ToString(), "latest"));
        events.Skip(before).Select(e => e.Action).Should().Equal(EventActions.ManifestPush);
    }

    [Fact]
    public async Task Deleting_a_manifest_appends_a_tag_delete_per_tag_then_a_manifest_delete()
    {
        var manifest = await PushAsync(Repo("a/app"), "{}", ["b", "a"]);
        var before = (await EventsAsync()).Count;

        await Store.DeleteManifestAsync(Repo("a/app"), manifest.Digest, T0, default);

        var digest = manifest.Digest.ToString();
        (await EventsAsync()).Skip(before).Should().Equal(
            (EventActions.TagDelete, "a/app", digest, "a"),
            (EventActions.TagDelete, "a/app", digest, "b"),
            (EventActions.ManifestDelete, "a/app", digest, null));
    }

    [Fact]
    public async Task Deleting_a_tag_and_unlinking_a_blob_append_their_events()
    {
        var manifest = await PushAsync(Repo("a/app"), "{}", ["v1"]);
        await Store.LinkBlobAsync(Repo("a/app"), DigestOf("layer"), 5, T0, default);
        var before = (await EventsAsync()).Count;

        await Store.DeleteTagAsync(Repo("a/app"), Tag("v1"), T0, default);
        await Store.UnlinkBlobAsync(Repo("a/app"), DigestOf("layer"), T0, default);

        (await EventsAsync()).Skip(before).Should().Equal(
            (EventActions.TagDelete, "a/app", manifest.Digest.ToString(), "v1"),
            (EventActions.BlobDelete, "a/app", DigestOf("layer").ToString(), null));
    }

    [Fact]
    public async Task Changes_that_change_nothing_append_no_event()
    {
        await Store.LinkBlobAsync(Repo("a/app"), DigestOf("layer"), 5, T0, default);
        var before = await Outbox.LatestEventIdAsync(default);

        await Store.LinkBlobAsync(Repo("a/app"), DigestOf("layer"), 5, T0, default);
        await Store.DeleteTagAsync(Repo("a/app"), Tag("none"), T0, default);
        await Store.UnlinkBlobAsync(Repo("a/app"), DigestOf("other"), T0, default);

        (await Outbox.LatestEventIdAsync(default)).Should().Be(before);
    }

    [Fact]
    public async Task An_empty_outbox_has_latest_id_zero()
    {
        (await Outbox.LatestEventIdAsync(default)).Should().Be(0);
    }

    [Fact]
    public async Task Event_ids_increase_and_the_latest_is_the_newest()
    {
        for (var i = 0; i < 5; i++) await PushAsync(Repo($"r{i}/app"), "{}", ["v1"]);

        var events = await Outbox.ReadEventsAsync(0, 1000, default);

        events.Select(e => e.Id).Should().BeInAscendingOrder().And.OnlyHaveUniqueItems();
        (await Outbox.LatestEventIdAsync(default)).Should().Be(events[^1].Id);
    }

    [Fact]
    public async Task Paging_from_a_cursor_returns_every_event_once()
    {
        for (var i = 0; i < 5; i++) await PushAsync(Repo($"r{i}/app"), "{}", ["v1"]);
        var all = await Outbox.ReadEventsAsync(0, 1000, default);

        var paged = new List<RegistryEvent>();
        var cursor = 0L;
        for (var round = 0; round < 1000; round++)
        {
            var page = await Outbox.ReadEventsAsync(cursor, 2, default);
            if (page.Count == 0) break;
            page.Count.Should().BeLessThanOrEqualTo(2);
            paged.AddRange(page);
            cursor = page[^1].Id;
        }

        paged.Should().Equal(all);
    }

    [Fact]
    public async Task A_reader_following_concurrent_writers_misses_no_event()
    {
        const int writers = 4, changesEach = 25;
        var seen = new List<long>();
        var writing = Task.WhenAll(Enumerable.Range(0, writers).Select(w => Task.Run(async () =>
        {
            for (var i = 0; i < changesEach; i++)
                await Store.LinkBlobAsync(Repo($"w{w}/r{i}"), DigestOf($"{w}-{i}"), 1, T0, default);
        })));

        var cursor = 0L;
        for (var round = 0; round < 100_000; round++)
        {
            var done = writing.IsCompleted;
            var page = await Outbox.ReadEventsAsync(cursor, 7, default);
            foreach (var e in page) seen.Add(e.Id);
            if (page.Count > 0) cursor = page[^1].Id;
            else if (done) break;
            else await Task.Yield();
        }
        await writing;

        var all = (await Outbox.ReadEventsAsync(0, 10_000, default)).Select(e => e.Id).ToList();
        all.Should().HaveCount(writers * changesEach, "each link to a new repository is one repository.create");
        seen.Should().Equal(all);
    }

    [Fact]
    public async Task Waiting_for_a_change_completes_once_a_change_commits()
    {
        var change = Outbox.WaitForChangeAsync(default);

        await Store.LinkBlobAsync(Repo("a/app"), DigestOf("layer"), 5, T0, default);

        await change.WaitAsync(TimeSpan.FromMinutes(1));
        change.IsCompletedSuccessfully.Should().BeTrue();
    }

    [Fact]
    public async Task Pruning_removes_exactly_the_events_older_than_the_cutoff()
    {
        await PushAsync(Repo("old/app"), "{\"v\":1}", at: T0);
        await PushAsync(Repo("new/app"), "{\"v\":2}", at: T0.AddDays(2));

        var pruned = await Outbox.PruneEventsAsync(T0.AddDays(1), default);

        pruned.Should().Be(2, "the old repository's creation and its push");
        (await Outbox.ReadEventsAsync(0, 100, default)).Should().OnlyContain(e => e.Repository == "new/app")
            .And.HaveCount(2);
    }

    [Fact]
    public async Task A_delivery_cursor_reads_back_what_was_set_and_is_null_before()
    {
        IDeliveryCursors cursors = Store;
        (await cursors.GetCursorAsync("hook", default)).Should().BeNull();

        await cursors.SetCursorAsync("hook", 41, default);
        await cursors.SetCursorAsync("hook", 42, default);

        (await cursors.GetCursorAsync("hook", default)).Should().Be(42);
        (await cursors.GetCursorAsync("other", default)).Should().BeNull();
    }

    [Fact]
    public async Task A_delivery_cursor_write_does_not_count_as_a_change()
    {
        var change = Outbox.WaitForChangeAsync(default);

        await Store.SetCursorAsync("hook", 42, default);

        change.IsCompleted.Should().BeFalse("acknowledging an event must not wake every consumer");
    }
}

public sealed class SqliteOutboxContract : OutboxContract
{
    protected override IMetadataBackend CreateBackend() => new SqliteBackend();
}

public sealed class PostgresOutboxContract : OutboxContract
{
    protected override IMetadataBackend CreateBackend() => new PostgresBackend();
}
