using System.Net;
using Registry.Tests.Infrastructure;

namespace Registry.Tests.Extensions;

/// <summary>The repository search extension (<c>_registry/search/repositories</c>).</summary>
/// <remarks>Against one in-process server.</remarks>
public sealed class SearchTests(RegistryFixture fixture) : SearchTestsBase(fixture), IClassFixture<RegistryFixture>;

/// <summary>The repository search extension (<c>_registry/search/repositories</c>).</summary>
/// <remarks>Against one server, and through the scale-out stack's proxy (<c>Stack.ScaleOutSearchTests</c>).</remarks>
public abstract class SearchTestsBase(IRegistryTarget registry)
{
    private HttpClient Client => registry.Client;

    private async Task<string[]> NamesAsync(string query)
    {
        var result = await Client.GetJsonAsync($"v2/_registry/search/repositories?{query}");
        return result.GetProperty("repositories").EnumerateArray().Select(r => r.GetProperty("name").GetString()!).ToArray();
    }

    [Fact]
    public async Task Finds_repositories_by_substring_and_by_prefix()
    {
        var ns = $"s{Guid.NewGuid():N}"[..12];
        foreach (var repo in new[] { $"{ns}/frontend", $"{ns}/backend", $"other{ns}/tools" })
            await Client.PushImageAsync(repo, "v1");

        (await NamesAsync($"q={ns}")).Should().Equal($"other{ns}/tools", $"{ns}/backend", $"{ns}/frontend");
        (await NamesAsync($"prefix={ns}/")).Should().Equal($"{ns}/backend", $"{ns}/frontend");
        (await NamesAsync($"q={ns}/front")).Should().Equal($"{ns}/frontend");
    }

    [Fact]
    public async Task Filters_by_artifact_type_and_by_media_type()
    {
        var ns = $"t{Guid.NewGuid():N}"[..12];
        var (_, image) = await Client.PushImageAsync($"{ns}/with-sbom", "v1");
        await Client.PushArtifactAsync($"{ns}/with-sbom", image, "application/vnd.example.sbom");
        await Client.PushImageAsync($"{ns}/plain", "v1");
        await Client.PushIndexAsync($"{ns}/multi", "v1");

        (await NamesAsync($"prefix={ns}/&artifactType=application/vnd.example.sbom")).Should().Equal($"{ns}/with-sbom");
        (await NamesAsync($"prefix={ns}/&mediaType=application/vnd.oci.image.index.v1%2Bjson")).Should().Equal($"{ns}/multi");
    }

    [Fact]
    public async Task Each_hit_carries_tag_count_deduplicated_size_and_last_push()
    {
        var repo = $"u{Guid.NewGuid():N}"[..12] + "/app";
        var layer = new byte[5000];
        var first = await Client.PushImageAsync(repo, "v1", layer);
        var second = await Client.PushImageAsync(repo, "v2", layer);

        var hit = (await Client.GetJsonAsync($"v2/_registry/search/repositories?q={repo}"))
            .GetProperty("repositories")[0];

        hit.GetProperty("tagCount").GetInt32().Should().Be(2);
        // The shared layer counts once: two configs, one layer, two manifests.
        var configs = await Task.WhenAll(new[] { first, second }.Select(async m =>
            (await Client.GetJsonAsync($"v2/{repo}/manifests/{m.Digest}")).GetProperty("config").GetProperty("size").GetInt64()));
        hit.GetProperty("size").GetInt64().Should().Be(configs.Sum() + layer.Length + first.Bytes.Length + second.Bytes.Length);
        hit.GetProperty("lastPushed").GetDateTimeOffset().Should().BeCloseTo(DateTimeOffset.UtcNow, TimeSpan.FromMinutes(1));
    }

    [Fact]
    public async Task Paginates_with_n_last_and_link()
    {
        var ns = $"p{Guid.NewGuid():N}"[..12];
        for (var i = 0; i < 5; i++) await Client.PushBlobAsync($"{ns}/r{i}", [(byte)i]);

        var first = await Client.GetAsync($"v2/_registry/search/repositories?prefix={ns}/&n=2");
        var link = first.Headers.GetValues("Link").Single();
        var next = link[1..link.IndexOf('>')];
        var second = await Client.GetJsonAsync(next[1..]);

        first.StatusCode.Should().Be(HttpStatusCode.OK);
        link.Should().EndWith("rel=\"next\"");
        second.GetProperty("repositories").EnumerateArray().Select(r => r.GetProperty("name").GetString())
            .Should().Equal($"{ns}/r2", $"{ns}/r3");
    }

    [Fact]
    public async Task A_bad_page_size_is_rejected()
    {
        var response = await Client.GetAsync("v2/_registry/search/repositories?n=-1");
        response.StatusCode.Should().Be(HttpStatusCode.BadRequest);
    }
}
