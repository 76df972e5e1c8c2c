using System.Net;
using System.Text.Json;
using Registry.Tests.Infrastructure;

namespace Registry.Tests.Extensions;

/// <summary>The tag details extension (<c>_registry/tags</c>).</summary>
/// <remarks>Against one in-process server.</remarks>
public sealed class TagDetailsTests(RegistryFixture fixture) : TagDetailsTestsBase(fixture), IClassFixture<RegistryFixture>;

/// <summary>The tag details extension (<c>_registry/tags</c>).</summary>
/// <remarks>Against one server, and through the scale-out stack's proxy (<c>Stack.ScaleOutTagDetailsTests</c>).</remarks>
public abstract class TagDetailsTestsBase(IRegistryTarget registry)
{
    private HttpClient Client => registry.Client;

    private async Task<Dictionary<string, JsonElement>> DetailsAsync(string repo, string query = "")
    {
        var result = await Client.GetJsonAsync($"v2/{repo}/_registry/tags/details{query}");
        result.GetProperty("name").GetString().Should().Be(repo);
        return result.GetProperty("tags").EnumerateArray().ToDictionary(t => t.GetProperty("name").GetString()!);
    }

    [Fact]
    public async Task An_image_tag_shows_digest_type_size_platform_and_times()
    {
        var repo = RegistryFixture.NewRepo("details");
        var layer = new byte[4096];
        var (bytes, digest) = await Client.PushImageAsync(repo, "v1", layer);
        var manifest = await Client.GetJsonAsync($"v2/{repo}/manifests/v1");
        var configSize = manifest.GetProperty("config").GetProperty("size").GetInt64();

        var tag = (await DetailsAsync(repo))["v1"];

        tag.GetProperty("digest").GetString().Should().Be(digest);
        tag.GetProperty("mediaType").GetString().Should().Be("application/vnd.oci.image.manifest.v1+json");
        tag.GetProperty("artifactType").GetString().Should().Be("application/vnd.oci.image.config.v1+json");
        tag.GetProperty("size").GetInt64().Should().Be(bytes.Length + configSize + layer.Length);
        tag.GetProperty("platforms").EnumerateArray().Single().GetProperty("architecture").GetString().Should().Be("amd64");
        tag.GetProperty("created").GetString().Should().Be("2026-01-01T00:00:00Z");
        tag.GetProperty("pushed").GetDateTimeOffset().Should().BeCloseTo(DateTimeOffset.UtcNow, TimeSpan.FromMinutes(1));
    }

    [Fact]
    public async Task An_index_tag_lists_its_platforms_and_counts_every_child()
    {
        var repo = RegistryFixture.NewRepo("details");
        var (index, digest, children) = await Client.PushIndexAsync(repo, "multi");
        long childTotals = 0;
        foreach (var child in children)
            childTotals += (await DetailsAsync(repo))[$"{(children[0] == child ? "amd64" : "arm64")}-multi"].GetProperty("size").GetInt64();

        var tag = (await DetailsAsync(repo))["multi"];

        tag.GetProperty("digest").GetString().Should().Be(digest);
        tag.GetProperty("mediaType").GetString().Should().Be("application/vnd.oci.image.index.v1+json");
        tag.GetProperty("artifactType").ValueKind.Should().Be(JsonValueKind.Null);
        tag.GetProperty("platforms").EnumerateArray()
            .Select(p => $"{p.GetProperty("os").GetString()}/{p.GetProperty("architecture").GetString()}")
            .Should().Equal("linux/amd64", "linux/arm64");
        tag.GetProperty("platforms")[1].GetProperty("variant").GetString().Should().Be("v8");
        tag.GetProperty("size").GetInt64().Should().Be(index.Length + childTotals);
        tag.GetProperty("created").ValueKind.Should().Be(JsonValueKind.Null);
    }

    [Fact]
    public async Task An_artifact_with_a_subject_shows_its_artifact_type()
    {
        var repo = RegistryFixture.NewRepo("details");
        var (_, image) = await Client.PushImageAsync(repo, "v1");
        await Client.PushArtifactAsync(repo, image, "application/vnd.example.sbom", tag: "sbom");

        var tag = (await DetailsAsync(repo))["sbom"];

        tag.GetProperty("artifactType").GetString().Should().Be("application/vnd.example.sbom");
        tag.GetProperty("platforms").GetArrayLength().Should().Be(0);
    }

    [Fact]
    public async Task Paginates_by_tag_name()
    {
        var repo = RegistryFixture.NewRepo("details");
        var (bytes, _) = await Client.PushImageAsync(repo, "a");
        foreach (var tag in new[] { "b", "c", "d" })
            (await Client.PutManifestAsync(repo, tag, bytes)).StatusCode.Should().Be(HttpStatusCode.Created);

        var first = await Client.GetAsync($"v2/{repo}/_registry/tags/details?n=3");
        var link = first.Headers.GetValues("Link").Single();
        var rest = await DetailsAsync(repo, "?n=3&last=c");

        link.Should().Be($"</v2/{repo}/_registry/tags/details?n=3&last=c>; rel=\"next\"");
        rest.Keys.Should().Equal("d");
    }
}
