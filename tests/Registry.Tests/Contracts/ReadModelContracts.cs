using Registry.Storage.Metadata;
using Registry.Storage.Model;
using static Registry.Tests.Contracts.Sample;

namespace Registry.Tests.Contracts;

/// <summary>What every <see cref="ISearchReadModel"/> promises.</summary>
public abstract class SearchReadModelContract : MetadataContract
{
    private ISearchReadModel Search => Store;

    private async Task<List<string>> NamesAsync(RepositorySearch query, int limit = 100, string? last = null,
        Func<RepositoryName, bool>? visible = null) =>
        (await Search.SearchRepositoriesAsync(query, limit, last, visible, default)).Items.Select(h => h.Name.Value).ToList();

    [Fact]
    public async Task Repositories_match_by_name_substring_or_prefix()
    {
        foreach (var name in new[] { "team/web", "team/api", "other/web-team" })
            await Store.LinkBlobAsync(Repo(name), DigestOf("layer"), 1, T0, default);

        (await NamesAsync(new RepositorySearch(Contains: "web"))).Should().Equal("other/web-team", "team/web");
        (await NamesAsync(new RepositorySearch(Prefix: "team/"))).Should().Equal("team/api", "team/web");
        (await NamesAsync(new RepositorySearch())).Should().HaveCount(3);
    }

    [Fact]
    public async Task Repositories_match_by_a_manifests_artifact_type_or_media_type()
    {
        await PushAsync(Repo("charts/app"), "{\"chart\":1}", artifactType: "application/vnd.cncf.helm.config.v1+json");
        await PushAsync(Repo("images/app"), "{\"index\":1}", mediaType: ImageIndex);

        (await NamesAsync(new RepositorySearch(ArtifactType: "application/vnd.cncf.helm.config.v1+json")))
            .Should().Equal("charts/app");
        (await NamesAsync(new RepositorySearch(MediaType: ImageIndex))).Should().Equal("images/app");
    }

    [Fact]
    public async Task A_hit_has_its_tag_count_deduplicated_size_and_last_push()
    {
        await Store.LinkBlobAsync(Repo("a/app"), DigestOf("layer"), 100, T0, default);
        await Store.LinkBlobAsync(Repo("a/app"), DigestOf("layer"), 100, T0, default);
        var first = await PushAsync(Repo("a/app"), "{\"v\":1}", ["v1", "latest"], at: T0);
        var second = await PushAsync(Repo("a/app"), "{\"v\":2}", ["v2"], at: T0.AddHours(3));

        var hit = (await Search.SearchRepositoriesAsync(new RepositorySearch(), 10, null, null, default)).Items.Single();

        hit.Should().Be(new RepositorySearchHit(Repo("a/app"), 3, 100 + first.Size + second.Size, T0.AddHours(3)));
    }

    [Fact]
    public async Task A_repository_without_manifests_has_no_last_push()
    {
        await Store.LinkBlobAsync(Repo("a/app"), DigestOf("layer"), 100, T0, default);

        (await Search.SearchRepositoriesAsync(new RepositorySearch(), 10, null, null, default)).Items.Single()
            .LastPushed.Should().BeNull();
    }

    [Fact]
    public async Task A_filtered_search_page_is_full_while_visible_hits_remain()
    {
        for (var i = 0; i < 30; i++)
            await Store.LinkBlobAsync(Repo($"{(i % 3 == 0 ? "team" : "other")}/r{i:D2}"), DigestOf("layer"), 1, T0, default);

        var page = await Search.SearchRepositoriesAsync(new RepositorySearch(), 4, null,
            r => r.Value.StartsWith("team/"), default);

        page.Items.Select(h => h.Name.Value).Should().Equal("team/r00", "team/r03", "team/r06", "team/r09");
        page.HasMore.Should().BeTrue();
    }

    [Fact]
    public async Task Search_pages_continue_after_last()
    {
        foreach (var name in new[] { "a/app", "b/app", "c/app" })
            await Store.LinkBlobAsync(Repo(name), DigestOf("layer"), 1, T0, default);

        var page = await Search.SearchRepositoriesAsync(new RepositorySearch(), 1, "a/app", null, default);

        page.Items.Select(h => h.Name.Value).Should().Equal("b/app");
        page.HasMore.Should().BeTrue();
        (await NamesAsync(new RepositorySearch(), 10, "b/app")).Should().Equal("c/app");
    }
}

/// <summary>What every <see cref="ITagDetailsReadModel"/> promises.</summary>
public abstract class TagDetailsReadModelContract : MetadataContract
{
    private ITagDetailsReadModel Details => Store;

    [Fact]
    public async Task Each_tag_comes_with_its_manifests_row_and_when_it_was_set()
    {
        var manifest = await PushAsync(Repo("a/app"), "{\"v\":1}", ["v1"], at: T0, artifactType: "application/x");

        var page = await Details.ListTagDetailsAsync(Repo("a/app"), 10, null, default);

        page.Items.Should().Equal(new TagDetail(Tag("v1"), manifest.Digest, ImageManifest, "application/x", manifest.Size, T0));
    }

    [Fact]
    public async Task Tag_details_page_in_tag_order_after_last()
    {
        await PushAsync(Repo("a/app"), "{}", ["c", "a", "b"]);
        await PushAsync(Repo("b/app"), "{}", ["other"]);

        var first = await Details.ListTagDetailsAsync(Repo("a/app"), 2, null, default);
        var second = await Details.ListTagDetailsAsync(Repo("a/app"), 2, "b", default);

        first.Items.Select(t => t.Tag.Value).Should().Equal("a", "b");
        first.HasMore.Should().BeTrue();
        second.Items.Select(t => t.Tag.Value).Should().Equal("c");
        second.HasMore.Should().BeFalse();
    }

    [Fact]
    public async Task A_moved_tag_shows_its_new_manifest()
    {
        await PushAsync(Repo("a/app"), "{\"v\":1}", ["latest"], at: T0);
        var second = await PushAsync(Repo("a/app"), "{\"v\":2}", ["latest"], at: T0.AddHours(1));

        var detail = (await Details.ListTagDetailsAsync(Repo("a/app"), 10, null, default)).Items.Single();

        detail.Digest.Should().Be(second.Digest);
        detail.UpdatedAt.Should().Be(T0.AddHours(1));
    }
}

public sealed class SqliteSearchReadModelContract : SearchReadModelContract
{
    protected override IMetadataBackend CreateBackend() => new SqliteBackend();
}

public sealed class PostgresSearchReadModelContract : SearchReadModelContract
{
    protected override IMetadataBackend CreateBackend() => new PostgresBackend();
}

public sealed class SqliteTagDetailsReadModelContract : TagDetailsReadModelContract
{
    protected override IMetadataBackend CreateBackend() => new SqliteBackend();
}

public sealed class PostgresTagDetailsReadModelContract : TagDetailsReadModelContract
{
    protected override IMetadataBackend CreateBackend() => new PostgresBackend();
}
