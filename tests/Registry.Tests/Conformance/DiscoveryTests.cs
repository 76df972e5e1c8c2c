using System.Net;
using System.Text.Json;
using Registry.Tests.Infrastructure;

namespace Registry.Tests.Conformance;

/// <summary>The Content Discovery workflow: spec "Listing Tags", "Listing Referrers", and the historical _catalog.</summary>
/// <remarks>Against one in-process server.</remarks>
public sealed class DiscoveryTests(RegistryFixture fixture) : DiscoveryTestsBase(fixture), IClassFixture<RegistryFixture>;

/// <summary>The Content Discovery workflow: spec "Listing Tags", "Listing Referrers", and the historical _catalog.</summary>
/// <remarks>
/// What every registry target must do: one server (<see cref="DiscoveryTests"/>) and the scale-out stack through its
/// proxy in front of two replicas (<c>Stack.ScaleOutDiscoveryTests</c>).
/// </remarks>
public abstract class DiscoveryTestsBase(IRegistryTarget registry)
{
    private const string AnnotationKey = "org.opencontainers.conformance.test";
    private readonly HttpClient _client = registry.Client;

    /// <summary>One image pushed under each tag, given out of order so that the server has to sort.</summary>
    private async Task<string> RepoWithTagsAsync(params string[] tags)
    {
        var repo = RegistryFixture.NewRepo();
        var image = await _client.PushImageAsync(repo, tags[^1]);
        foreach (var tag in tags[..^1]) await _client.PushManifestAsync(repo, tag, image.Manifest);
        return repo;
    }

    private async Task<(HttpResponseMessage Response, JsonElement[] Manifests)> ReferrersAsync(string repo, string digest,
        string query = "")
    {
        var response = await _client.GetAsync($"v2/{repo}/referrers/{digest}{query}");
        response.StatusCode.Should().Be(HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        var json = await response.JsonAsync();
        return (response, json.GetProperty("manifests").EnumerateArray().ToArray());
    }

    private static Dictionary<string, string> Annotation(string value) => new() { [AnnotationKey] = value };

    // ---- tags ----

    [Fact]
    public async Task Tags_list_returns_every_tag_in_lexical_order_with_the_repository_name()
    {
        var repo = await RepoWithTagsAsync("test3", "test1", "test0", "test2");

        var response = await _client.GetAsync($"v2/{repo}/tags/list");

        response.StatusCode.Should().Be(HttpStatusCode.OK);
        var json = await response.JsonAsync();
        json.GetProperty("name").GetString().Should().Be(repo);
        json.GetProperty("tags").EnumerateArray().Select(t => t.GetString()).Should().Equal("test0", "test1", "test2", "test3");
    }

    [Fact]
    public async Task Tags_list_n_limits_the_results_and_links_to_the_next_page()
    {
        var repo = await RepoWithTagsAsync("d", "b", "a", "c");

        var response = await _client.GetAsync($"v2/{repo}/tags/list?n=2");

        response.StatusCode.Should().Be(HttpStatusCode.OK);
        (await response.JsonAsync()).GetProperty("tags").EnumerateArray().Select(t => t.GetString()).Should().Equal("a", "b");
        response.NextLink().Should().NotBeNull();
    }

    [Fact]
    public async Task Following_the_tags_link_returns_the_rest_without_a_further_link()
    {
        var repo = await RepoWithTagsAsync("d", "b", "a", "c");
        var next = (await _client.GetAsync($"v2/{repo}/tags/list?n=2")).NextLink();
        next.Should().NotBeNull();

        var response = await _client.GetAsync(next!);

        response.StatusCode.Should().Be(HttpStatusCode.OK);
        (await response.JsonAsync()).GetProperty("tags").EnumerateArray().Select(t => t.GetString()).Should().Equal("c", "d");
        response.NextLink().Should().BeNull();
    }

    [Fact]
    public async Task Tags_list_last_starts_after_the_given_tag()
    {
        var repo = await RepoWithTagsAsync("d", "b", "a", "c");

        var tags = await _client.TagsAsync(repo, "?n=2&last=b");

        tags.Should().Equal("c", "d");
    }

    [Fact]
    public async Task Tags_list_last_without_n_returns_everything_after_it()
    {
        var repo = await RepoWithTagsAsync("d", "b", "a", "c");

        var tags = await _client.TagsAsync(repo, "?last=a");

        tags.Should().Equal("b", "c", "d");
    }

    [Fact]
    public async Task Tags_list_n_larger_than_the_list_returns_all_without_a_link()
    {
        var repo = await RepoWithTagsAsync("b", "a");

        var response = await _client.GetAsync($"v2/{repo}/tags/list?n=10");

        (await response.JsonAsync()).GetProperty("tags").EnumerateArray().Select(t => t.GetString()).Should().Equal("a", "b");
        response.NextLink().Should().BeNull();
    }

    [Fact]
    public async Task Tags_list_n_zero_returns_an_empty_list_without_a_link()
    {
        var repo = await RepoWithTagsAsync("b", "a");

        var response = await _client.GetAsync($"v2/{repo}/tags/list?n=0");

        response.StatusCode.Should().Be(HttpStatusCode.OK);
        var tags = (await response.JsonAsync()).GetProperty("tags");
        (tags.ValueKind == JsonValueKind.Null || tags.GetArrayLength() == 0).Should().BeTrue(tags.ToString());
        response.NextLink().Should().BeNull();
    }

    // ---- referrers ----

    [Fact]
    public async Task Referrers_of_an_unknown_subject_is_an_empty_index()
    {
        var repo = RegistryFixture.NewRepo();
        await _client.PushImageAsync(repo, "v1");

        var response = await _client.GetAsync($"v2/{repo}/referrers/{Http.Sha256("hello world"u8.ToArray())}");

        response.StatusCode.Should().Be(HttpStatusCode.OK);
        response.Content.Headers.ContentType!.MediaType.Should().Be(MediaTypes.OciIndex);
        var json = await response.JsonAsync();
        json.GetProperty("schemaVersion").GetInt32().Should().Be(2);
        json.GetProperty("mediaType").GetString().Should().Be(MediaTypes.OciIndex);
        json.GetProperty("manifests").GetArrayLength().Should().Be(0);
    }

    [Fact]
    public async Task Referrers_lists_each_manifest_whose_subject_is_the_digest()
    {
        var repo = RegistryFixture.NewRepo();
        var subject = await _client.PushImageAsync(repo, "v1");
        var sbom = await _client.PushReferrerAsync(repo, subject.Manifest, "application/vnd.example.sbom", Annotation("sbom"));
        var sig = await _client.PushReferrerAsync(repo, subject.Manifest, "application/vnd.example.sig", Annotation("sig"));

        var (response, manifests) = await ReferrersAsync(repo, subject.Manifest.Digest);

        response.Content.Headers.ContentType!.MediaType.Should().Be(MediaTypes.OciIndex);
        manifests.Select(m => m.GetProperty("digest").GetString()).Should().BeEquivalentTo([sbom.Digest, sig.Digest]);
    }

    [Fact]
    public async Task Referrer_descriptor_carries_media_type_size_artifact_type_and_annotations()
    {
        var repo = RegistryFixture.NewRepo();
        var subject = await _client.PushImageAsync(repo, "v1");
        var annotations = new Dictionary<string, string> { [AnnotationKey] = "test layer a", ["org.example.format"] = "json" };
        var referrer = await _client.PushReferrerAsync(repo, subject.Manifest, "application/vnd.nhl.peanut.butter.bagel", annotations);

        var (_, manifests) = await ReferrersAsync(repo, subject.Manifest.Digest);

        manifests.Should().ContainSingle();
        var descriptor = manifests[0];
        descriptor.GetProperty("mediaType").GetString().Should().Be(MediaTypes.OciManifest);
        descriptor.GetProperty("digest").GetString().Should().Be(referrer.Digest);
        descriptor.GetProperty("size").GetInt64().Should().Be(referrer.Size);
        descriptor.GetProperty("artifactType").GetString().Should().Be("application/vnd.nhl.peanut.butter.bagel");
        descriptor.GetProperty("annotations").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString())
            .Should().BeEquivalentTo(annotations);
    }

