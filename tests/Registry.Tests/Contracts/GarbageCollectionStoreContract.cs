using Registry.Storage.Metadata;
using Registry.Storage.Model;
using static Registry.Tests.Contracts.Sample;

namespace Registry.Tests.Contracts;

/// <summary>
/// What every <see cref="IGarbageCollectionStore"/> promises: what is reachable, that each deleting step decides again
/// inside its own transaction, tombstones, and the run records.
/// </summary>
public abstract class GarbageCollectionStoreContract : MetadataContract
{
    private IGarbageCollectionStore Gc => Store;

    private static readonly RepositoryName App = Repo("a/app");

    private Task<ManifestRecord> IndexAsync(string content, ManifestRecord child, string[]? tags = null,
        DateTimeOffset? at = null) =>
        PushAsync(App, content, tags, at, mediaType: ImageIndex, references: [Child(child.Digest)]);

    [Fact]
    public async Task Without_a_cutoff_every_manifest_is_reachable()
    {
        await PushAsync(App, "{\"v\":1}");
        await PushAsync(App, "{\"v\":2}", ["v2"]);

        var (reachable, unreachable) = await Gc.MarkManifestsAsync(App, null, [], default);

        reachable.Should().Be(2);
        unreachable.Should().BeEmpty();
    }

    [Fact]
    public async Task An_untagged_manifest_pushed_before_the_cutoff_is_unreachable()
    {
        var old = await PushAsync(App, "{\"v\":1}", at: T0);
        await PushAsync(App, "{\"v\":2}", ["v2"], at: T0);
        await PushAsync(App, "{\"v\":3}", at: T0.AddDays(2));

        var (reachable, unreachable) = await Gc.MarkManifestsAsync(App, T0.AddDays(1), [], default);

        reachable.Should().Be(2);
        unreachable.Should().Equal(old.Digest);
    }

    [Fact]
    public async Task Ignored_tags_are_not_roots()
    {
        var tagged = await PushAsync(App, "{\"v\":1}", ["old"], at: T0);

        var (_, unreachable) = await Gc.MarkManifestsAsync(App, T0.AddDays(1), [Tag("old")], default);

        unreachable.Should().Equal(tagged.Digest);
    }

    [Fact]
    public async Task The_children_of_a_reachable_index_are_reachable()
    {
        var child = await PushAsync(App, "{\"child\":1}", at: T0);
        await IndexAsync("{\"index\":1}", child, ["latest"], T0);

        (await Gc.MarkManifestsAsync(App, T0.AddDays(1), [], default)).Unreachable.Should().BeEmpty();
    }

    [Fact]
    public async Task The_referrers_and_the_subject_of_a_reachable_manifest_are_reachable()
    {
        var subject = await PushAsync(App, "{\"subject\":1}", at: T0);
        await PushAsync(App, "{\"sig\":1}", ["signed"], at: T0, subject: subject.Digest);
        var tagged = await PushAsync(App, "{\"image\":1}", ["v1"], at: T0);
        await PushAsync(App, "{\"sbom\":1}", at: T0, subject: tagged.Digest);

        (await Gc.MarkManifestsAsync(App, T0.AddDays(1), [], default)).Unreachable.Should().BeEmpty();
    }

    [Fact]
    public async Task Sweeping_deletes_only_the_candidates_still_unreachable()
    {
        var untagged = await PushAsync(App, "{\"v\":1}", at: T0);
        var tagged = await PushAsync(App, "{\"v\":2}", ["v2"], at: T0);

        var deleted = await Gc.SweepManifestsAsync(App, T0.AddDays(1), [untagged.Digest, tagged.Digest], T0, default);

        deleted.Should().Equal(untagged.Digest);
        (await Store.GetManifestAsync(App, Reference.Of(untagged.Digest), default)).Should().BeNull();
        (await Store.GetManifestAsync(App, Reference.Of(tagged.Digest), default)).Should().NotBeNull();
    }

    [Fact]
    public async Task A_manifest_tagged_after_its_mark_is_not_swept()
    {
        var manifest = await PushAsync(App, "{\"v\":1}", at: T0);
        var (_, unreachable) = await Gc.MarkManifestsAsync(App, T0.AddDays(1), [], default);
        await PushAsync(App, "{\"v\":1}", ["now-tagged"], at: T0);

        var deleted = await Gc.SweepManifestsAsync(App, T0.AddDays(1), unreachable, T0, default);

        unreachable.Should().Equal(manifest.Digest);
        deleted.Should().BeEmpty();
    }

    [Fact]
    public async Task A_link_a_manifest_of_the_repository_references_is_never_swept()
    {
        var layer = DigestOf("layer");
        await Store.LinkBlobAsync(App, layer, 5, T0, default);
        await PushAsync(App, "{}", ["v1"], references: [Blob(layer)]);

        (await Gc.SweepLinksAsync(App, T0.AddDays(1), dryRun: false, default)).Should().BeEmpty();
        (await Store.GetLinkedBlobSizeAsync(App, layer, default)).Should().Be(5);
    }

    [Fact]
    public async Task Sweeping_links_deletes_the_old_unreferenced_ones()
    {
        var layer = DigestOf("layer");
        await Store.LinkBlobAsync(App, layer, 5, T0, default);

        (await Gc.SweepLinksAsync(App, T0.AddDays(1), dryRun: false, default)).Should().Equal(layer);

        (await Store.GetLinkedBlobSizeAsync(App, layer, default)).Should().BeNull();
    }

