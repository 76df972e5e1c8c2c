using Registry.Storage.Metadata;
using Registry.Storage.Model;
using static Registry.Tests.Contracts.Sample;

namespace Registry.Tests.Contracts;

/// <summary>What every <see cref="IManifestStore"/> promises: manifests and tags, references, listings, referrers.</summary>
public abstract class ManifestStoreContract : MetadataContract
{
    private IManifestStore Manifests => Store;

    [Fact]
    public async Task A_stored_manifest_is_found_by_digest_and_by_each_of_its_tags()
    {
        var manifest = await PushAsync(Repo("a/app"), "{\"v\":1}", ["v1", "latest"]);

        (await Manifests.GetManifestAsync(Repo("a/app"), Reference.Of(manifest.Digest), default)).Should().Be(manifest);
        (await Manifests.GetManifestAsync(Repo("a/app"), Reference.Of(Tag("v1")), default)).Should().Be(manifest);
        (await Manifests.GetManifestAsync(Repo("a/app"), Reference.Of(Tag("latest")), default)).Should().Be(manifest);
        (await Manifests.GetManifestAsync(Repo("b/app"), Reference.Of(manifest.Digest), default)).Should().BeNull();
    }

    [Fact]
    public async Task A_manifest_whose_reference_is_missing_is_refused_naming_it()
    {
        var layer = DigestOf("layer");

        var result = await Manifests.PutManifestAsync(Repo("a/app"), Manifest("{}"), [Blob(layer)], [Tag("v1")], default);

        result.Should().Be(new PutManifestResult(PutManifestStatus.MissingReference, layer));
    }

    [Fact]
    public async Task A_refused_manifest_push_leaves_nothing()
    {
        var provided = new ProvidedBlob(DigestOf("{}"), 2);
        var manifest = Manifest("{\"m\":1}");

        await Manifests.PutManifestAsync(Repo("a/app"), manifest, [Blob(provided.Digest), Blob(DigestOf("missing"))],
            [Tag("v1")], default, [provided]);

        (await Manifests.RepositoryExistsAsync(Repo("a/app"), default)).Should().BeFalse();
        (await Store.GetLinkedBlobSizeAsync(Repo("a/app"), provided.Digest, default)).Should().BeNull();
        (await Manifests.GetManifestAsync(Repo("a/app"), Reference.Of(manifest.Digest), default)).Should().BeNull();
        (await Store.ReadEventsAsync(0, 100, default)).Should().BeEmpty();
        (await Store.GetStatisticsAsync(default)).Should().Be(new StoreStatistics(0, 0, 0, 0, 0));
    }

    [Fact]
    public async Task Provided_blobs_are_linked_with_the_manifest_and_satisfy_its_references()
    {
        var provided = new ProvidedBlob(DigestOf("{}"), 2);

        var result = await Manifests.PutManifestAsync(Repo("a/app"), Manifest("{\"m\":1}"), [Blob(provided.Digest)],
            [], default, [provided]);

        result.Status.Should().Be(PutManifestStatus.Stored);
        (await Store.GetLinkedBlobSizeAsync(Repo("a/app"), provided.Digest, default)).Should().Be(2);
    }

    [Fact]
    public async Task References_count_only_in_the_manifests_own_repository()
    {
        var layer = DigestOf("layer");
        await Store.LinkBlobAsync(Repo("other/app"), layer, 5, T0, default);

        var result = await Manifests.PutManifestAsync(Repo("a/app"), Manifest("{}"), [Blob(layer)], [], default);

        result.Status.Should().Be(PutManifestStatus.MissingReference);
    }

    [Fact]
    public async Task An_index_needs_its_children_as_manifests_of_the_repository_not_as_blobs()
    {
        var child = await PushAsync(Repo("a/app"), "{\"child\":1}");
        var linkedOnly = DigestOf("a blob, not a manifest");
        await Store.LinkBlobAsync(Repo("a/app"), linkedOnly, 5, T0, default);

        (await Manifests.FindMissingReferenceAsync(Repo("a/app"), [Child(child.Digest)], default)).Should().BeNull();
        (await Manifests.FindMissingReferenceAsync(Repo("a/app"), [Child(child.Digest), Child(linkedOnly)], default))
            .Should().Be(linkedOnly);
        (await Manifests.FindMissingReferenceAsync(Repo("a/app"), [Blob(linkedOnly)], default)).Should().BeNull();
    }

