using Registry.Storage.Metadata;
using Registry.Storage.Model;
using static Registry.Tests.Contracts.Sample;

namespace Registry.Tests.Contracts;

/// <summary>What every <see cref="IStorageUsage"/> promises: dedup-aware bytes.</summary>
public abstract class StorageUsageContract : MetadataContract
{
    private IStorageUsage Usage => Store;

    [Fact]
    public async Task Total_usage_counts_each_distinct_blob_once_manifests_included()
    {
        var manifest = await PushAsync(Repo("a/app"), "{}");
        await PushAsync(Repo("b/app"), "{}");
        await Store.LinkBlobAsync(Repo("a/app"), DigestOf("layer"), 100, T0, default);
        await Store.LinkBlobAsync(Repo("b/app"), DigestOf("layer"), 100, T0, default);

        (await Usage.GetTotalUsageAsync(default)).Should().Be(new TotalUsage(2, 100 + manifest.Size));
    }

    [Fact]
    public async Task A_repositorys_bytes_are_unique_to_it_or_shared_with_another()
    {
        await Store.LinkBlobAsync(Repo("a/app"), DigestOf("shared"), 100, T0, default);
        await Store.LinkBlobAsync(Repo("b/app"), DigestOf("shared"), 100, T0, default);
        await Store.LinkBlobAsync(Repo("a/app"), DigestOf("own"), 10, T0, default);

        var usage = await Usage.GetRepositoryUsageAsync(["a/app", "b/app", "none/app"], default);

        usage.Should().BeEquivalentTo(new Dictionary<string, RepositoryUsage>
        {
            ["a/app"] = new("a/app", 10, 100),
            ["b/app"] = new("b/app", 0, 100),
        });
    }

    [Fact]
    public async Task Usage_pages_in_name_order_after_last()
    {
        foreach (var name in new[] { "c/app", "a/app", "b/app" })
            await Store.LinkBlobAsync(Repo(name), DigestOf(name), 1, T0, default);

        var page = await Usage.ListRepositoryUsageAsync(1, "a/app", default);

        page.Should().BeEquivalentTo(new Page<RepositoryUsage>([new RepositoryUsage("b/app", 1, 0)], true));
    }
}

/// <summary>What every <see cref="IDistributionImportStore"/> promises: one repository, once, all or nothing.</summary>
public abstract class DistributionImportContract : MetadataContract
{
    private IDistributionImportStore Imports => Store;

    private static RepositoryImport Import(ManifestRecord manifest, params string[] tags) => new(
        Repo("imported/app"),
        [(DigestOf("layer"), 5L)],
        [new ImportedManifest(manifest, [Blob(DigestOf("layer"))])],
        tags.Select(t => new ImportedTag(Tag(t), manifest.Digest, T0)).ToList());

    [Fact]
    public async Task An_imported_repository_has_its_links_manifests_and_tags()
    {
        var manifest = Manifest("{\"imported\":1}");

        (await Imports.ImportRepositoryAsync(Import(manifest, "v1"), "/old", T0, default)).Should().BeTrue();

        (await Imports.IsRepositoryImportedAsync(Repo("imported/app"), default)).Should().BeTrue();
        (await Store.GetLinkedBlobSizeAsync(Repo("imported/app"), DigestOf("layer"), default)).Should().Be(5);
        (await Store.GetManifestAsync(Repo("imported/app"), Reference.Of(Tag("v1")), default)).Should().Be(manifest);
    }

    [Fact]
    public async Task Importing_a_repository_again_is_false_and_changes_nothing()
    {
        var manifest = Manifest("{\"imported\":1}");
        await Imports.ImportRepositoryAsync(Import(manifest, "v1"), "/old", T0, default);
        var events = await Store.LatestEventIdAsync(default);

        (await Imports.ImportRepositoryAsync(Import(manifest, "v1", "v2"), "/old", T0, default)).Should().BeFalse();

        (await Store.ListTagsAsync(Repo("imported/app"), 10, null, default)).Items.Should().Equal("v1");
        (await Store.LatestEventIdAsync(default)).Should().Be(events);
    }

    [Fact]
    public async Task Tags_the_repository_already_has_are_kept()
    {
        var local = await PushAsync(Repo("imported/app"), "{\"local\":1}", ["v1"]);

        await Imports.ImportRepositoryAsync(Import(Manifest("{\"imported\":1}"), "v1", "v2"), "/old", T0, default);

        (await Store.GetManifestAsync(Repo("imported/app"), Reference.Of(Tag("v1")), default))!.Digest.Should().Be(local.Digest);
        (await Store.ListTagsAsync(Repo("imported/app"), 10, null, default)).Items.Should().Equal("v1", "v2");
    }

    [Fact]
    public async Task An_import_appends_the_events_of_what_it_adds()
    {
        var manifest = Manifest("{\"imported\":1}");

        await Imports.ImportRepositoryAsync(Import(manifest, "v1"), "/old", T0, default);

        (await Store.ReadEventsAsync(0, 100, default)).Select(e => (e.Action, e.Tag)).Should().Equal(
            (EventActions.RepositoryCreate, null), (EventActions.ManifestPush, null), (EventActions.TagCreate, "v1"));
    }

    [Fact]
    public async Task An_unimported_repository_is_not_recorded_as_imported()
    {
        await PushAsync(Repo("local/app"), "{}");

        (await Imports.IsRepositoryImportedAsync(Repo("local/app"), default)).Should().BeFalse();
    }
}

public sealed class SqliteStorageUsageContract : StorageUsageContract
{
    protected override IMetadataBackend CreateBackend() => new SqliteBackend();
}

public sealed class PostgresStorageUsageContract : StorageUsageContract
{
    protected override IMetadataBackend CreateBackend() => new PostgresBackend();
}

public sealed class SqliteDistributionImportContract : DistributionImportContract
{
    protected override IMetadataBackend CreateBackend() => new SqliteBackend();
}

public sealed class PostgresDistributionImportContract : DistributionImportContract
{
    protected override IMetadataBackend CreateBackend() => new PostgresBackend();
}