    [Fact]
    public async Task A_blob_is_unreferenced_once_nothing_links_holds_or_references_it()
    {
        var gone = DigestOf("gone");
        var referenced = DigestOf("referenced");
        await Store.LinkBlobAsync(App, gone, 5, T0, default);
        await Store.LinkBlobAsync(App, referenced, 7, T0, default);
        await PushAsync(App, "{}", ["v1"], references: [Blob(referenced)]);
        await Store.UnlinkBlobAsync(App, gone, T0, default);
        await Store.UnlinkBlobAsync(App, referenced, T0, default);

        (await Gc.ListUnreferencedBlobsAsync(default)).Should().Equal(new BlobRecord(gone, 5));
    }

    [Fact]
    public async Task Tombstoning_takes_only_candidates_still_unreferenced()
    {
        var gone = DigestOf("gone");
        var back = DigestOf("back");
        foreach (var digest in new[] { gone, back })
        {
            await Store.LinkBlobAsync(App, digest, 5, T0, default);
            await Store.UnlinkBlobAsync(App, digest, T0, default);
        }
        await Store.LinkBlobAsync(Repo("b/app"), back, 5, T0, default);

        var tombstoned = await Gc.TombstoneBlobsAsync([gone, back], T0, default);

        tombstoned.Should().Equal(new BlobRecord(gone, 5));
        (await Store.GetBlobSizeAsync(gone, default)).Should().BeNull();
        (await Gc.ListTombstonesAsync(default)).Should().Equal(gone);
        (await Gc.ListRecordedDigestsAsync(default)).Should().BeEquivalentTo([back]);
    }

    [Fact]
    public async Task Cleared_tombstones_are_gone()
    {
        var gone = DigestOf("gone");
        await Store.LinkBlobAsync(App, gone, 5, T0, default);
        await Store.UnlinkBlobAsync(App, gone, T0, default);
        await Gc.TombstoneBlobsAsync([gone], T0, default);

        await Gc.ClearTombstonesAsync([gone], default);

        (await Gc.ListTombstonesAsync(default)).Should().BeEmpty();
    }

    [Fact]
    public async Task A_plan_changes_nothing()
    {
        var manifest = await PushAsync(App, "{\"v\":1}", ["old"], at: T0);
        var deletedTags = new Dictionary<RepositoryName, IReadOnlyCollection<Tag>> { [App] = [Tag("old")] };

        var plan = await Gc.PlanAsync(deletedTags, T0.AddDays(1), T0.AddDays(1), default);

        plan.Repositories.Single().Manifests.Should().Equal(manifest.Digest);
        plan.Blobs.Should().Contain(new BlobRecord(manifest.Digest, manifest.Size));
        (await Store.GetManifestAsync(App, Reference.Of(Tag("old")), default)).Should().Be(manifest);
    }

    [Fact]
    public async Task Repositories_and_tag_records_are_listed_in_order()
    {
        await PushAsync(Repo("b/app"), "{}", ["v1"], at: T0);
        var manifest = await PushAsync(App, "{}", ["v2", "v1"], at: T0.AddHours(1));

        (await Gc.ListAllRepositoriesAsync(default)).Should().Equal(App, Repo("b/app"));
        (await Gc.ListTagRecordsAsync(App, default)).Should().Equal(
            new TagRecord(Tag("v1"), manifest.Digest, T0.AddHours(1)), new TagRecord(Tag("v2"), manifest.Digest, T0.AddHours(1)));
    }

    [Fact]
    public async Task A_run_is_recorded_running_then_finished_with_its_report()
    {
        var id = await Gc.StartGcRunAsync(dryRun: true, "api", T0, default);
        var running = await Gc.GetGcRunAsync(id, default);

        await Gc.FinishGcRunAsync(id, GcRunStatus.Succeeded, "{\"sweptBlobs\":0}", T0.AddMinutes(1), default);

        running.Should().Be(new GcRunRecord(id, true, "api", T0, null, GcRunStatus.Running, null));
        (await Gc.GetGcRunAsync(id, default)).Should().Be(
            new GcRunRecord(id, true, "api", T0, T0.AddMinutes(1), GcRunStatus.Succeeded, "{\"sweptBlobs\":0}"));
    }

    [Fact]
    public async Task Runs_are_listed_newest_first_and_pruning_keeps_the_most_recent()
    {
        var ids = new List<long>();
        for (var i = 0; i < 4; i++)
        {
            var id = await Gc.StartGcRunAsync(false, "schedule", T0.AddHours(i), default);
            await Gc.FinishGcRunAsync(id, GcRunStatus.Succeeded, "{}", T0.AddHours(i), default);
            ids.Add(id);
        }

        await Gc.PruneGcRunsAsync(2, default);

        (await Gc.ListGcRunsAsync(10, default)).Select(r => r.Id).Should().Equal(ids[3], ids[2]);
    }

    [Fact]
    public async Task Runs_left_running_are_marked_interrupted()
    {
        var running = await Gc.StartGcRunAsync(false, "schedule", T0, default);
        var finished = await Gc.StartGcRunAsync(false, "schedule", T0, default);
        await Gc.FinishGcRunAsync(finished, GcRunStatus.Succeeded, "{}", T0, default);

        (await Gc.InterruptGcRunsAsync(T0.AddHours(1), default)).Should().Be(1);

        (await Gc.GetGcRunAsync(running, default))!.Status.Should().Be(GcRunStatus.Interrupted);
        (await Gc.GetGcRunAsync(finished, default))!.Status.Should().Be(GcRunStatus.Succeeded);
    }
}

public sealed class SqliteGarbageCollectionStoreContract : GarbageCollectionStoreContract
{
    protected override IMetadataBackend CreateBackend() => new SqliteBackend();
}

public sealed class PostgresGarbageCollectionStoreContract : GarbageCollectionStoreContract
{
    protected override IMetadataBackend CreateBackend() => new PostgresBackend();
}