    [Fact]
    public async Task Pushing_the_same_manifest_again_is_success()
    {
        await PushAsync(Repo("a/app"), "{}", ["v1"]);

        var again = await Manifests.PutManifestAsync(Repo("a/app"), Manifest("{}"), [], [Tag("v1")], default);

        again.Status.Should().Be(PutManifestStatus.Stored);
        (await Manifests.ListTagsAsync(Repo("a/app"), 10, null, default)).Items.Should().Equal("v1");
    }

    [Fact]
    public async Task Pushing_a_tag_onto_another_manifest_moves_it()
    {
        await PushAsync(Repo("a/app"), "{\"v\":1}", ["latest"]);
        var second = await PushAsync(Repo("a/app"), "{\"v\":2}", ["latest"]);

        (await Manifests.GetManifestAsync(Repo("a/app"), Reference.Of(Tag("latest")), default))!.Digest
            .Should().Be(second.Digest);
    }

    [Fact]
    public async Task Deleting_a_manifest_deletes_every_tag_pointing_at_it()
    {
        var manifest = await PushAsync(Repo("a/app"), "{\"v\":1}", ["v1", "latest"]);
        await PushAsync(Repo("a/app"), "{\"v\":2}", ["v2"]);

        (await Manifests.DeleteManifestAsync(Repo("a/app"), manifest.Digest, T0, default)).Should().BeTrue();

        (await Manifests.GetManifestAsync(Repo("a/app"), Reference.Of(manifest.Digest), default)).Should().BeNull();
        (await Manifests.ListTagsAsync(Repo("a/app"), 10, null, default)).Items.Should().Equal("v2");
    }

    [Fact]
    public async Task Deleting_a_tag_keeps_its_manifest()
    {
        var manifest = await PushAsync(Repo("a/app"), "{}", ["v1"]);

        (await Manifests.DeleteTagAsync(Repo("a/app"), Tag("v1"), T0, default)).Should().BeTrue();

        (await Manifests.GetManifestAsync(Repo("a/app"), Reference.Of(Tag("v1")), default)).Should().BeNull();
        (await Manifests.GetManifestAsync(Repo("a/app"), Reference.Of(manifest.Digest), default)).Should().Be(manifest);
    }

    [Fact]
    public async Task Deleting_what_does_not_exist_is_false()
    {
        await PushAsync(Repo("a/app"), "{}", ["v1"]);

        (await Manifests.DeleteTagAsync(Repo("a/app"), Tag("v2"), T0, default)).Should().BeFalse();
        (await Manifests.DeleteManifestAsync(Repo("a/app"), DigestOf("never"), T0, default)).Should().BeFalse();
        (await Manifests.DeleteManifestAsync(Repo("none/app"), DigestOf("{}"), T0, default)).Should().BeFalse();
    }

    [Fact]
    public async Task Tags_are_listed_in_ordinal_order()
    {
        await PushAsync(Repo("a/app"), "{}", ["b", "B", "a", "a-1", "a.1", "A", "1"]);

        (await Manifests.ListTagsAsync(Repo("a/app"), 100, null, default)).Items
            .Should().Equal("1", "A", "B", "a", "a-1", "a.1", "b");
    }

    [Fact]
    public async Task A_tag_page_starts_strictly_after_last_even_when_last_is_no_tag()
    {
        await PushAsync(Repo("a/app"), "{}", ["t1", "t2", "t3", "t4"]);

        (await Manifests.ListTagsAsync(Repo("a/app"), 10, "t2", default)).Items.Should().Equal("t3", "t4");
        (await Manifests.ListTagsAsync(Repo("a/app"), 10, "t2x", default)).Items.Should().Equal("t3", "t4");
        (await Manifests.ListTagsAsync(Repo("a/app"), 10, "t4", default)).Items.Should().BeEmpty();
    }

    [Fact]
    public async Task A_tag_page_has_more_exactly_when_another_tag_follows()
    {
        await PushAsync(Repo("a/app"), "{}", ["t1", "t2", "t3", "t4"]);

        (await Manifests.ListTagsAsync(Repo("a/app"), 2, null, default)).Should()
            .BeEquivalentTo(new Page<string>(["t1", "t2"], true));
        (await Manifests.ListTagsAsync(Repo("a/app"), 2, "t2", default)).Should()
            .BeEquivalentTo(new Page<string>(["t3", "t4"], false));
    }