    [Fact]
    public async Task Referrer_artifact_type_falls_back_to_the_config_media_type()
    {
        var repo = RegistryFixture.NewRepo();
        var subject = await _client.PushImageAsync(repo, "v1");
        var config = new Content("NHL Peanut Butter on my NHL bagel"u8.ToArray(), "application/vnd.nhl.peanut.butter.bagel");
        var referrer = await _client.PushReferrerAsync(repo, subject.Manifest, artifactType: null, Annotation("test config a"), config);

        var (_, manifests) = await ReferrersAsync(repo, subject.Manifest.Digest);

        manifests.Should().ContainSingle();
        manifests[0].GetProperty("digest").GetString().Should().Be(referrer.Digest);
        manifests[0].GetProperty("artifactType").GetString().Should().Be("application/vnd.nhl.peanut.butter.bagel");
    }

    [Fact]
    public async Task Referrers_include_an_index_with_a_subject()
    {
        var repo = RegistryFixture.NewRepo();
        var subject = await _client.PushImageAsync(repo, "v1");
        var child = await _client.PushImageAsync(repo, "child");
        var index = await _client.PushManifestAsync(repo, "idx", Oci.Index([child.Manifest.Descriptor()],
            "application/vnd.food.stand", subject.Manifest.Descriptor(), Annotation("test index")));

        var (_, manifests) = await ReferrersAsync(repo, subject.Manifest.Digest);

        manifests.Should().ContainSingle();
        manifests[0].GetProperty("mediaType").GetString().Should().Be(MediaTypes.OciIndex);
        manifests[0].GetProperty("digest").GetString().Should().Be(index.Digest);
        manifests[0].GetProperty("size").GetInt64().Should().Be(index.Size);
        manifests[0].GetProperty("artifactType").GetString().Should().Be("application/vnd.food.stand");
        manifests[0].GetProperty("annotations").GetProperty(AnnotationKey).GetString().Should().Be("test index");
    }

