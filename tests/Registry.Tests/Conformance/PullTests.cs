using System.Net;
using System.Net.Http.Headers;
using Registry.Tests.Infrastructure;

namespace Registry.Tests.Conformance;

/// <summary>The Pull workflow: spec "Pulling manifests", "Pulling blobs", "Checking if content exists".</summary>
/// <remarks>Against one in-process server.</remarks>
public sealed class PullTests(RegistryFixture fixture) : PullTestsBase(fixture), IClassFixture<RegistryFixture>;

/// <summary>The Pull workflow: spec "Pulling manifests", "Pulling blobs", "Checking if content exists".</summary>
/// <remarks>
/// What every registry target must do: one server (<see cref="PullTests"/>) and the scale-out stack through its
/// proxy in front of two replicas (<c>Stack.ScaleOutPullTests</c>).
/// </remarks>
public abstract class PullTestsBase(IRegistryTarget registry)
{
    private readonly HttpClient _client = registry.Client;

    [Fact]
    public async Task Base_endpoint_returns_200_with_api_version_header()
    {
        var response = await _client.GetAsync("v2/");

        response.StatusCode.Should().Be(HttpStatusCode.OK);
        response.Header("Docker-Distribution-API-Version").Should().Be("registry/2.0");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Get_manifest_returns_the_pushed_bytes_and_headers(bool byDigest)
    {
        var repo = RegistryFixture.NewRepo();
        var image = await _client.PushImageAsync(repo, "v1");

        var response = await _client.GetManifestAsync(repo, byDigest ? image.Manifest.Digest : "v1");

        response.StatusCode.Should().Be(HttpStatusCode.OK);
        (await response.Content.ReadAsByteArrayAsync()).Should().Equal(image.Manifest.Bytes);
        response.Content.Headers.ContentType!.MediaType.Should().Be(MediaTypes.OciManifest);
        response.Header("Docker-Content-Digest").Should().Be(image.Manifest.Digest);
        response.Content.Headers.ContentLength.Should().Be(image.Manifest.Size);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Head_manifest_returns_200_with_digest_length_type_and_no_body(bool byDigest)
    {
        var repo = RegistryFixture.NewRepo();
        var image = await _client.PushImageAsync(repo, "v1");

        var response = await _client.GetManifestAsync(repo, byDigest ? image.Manifest.Digest : "v1", HttpMethod.Head);

        response.StatusCode.Should().Be(HttpStatusCode.OK);
        response.Header("Docker-Content-Digest").Should().Be(image.Manifest.Digest);
        response.Content.Headers.ContentLength.Should().Be(image.Manifest.Size);
        response.Content.Headers.ContentType!.MediaType.Should().Be(MediaTypes.OciManifest);
        (await response.Content.ReadAsByteArrayAsync()).Should().BeEmpty();
    }

    [Theory]
    [InlineData("GET")]
    [InlineData("HEAD")]
    public async Task Nonexistent_manifest_returns_404(string method)
    {
        // The conformance suite asks for this name, which is not even a valid tag, and expects a plain 404.
        var repo = RegistryFixture.NewRepo();
        await _client.PushImageAsync(repo, "v1");

        var response = await _client.GetManifestAsync(repo, ".INVALID_MANIFEST_NAME", new HttpMethod(method));

        response.StatusCode.Should().Be(HttpStatusCode.NotFound, await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Get_manifest_with_malformed_digest_returns_400_or_404_with_error_json()
    {
        var repo = RegistryFixture.NewRepo();
        await _client.PushImageAsync(repo, "v1");

        var response = await _client.GetManifestAsync(repo, "sha256:totallywrong");

        response.StatusCode.Should().BeOneOf(HttpStatusCode.BadRequest, HttpStatusCode.NotFound);
        await response.ShouldBeErrorAsync(response.StatusCode);
    }

    [Fact]
    public async Task Manifest_is_not_served_from_another_repository()
    {
        var repo = RegistryFixture.NewRepo();
        var image = await _client.PushImageAsync(repo, "v1");
        var other = RegistryFixture.NewRepo();
        await _client.PushImageAsync(other, "v1");

        var response = await _client.GetManifestAsync(other, image.Manifest.Digest);

        response.StatusCode.Should().Be(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Get_blob_returns_the_pushed_bytes_with_digest_and_length()
    {
        var repo = RegistryFixture.NewRepo();
        var blob = await _client.PushBlobAsync(repo, Oci.RandomBlob(5000));

        var response = await _client.GetAsync($"v2/{repo}/blobs/{blob.Digest}");

        response.StatusCode.Should().Be(HttpStatusCode.OK);
        (await response.Content.ReadAsByteArrayAsync()).Should().Equal(blob.Bytes);
        response.Header("Docker-Content-Digest").Should().Be(blob.Digest);
        response.Content.Headers.ContentLength.Should().Be(blob.Size);
    }

    [Fact]
    public async Task Head_blob_returns_200_with_length_and_digest_and_no_body()
    {
        var repo = RegistryFixture.NewRepo();
        var blob = await _client.PushBlobAsync(repo, Oci.RandomBlob(5000));

        var response = await _client.SendAsync(HttpMethod.Head, $"v2/{repo}/blobs/{blob.Digest}");

        response.StatusCode.Should().Be(HttpStatusCode.OK);
        response.Header("Docker-Content-Digest").Should().Be(blob.Digest);
        response.Content.Headers.ContentLength.Should().Be(blob.Size);
        (await response.Content.ReadAsByteArrayAsync()).Should().BeEmpty();
    }

    [Theory]
    [InlineData("GET")]
    [InlineData("HEAD")]
    public async Task Nonexistent_blob_returns_404(string method)
    {
        var repo = RegistryFixture.NewRepo();
        await _client.PushBlobAsync(repo, Oci.RandomBlob());

        var response = await _client.SendAsync(new HttpMethod(method), $"v2/{repo}/blobs/{Http.Sha256("hello world"u8.ToArray())}");

        response.StatusCode.Should().Be(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Blob_is_not_served_from_a_repository_it_was_not_pushed_to()
    {
        var repo = RegistryFixture.NewRepo();
        var blob = await _client.PushBlobAsync(repo, Oci.RandomBlob());
        var other = RegistryFixture.NewRepo();
        await _client.PushBlobAsync(other, Oci.RandomBlob());

        var response = await _client.GetAsync($"v2/{other}/blobs/{blob.Digest}");

        response.StatusCode.Should().Be(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Blob_etag_is_the_quoted_digest()
    {
        var repo = RegistryFixture.NewRepo();
        var blob = await _client.PushBlobAsync(repo, Oci.RandomBlob());

        var response = await _client.GetAsync($"v2/{repo}/blobs/{blob.Digest}");

        response.Headers.ETag.Should().NotBeNull();
        response.Headers.ETag!.Tag.Should().Be($"\"{blob.Digest}\"");
    }

    [Fact]
    public async Task Blob_range_request_returns_206_with_the_slice_and_content_range()
    {
        var repo = RegistryFixture.NewRepo();
        var blob = await _client.PushBlobAsync(repo, Oci.RandomBlob(1000));

        var response = await _client.SendAsync(HttpMethod.Get, $"v2/{repo}/blobs/{blob.Digest}", null, ("Range", "bytes=100-199"));

        response.StatusCode.Should().Be(HttpStatusCode.PartialContent);
        (await response.Content.ReadAsByteArrayAsync()).Should().Equal(blob.Bytes[100..200]);
        response.Content.Headers.ContentRange.Should().Be(new ContentRangeHeaderValue(100, 199, 1000));
        response.Content.Headers.ContentLength.Should().Be(100);
    }

    [Fact]
    public async Task Blob_open_ended_range_returns_the_rest_of_the_blob()
    {
        var repo = RegistryFixture.NewRepo();
        var blob = await _client.PushBlobAsync(repo, Oci.RandomBlob(1000));

        var response = await _client.SendAsync(HttpMethod.Get, $"v2/{repo}/blobs/{blob.Digest}", null, ("Range", "bytes=900-"));

        response.StatusCode.Should().Be(HttpStatusCode.PartialContent);
        (await response.Content.ReadAsByteArrayAsync()).Should().Equal(blob.Bytes[900..]);
        response.Content.Headers.ContentRange.Should().Be(new ContentRangeHeaderValue(900, 999, 1000));
    }

    [Fact]
    public async Task Blob_suffix_range_returns_the_last_bytes()
    {
        var repo = RegistryFixture.NewRepo();
        var blob = await _client.PushBlobAsync(repo, Oci.RandomBlob(1000));

        var response = await _client.SendAsync(HttpMethod.Get, $"v2/{repo}/blobs/{blob.Digest}", null, ("Range", "bytes=-10"));

        response.StatusCode.Should().Be(HttpStatusCode.PartialContent);
        (await response.Content.ReadAsByteArrayAsync()).Should().Equal(blob.Bytes[990..]);
    }

    [Fact]
    public async Task Blob_unsatisfiable_range_returns_416_with_the_size()
    {
        var repo = RegistryFixture.NewRepo();
        var blob = await _client.PushBlobAsync(repo, Oci.RandomBlob(1000));

        using var request = new HttpRequestMessage(HttpMethod.Get, $"v2/{repo}/blobs/{blob.Digest}");
        request.Headers.Range = new RangeHeaderValue(5000, 6000);

        // Headers only: the status and Content-Range are the contract, whatever body comes with them.
        var response = await _client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);

        response.StatusCode.Should().Be(HttpStatusCode.RequestedRangeNotSatisfiable);
        response.Content.Headers.ContentRange.Should().NotBeNull();
        response.Content.Headers.ContentRange!.Length.Should().Be(1000);
    }
}