    [Fact]
    public async Task A_limit_of_zero_is_an_empty_page()
    {
        await PushAsync(Repo("a/app"), "{}", ["t1"]);

        (await Manifests.ListTagsAsync(Repo("a/app"), 0, null, default)).Items.Should().BeEmpty();
        (await Manifests.ListRepositoriesAsync(0, null, default)).Items.Should().BeEmpty();
    }

    [Fact]
    public async Task Paging_through_every_tag_after_changes_sees_each_once()
    {
        var names = Enumerable.Range(0, 25).Select(i => $"t{i:D2}").ToArray();
        await PushAsync(Repo("a/app"), "{}", names);
        await Manifests.DeleteTagAsync(Repo("a/app"), Tag("t05"), T0, default);
        await PushAsync(Repo("a/app"), "{\"v\":2}", ["t05x"]);

        var all = new List<string>();
        string? last = null;
        for (var page = 0; page < 100; page++)
        {
            var listed = await Manifests.ListTagsAsync(Repo("a/app"), 4, last, default);
            all.AddRange(listed.Items);
            if (!listed.HasMore) break;
            last = listed.Items[^1];
        }

        all.Should().Equal(names.Where(n => n != "t05").Append("t05x").Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task Every_change_to_tags_shows_in_the_next_listing()
    {
        var first = await PushAsync(Repo("a/app"), "one", ["b", "a"]);
        (await AllTagsAsync(Repo("a/app"), 100)).Should().Equal("a", "b");

        await PushAsync(Repo("a/app"), "two", ["c"]);
        (await AllTagsAsync(Repo("a/app"), 100)).Should().Equal("a", "b", "c");

        (await Manifests.DeleteTagAsync(Repo("a/app"), Tag("b"), T0, default)).Should().BeTrue();
        (await AllTagsAsync(Repo("a/app"), 100)).Should().Equal("a", "c");

        (await Manifests.DeleteManifestAsync(Repo("a/app"), first.Digest, T0, default)).Should().BeTrue();
        (await AllTagsAsync(Repo("a/app"), 100)).Should().Equal("c");
    }

    [Fact]
    public async Task Tags_and_repositories_are_listed_in_byte_order_not_the_locale_s()
    {
        // Byte order: '-' < '.' < '/' < digits < upper case < '_' < lower case; a locale collation sorts case and
        // punctuation differently.
        foreach (var name in new[] { "ab", "a_b", "a/b", "a.b", "a-b", "a0" })
            await PushAsync(Repo(name), name, ["Zeta", "alpha", "_x", "Alpha", "9", "a-b", "a.b"]);

        (await Manifests.ListRepositoriesAsync(100, null, default)).Items.Should().Equal("a-b", "a.b", "a/b", "a0", "a_b", "ab");
        (await Manifests.ListRepositoriesAsync(2, "a.b", default)).Items.Should().Equal("a/b", "a0");
        (await AllTagsAsync(Repo("ab"), 100)).Should().Equal("9", "Alpha", "Zeta", "_x", "a-b", "a.b", "alpha");
        (await Manifests.ListTagsAsync(Repo("ab"), 2, "Zeta", default)).Items.Should().Equal("_x", "a-b");
    }

    [Fact]
    public async Task Listing_while_tags_are_written_never_leaves_a_stale_list()
    {
        const int writers = 4, perWriter = 60;
        using var done = new CancellationTokenSource();
        var reader = Task.Run(async () =>
        {
            while (!done.IsCancellationRequested) await Manifests.ListTagsAsync(Repo("a/race"), 100, null, default);
        });
        await Task.WhenAll(Enumerable.Range(0, writers).Select(w => Task.Run(async () =>
        {
            for (var i = 0; i < perWriter; i++) await PushAsync(Repo("a/race"), $"{w}-{i}", [$"w{w}-{i:D3}"]);
        })));
        await done.CancelAsync();
        await reader;

        (await AllTagsAsync(Repo("a/race"), 1000)).Should().HaveCount(writers * perWriter)
            .And.BeInAscendingOrder(StringComparer.Ordinal);
    }

    /// <summary>Every tag of <paramref name="repository"/>, page by page; every page but the last is full.</summary>
    private async Task<List<string>> AllTagsAsync(RepositoryName repository, int pageSize)
    {
        var all = new List<string>();
        string? last = null;
        while (true)
        {
            var page = await Manifests.ListTagsAsync(repository, pageSize, last, default);
            all.AddRange(page.Items);
            if (!page.HasMore) return all;
            page.Items.Should().HaveCount(pageSize);
            last = page.Items[^1];
        }
    }

    [Fact]
    public async Task Repositories_are_listed_in_order_after_last()
    {
        foreach (var name in new[] { "b/app", "a/app", "c/app" })
            await Store.LinkBlobAsync(Repo(name), DigestOf("layer"), 5, T0, default);

        (await Manifests.ListRepositoriesAsync(10, null, default)).Items.Should().Equal("a/app", "b/app", "c/app");
        (await Manifests.ListRepositoriesAsync(1, "a/app", default)).Should()
            .BeEquivalentTo(new Page<string>(["b/app"], true));
    }

    [Fact]
    public async Task A_filtered_repository_page_is_full_while_visible_names_remain()
    {
        for (var i = 0; i < 30; i++)
            await Store.LinkBlobAsync(Repo($"{(i % 3 == 0 ? "team" : "other")}/r{i:D2}"), DigestOf("layer"), 5, T0, default);

        var page = await Manifests.ListRepositoriesAsync(4, null, default, r => r.Value.StartsWith("team/"));

        page.Should().BeEquivalentTo(new Page<string>(["team/r00", "team/r03", "team/r06", "team/r09"], true));
        (await Manifests.ListRepositoriesAsync(4, "team/r24", default, r => r.Value.StartsWith("team/")))
            .Should().BeEquivalentTo(new Page<string>(["team/r27"], false));
    }

    [Fact]
    public async Task Referrers_are_the_manifests_naming_that_subject_in_digest_order()
    {
        var subject = await PushAsync(Repo("a/app"), "{\"subject\":1}");
        var referrers = new List<ManifestRecord>();
        for (var i = 0; i < 3; i++)
            referrers.Add(await PushAsync(Repo("a/app"), $"{{\"sig\":{i}}}", subject: subject.Digest, artifactType: "application/sig"));
        await PushAsync(Repo("a/app"), "{\"unrelated\":1}", subject: DigestOf("another subject"));

        var page = await Manifests.ListReferrersAsync(Repo("a/app"), subject.Digest, null, 10, null, default);

        page.Items.Should().Equal(referrers.OrderBy(r => r.Digest.ToString(), StringComparer.Ordinal));
        page.HasMore.Should().BeFalse();
    }

    [Fact]
    public async Task Referrers_can_be_filtered_by_artifact_type()
    {
        var subject = await PushAsync(Repo("a/app"), "{\"subject\":1}");
        var signature = await PushAsync(Repo("a/app"), "{\"sig\":1}", subject: subject.Digest, artifactType: "application/sig");
        await PushAsync(Repo("a/app"), "{\"sbom\":1}", subject: subject.Digest, artifactType: "application/sbom");

        var page = await Manifests.ListReferrersAsync(Repo("a/app"), subject.Digest, "application/sig", 10, null, default);

        page.Items.Should().Equal(signature);
    }

    [Fact]
    public async Task Referrers_of_another_repository_are_not_listed()
    {
        var subject = await PushAsync(Repo("a/app"), "{\"subject\":1}");
        await PushAsync(Repo("b/app"), "{\"sig\":1}", subject: subject.Digest);

        (await Manifests.ListReferrersAsync(Repo("a/app"), subject.Digest, null, 10, null, default)).Items.Should().BeEmpty();
    }

    [Fact]
    public async Task Referrer_pages_continue_after_last()
    {
        var subject = await PushAsync(Repo("a/app"), "{\"subject\":1}");
        for (var i = 0; i < 5; i++) await PushAsync(Repo("a/app"), $"{{\"sig\":{i}}}", subject: subject.Digest);
        var first = await Manifests.ListReferrersAsync(Repo("a/app"), subject.Digest, null, 3, null, default);

        var second = await Manifests.ListReferrersAsync(Repo("a/app"), subject.Digest, null, 3,
            first.Items[^1].Digest.ToString(), default);

        first.HasMore.Should().BeTrue();
        second.HasMore.Should().BeFalse();
        first.Items.Concat(second.Items).Select(r => r.Digest).Should().OnlyHaveUniqueItems().And.HaveCount(5);
    }
}

public sealed class SqliteManifestStoreContract : ManifestStoreContract
{
    protected override IMetadataBackend CreateBackend() => new SqliteBackend();
}

public sealed class PostgresManifestStoreContract : ManifestStoreContract
{
    protected override IMetadataBackend CreateBackend() => new PostgresBackend();
}