    [Fact]
    public async Task Referrers_filtered_by_artifact_type_returns_only_matches_and_says_so()
    {
        var repo = RegistryFixture.NewRepo();
        var subject = await _client.PushImageAsync(repo, "v1");
        var wanted = await _client.PushReferrerAsync(repo, subject.Manifest, "application/vnd.example.sbom", Annotation("a"));
        var config = new Content("{\"sbom\":true}"u8.ToArray(), "application/vnd.example.sbom");
        var wantedByConfig = await _client.PushReferrerAsync(repo, subject.Manifest, null, Annotation("b"), config);
        await _client.PushReferrerAsync(repo, subject.Manifest, "application/vnd.example.sig", Annotation("c"));

        var (response, manifests) = await ReferrersAsync(repo, subject.Manifest.Digest,
            "?artifactType=application/vnd.example.sbom");

        response.Content.Headers.ContentType!.MediaType.Should().Be(MediaTypes.OciIndex);
        response.Header("OCI-Filters-Applied").Should().Be("artifactType");
        manifests.Select(m => m.GetProperty("digest").GetString()).Should().BeEquivalentTo([wanted.Digest, wantedByConfig.Digest]);
    }

    [Fact]
    public async Task Referrers_filter_that_matches_nothing_returns_an_empty_index()
    {
        var repo = RegistryFixture.NewRepo();
        var subject = await _client.PushImageAsync(repo, "v1");
        await _client.PushReferrerAsync(repo, subject.Manifest, "application/vnd.example.sig");

        var (response, manifests) = await ReferrersAsync(repo, subject.Manifest.Digest, "?artifactType=application/vnd.none");

        response.Header("OCI-Filters-Applied").Should().Be("artifactType");
        manifests.Should().BeEmpty();
    }

    [Fact]
    public async Task Referrers_of_a_subject_that_was_never_pushed_lists_its_referrer()
    {
        var repo = RegistryFixture.NewRepo();
        var absent = Oci.ImageManifest(Oci.RandomConfig().Descriptor(), []);
        var referrer = await _client.PushReferrerAsync(repo, absent, "application/vnd.nba.strawberry.jam.croissant");

        var (response, manifests) = await ReferrersAsync(repo, absent.Digest);

        response.Content.Headers.ContentType!.MediaType.Should().Be(MediaTypes.OciIndex);
        manifests.Select(m => m.GetProperty("digest").GetString()).Should().Equal(referrer.Digest);
    }

    [Fact]
    public async Task Referrers_do_not_include_manifests_of_other_repositories()
    {
        var repo = RegistryFixture.NewRepo();
        var other = RegistryFixture.NewRepo();
        var subject = await _client.PushImageAsync(repo, "v1");
        await _client.PushReferrerAsync(other, subject.Manifest, "application/vnd.example.sig");

        var (_, manifests) = await ReferrersAsync(repo, subject.Manifest.Digest);

        manifests.Should().BeEmpty();
    }

    // ---- catalog ----

    /// <summary>Repositories under a fresh prefix; nothing else sorts between the prefix and its children.</summary>
    private async Task<string> CatalogPrefixAsync(params string[] children)
    {
        var prefix = $"catalog{Guid.NewGuid():N}";
        foreach (var child in children) await _client.PushImageAsync($"{prefix}/{child}", "v1");
        return prefix;
    }

    [Fact]
    public async Task Catalog_lists_repositories_in_lexical_order_from_last()
    {
        var prefix = await CatalogPrefixAsync("c", "a", "b");

        var response = await _client.GetAsync($"v2/_catalog?n=3&last={prefix}");

        response.StatusCode.Should().Be(HttpStatusCode.OK);
        (await response.JsonAsync()).GetProperty("repositories").EnumerateArray().Select(r => r.GetString())
            .Should().Equal($"{prefix}/a", $"{prefix}/b", $"{prefix}/c");
    }

    [Fact]
    public async Task Catalog_n_limits_the_results_and_links_to_the_next_page()
    {
        var prefix = await CatalogPrefixAsync("a", "b", "c");

        var response = await _client.GetAsync($"v2/_catalog?n=2&last={prefix}");

        (await response.JsonAsync()).GetProperty("repositories").EnumerateArray().Select(r => r.GetString())
            .Should().Equal($"{prefix}/a", $"{prefix}/b");
        response.NextLink().Should().NotBeNull();
    }

    [Fact]
    public async Task Following_the_catalog_link_continues_after_the_last_repository()
    {
        var prefix = await CatalogPrefixAsync("a", "b", "c");
        var next = (await _client.GetAsync($"v2/_catalog?n=2&last={prefix}")).NextLink();
        next.Should().NotBeNull();

        var response = await _client.GetAsync(next!);

        response.StatusCode.Should().Be(HttpStatusCode.OK);
        (await response.JsonAsync()).GetProperty("repositories").EnumerateArray().Select(r => r.GetString())
            .First().Should().Be($"{prefix}/c");
    }
}
