using System.Net;
using Registry.Tests.Infrastructure;

namespace Registry.Tests.Conformance;

/// <summary>The Content Management workflow: spec "Deleting tags", "Deleting Manifests", "Deleting Blobs".</summary>
/// <remarks>Against one in-process server.</remarks>
public sealed class ManagementTests(RegistryFixture fixture) : ManagementTestsBase(fixture), IClassFixture<RegistryFixture>;

/// <summary>The Content Management workflow: spec "Deleting tags", "Deleting Manifests", "Deleting Blobs".</summary>
/// <remarks>
/// What every registry target must do: one server (<see cref="ManagementTests"/>) and the scale-out stack through its
/// proxy in front of two replicas (<c>Stack.ScaleOutManagementTests</c>).
/// </remarks>
public abstract class ManagementTestsBase(IRegistryTarget registry)
{
    private readonly HttpClient _client = registry.Client;

    [Fact]
    public async Task Delete_manifest_by_digest_returns_202_and_it_is_gone()
    {
        var repo = RegistryFixture.NewRepo();
        var image = await _client.PushImageAsync(repo, "v1");

        var response = await _client.DeleteAsync($"v2/{repo}/manifests/{image.Manifest.Digest}");

        response.StatusCode.Should().Be(HttpStatusCode.Accepted);
        await (await _client.GetManifestAsync(repo, image.Manifest.Digest))
            .ShouldBeErrorAsync(HttpStatusCode.NotFound, "MANIFEST_UNKNOWN");
        (await _client.GetManifestAsync(repo, image.Manifest.Digest, HttpMethod.Head)).StatusCode.Should().Be(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Delete_manifest_by_digest_removes_every_tag_pointing_to_it()
    {
        var repo = RegistryFixture.NewRepo();
        var image = await _client.PushImageAsync(repo, "v1");
        await _client.PushManifestAsync(repo, "v1.0", image.Manifest);
        await _client.PushImageAsync(repo, "other");

        await _client.DeleteAsync($"v2/{repo}/manifests/{image.Manifest.Digest}");

        (await _client.TagsAsync(repo)).Should().Equal("other");
        (await _client.GetManifestAsync(repo, "v1")).StatusCode.Should().Be(HttpStatusCode.NotFound);
        (await _client.GetManifestAsync(repo, "v1.0")).StatusCode.Should().Be(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Delete_tag_returns_202_and_removes_only_that_tag()
    {
        var repo = RegistryFixture.NewRepo();
        var image = await _client.PushImageAsync(repo, "v1");
        await _client.PushManifestAsync(repo, "stable", image.Manifest);

        var response = await _client.DeleteAsync($"v2/{repo}/manifests/v1");

        response.StatusCode.Should().Be(HttpStatusCode.Accepted);
        (await _client.GetManifestAsync(repo, "v1")).StatusCode.Should().Be(HttpStatusCode.NotFound);
        (await _client.TagsAsync(repo)).Should().Equal("stable");
        (await _client.GetManifestAsync(repo, "stable")).StatusCode.Should().Be(HttpStatusCode.OK);
        (await _client.GetManifestAsync(repo, image.Manifest.Digest)).StatusCode.Should().Be(HttpStatusCode.OK);
    }

    [Fact]
    public async Task Delete_unknown_tag_returns_404()
    {
        var repo = RegistryFixture.NewRepo();
        await _client.PushImageAsync(repo, "v1");

        var response = await _client.DeleteAsync($"v2/{repo}/manifests/nope");

        await response.ShouldBeErrorAsync(HttpStatusCode.NotFound, "MANIFEST_UNKNOWN");
    }

    [Fact]
    public async Task Delete_unknown_manifest_returns_404_MANIFEST_UNKNOWN()
    {
        var repo = RegistryFixture.NewRepo();
        await _client.PushImageAsync(repo, "v1");

        var response = await _client.DeleteAsync($"v2/{repo}/manifests/{Oci.UnknownDigest()}");

        await response.ShouldBeErrorAsync(HttpStatusCode.NotFound, "MANIFEST_UNKNOWN");
    }

    [Fact]
    public async Task Deleting_a_manifest_twice_returns_404_the_second_time()
    {
        var repo = RegistryFixture.NewRepo();
        var image = await _client.PushImageAsync(repo, "v1");
        await _client.PushImageAsync(repo, "keep");
        await _client.DeleteAsync($"v2/{repo}/manifests/{image.Manifest.Digest}");

        var response = await _client.DeleteAsync($"v2/{repo}/manifests/{image.Manifest.Digest}");

        response.StatusCode.Should().Be(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Deleting_a_referrer_removes_it_from_the_referrers_list()
    {
        var repo = RegistryFixture.NewRepo();
        var subject = await _client.PushImageAsync(repo, "v1");
        var gone = await _client.PushReferrerAsync(repo, subject.Manifest, "application/vnd.example.sig");
        var kept = await _client.PushReferrerAsync(repo, subject.Manifest, "application/vnd.example.sbom");

        var response = await _client.DeleteAsync($"v2/{repo}/manifests/{gone.Digest}");

        response.StatusCode.Should().Be(HttpStatusCode.Accepted);
        var referrers = await _client.GetAsync($"v2/{repo}/referrers/{subject.Manifest.Digest}");
        referrers.StatusCode.Should().Be(HttpStatusCode.OK);
        (await referrers.JsonAsync()).GetProperty("manifests").EnumerateArray()
            .Select(m => m.GetProperty("digest").GetString()).Should().Equal(kept.Digest);
    }

    [Fact]
    public async Task Delete_blob_returns_202_and_it_is_gone()
    {
        var repo = RegistryFixture.NewRepo();
        var blob = await _client.PushBlobAsync(repo, Oci.RandomBlob());

        var response = await _client.DeleteAsync($"v2/{repo}/blobs/{blob.Digest}");

        response.StatusCode.Should().Be(HttpStatusCode.Accepted);
        await (await _client.GetAsync($"v2/{repo}/blobs/{blob.Digest}")).ShouldBeErrorAsync(HttpStatusCode.NotFound, "BLOB_UNKNOWN");
        (await _client.SendAsync(HttpMethod.Head, $"v2/{repo}/blobs/{blob.Digest}")).StatusCode.Should().Be(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Delete_unknown_blob_returns_404_BLOB_UNKNOWN()
    {
        var repo = RegistryFixture.NewRepo();
        await _client.PushBlobAsync(repo, Oci.RandomBlob());

        var response = await _client.DeleteAsync($"v2/{repo}/blobs/{Oci.UnknownDigest()}");

        await response.ShouldBeErrorAsync(HttpStatusCode.NotFound, "BLOB_UNKNOWN");
    }

    [Fact]
    public async Task Deleting_a_blob_leaves_it_in_other_repositories()
    {
        var repo = RegistryFixture.NewRepo();
        var other = RegistryFixture.NewRepo();
        var blob = await _client.PushBlobAsync(repo, Oci.RandomBlob());
        await _client.PushBlobAsync(other, blob);

        await _client.DeleteAsync($"v2/{repo}/blobs/{blob.Digest}");

        (await _client.GetByteArrayAsync($"v2/{other}/blobs/{blob.Digest}")).Should().Equal(blob.Bytes);
    }
}
