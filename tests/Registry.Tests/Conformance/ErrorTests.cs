using System.Net;
using System.Text;
using Registry.Tests.Infrastructure;

namespace Registry.Tests.Conformance;

/// <summary>Spec "Error Codes": every failure is <c>{"errors":[{"code":..,"message":..}]}</c> with the right code and status.</summary>
/// <remarks>Against one in-process server.</remarks>
public sealed class ErrorTests(RegistryFixture fixture) : ErrorTestsBase(fixture), IClassFixture<RegistryFixture>;

/// <summary>Spec "Error Codes": every failure is <c>{"errors":[{"code":..,"message":..}]}</c> with the right code and status.</summary>
/// <remarks>
/// What every registry target must do: one server (<see cref="ErrorTests"/>) and the scale-out stack through its
/// proxy in front of two replicas (<c>Stack.ScaleOutErrorTests</c>).
/// </remarks>
public abstract class ErrorTestsBase(IRegistryTarget registry)
{
    private readonly HttpClient _client = registry.Client;

    // ---- names ----

    [Theory]
    [InlineData("Upper/case")]
    [InlineData("repo-/trailing")]
    [InlineData("a..b")]
    [InlineData("a___b")]
    [InlineData("-leading")]
    public async Task Invalid_repository_name_returns_400_NAME_INVALID(string name)
    {
        var response = await _client.GetAsync($"v2/{name}/tags/list");

        await response.ShouldBeErrorAsync(HttpStatusCode.BadRequest, "NAME_INVALID");
    }

    [Fact]
    public async Task Repository_name_over_255_characters_returns_400_NAME_INVALID()
    {
        var name = string.Join('/', Enumerable.Repeat(new string('a', 63), 4)) + "/abcd"; // 4 * 64 + 4 = 260

        var response = await _client.PostAsync($"v2/{name}/blobs/uploads/", null);

        name.Length.Should().BeGreaterThan(255);
        await response.ShouldBeErrorAsync(HttpStatusCode.BadRequest, "NAME_INVALID");
    }

    [Fact]
    public async Task Tags_list_of_an_unknown_repository_returns_404_NAME_UNKNOWN()
    {
        var response = await _client.GetAsync($"v2/{RegistryFixture.NewRepo()}/tags/list");

        await response.ShouldBeErrorAsync(HttpStatusCode.NotFound, "NAME_UNKNOWN");
    }

    // ---- digests ----

    [Theory]
    [InlineData("md5:d41d8cd98f00b204e9800998ecf8427e")]
    [InlineData("sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855")]
    [InlineData("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85")]
    [InlineData("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8555")]
    [InlineData("sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")]
    public async Task Blob_get_with_invalid_or_unsupported_digest_returns_400_DIGEST_INVALID(string digest)
    {
        var repo = RegistryFixture.NewRepo();
        await _client.PushBlobAsync(repo, Oci.RandomBlob());

        var response = await _client.GetAsync($"v2/{repo}/blobs/{digest}");

        await response.ShouldBeErrorAsync(HttpStatusCode.BadRequest, "DIGEST_INVALID");
    }

    [Theory]
    [InlineData("md5:d41d8cd98f00b204e9800998ecf8427e")]
    [InlineData("sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855")]
    [InlineData("sha256:abc")]
    public async Task Upload_completed_with_invalid_digest_returns_400_DIGEST_INVALID(string digest)
    {
        var repo = RegistryFixture.NewRepo();
        var location = await _client.StartUploadAsync(repo);

        var response = await _client.PutAsync(location.WithQuery($"digest={digest}"), Oci.Octets([1, 2, 3]));

        await response.ShouldBeErrorAsync(HttpStatusCode.BadRequest, "DIGEST_INVALID");
    }

    [Fact]
    public async Task Referrers_with_invalid_digest_returns_400()
    {
        var repo = RegistryFixture.NewRepo();
        await _client.PushImageAsync(repo, "v1");

        var response = await _client.GetAsync($"v2/{repo}/referrers/sha256:ABC");

        await response.ShouldBeErrorAsync(HttpStatusCode.BadRequest, "DIGEST_INVALID");
    }

    // ---- unknown content ----

    [Theory]
    [InlineData("GET")]
    [InlineData("DELETE")]
    public async Task Unknown_blob_returns_404_BLOB_UNKNOWN(string method)
    {
        var repo = RegistryFixture.NewRepo();
        await _client.PushBlobAsync(repo, Oci.RandomBlob());

        var response = await _client.SendAsync(new HttpMethod(method), $"v2/{repo}/blobs/{Oci.UnknownDigest()}");

        await response.ShouldBeErrorAsync(HttpStatusCode.NotFound, "BLOB_UNKNOWN");
    }

    [Fact]
    public async Task Unknown_tag_returns_404_MANIFEST_UNKNOWN()
    {
        var repo = RegistryFixture.NewRepo();
        await _client.PushImageAsync(repo, "v1");

        var response = await _client.GetManifestAsync(repo, "v2");

        await response.ShouldBeErrorAsync(HttpStatusCode.NotFound, "MANIFEST_UNKNOWN");
    }

    [Fact]
    public async Task Unknown_manifest_digest_returns_404_MANIFEST_UNKNOWN()
    {
        var repo = RegistryFixture.NewRepo();
        await _client.PushImageAsync(repo, "v1");

        var response = await _client.GetManifestAsync(repo, Oci.UnknownDigest());

        await response.ShouldBeErrorAsync(HttpStatusCode.NotFound, "MANIFEST_UNKNOWN");
    }

    // ---- manifest validation ----

    [Fact]
    public async Task Manifest_whose_layer_is_missing_returns_400_MANIFEST_BLOB_UNKNOWN()
    {
        var repo = RegistryFixture.NewRepo();
        var config = await _client.PushBlobAsync(repo, Oci.RandomConfig());
        var manifest = Oci.ImageManifest(config.Descriptor(), [Oci.RandomBlob().Descriptor()]);

        var response = await _client.PutManifestAsync(repo, "v1", manifest);

        await response.ShouldBeErrorAsync(HttpStatusCode.BadRequest, "MANIFEST_BLOB_UNKNOWN");
        (await _client.GetManifestAsync(repo, manifest.Digest)).StatusCode.Should().Be(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Manifest_whose_config_is_missing_returns_400_MANIFEST_BLOB_UNKNOWN()
    {
        var repo = RegistryFixture.NewRepo();
        var layer = await _client.PushBlobAsync(repo, Oci.RandomBlob());
        var manifest = Oci.ImageManifest(Oci.RandomConfig().Descriptor(), [layer.Descriptor()]);

        var response = await _client.PutManifestAsync(repo, "v1", manifest);

        await response.ShouldBeErrorAsync(HttpStatusCode.BadRequest, "MANIFEST_BLOB_UNKNOWN");
    }

    [Fact]
    public async Task Index_whose_child_manifest_is_missing_returns_400_MANIFEST_BLOB_UNKNOWN()
    {
        var repo = RegistryFixture.NewRepo();
        var present = await _client.PushImageAsync(repo, "v1");
        var absent = Oci.ImageManifest(Oci.RandomConfig().Descriptor(), []);
        var index = Oci.Index([present.Manifest.Descriptor(), absent.Descriptor()]);

        var response = await _client.PutManifestAsync(repo, "multi", index);

        await response.ShouldBeErrorAsync(HttpStatusCode.BadRequest, "MANIFEST_BLOB_UNKNOWN");
    }

    [Fact]
    public async Task Manifest_that_is_not_json_returns_400_MANIFEST_INVALID()
    {
        var repo = RegistryFixture.NewRepo();
        var manifest = new Content("blablabla"u8.ToArray(), MediaTypes.OciManifest);

        var response = await _client.PutManifestAsync(repo, "v1", manifest);

        await response.ShouldBeErrorAsync(HttpStatusCode.BadRequest, "MANIFEST_INVALID");
    }

    [Fact]
    public async Task Manifest_whose_media_type_disagrees_with_content_type_returns_400_MANIFEST_INVALID()
    {
        var repo = RegistryFixture.NewRepo();
        var config = await _client.PushBlobAsync(repo, Oci.RandomConfig());
        var manifest = Oci.ImageManifest(config.Descriptor(), [], mediaTypeField: MediaTypes.OciIndex);

        var response = await _client.PutManifestAsync(repo, "v1", manifest, MediaTypes.OciManifest);

        await response.ShouldBeErrorAsync(HttpStatusCode.BadRequest, "MANIFEST_INVALID");
    }

    [Fact]
    public async Task Manifest_put_by_digest_that_does_not_match_the_body_returns_400_DIGEST_INVALID()
    {
        var repo = RegistryFixture.NewRepo();
        var config = await _client.PushBlobAsync(repo, Oci.RandomConfig());
        var manifest = Oci.ImageManifest(config.Descriptor(), []);

        var response = await _client.PutManifestAsync(repo, Oci.UnknownDigest(), manifest);

        await response.ShouldBeErrorAsync(HttpStatusCode.BadRequest, "DIGEST_INVALID");
    }

    [Fact]
    public async Task Manifest_over_4_MiB_returns_413()
    {
        var repo = RegistryFixture.NewRepo();
        var config = await _client.PushBlobAsync(repo, Oci.RandomConfig());
        var padding = new string('x', 4 * 1024 * 1024);
        var manifest = Oci.ImageManifest(config.Descriptor(), [], annotations: new Dictionary<string, string> { ["pad"] = padding });

        var response = await _client.PutManifestAsync(repo, "big", manifest);

        manifest.Size.Should().BeGreaterThan(4 * 1024 * 1024);
        await response.ShouldBeErrorAsync(HttpStatusCode.RequestEntityTooLarge);
        (await _client.GetManifestAsync(repo, "big")).StatusCode.Should().Be(HttpStatusCode.NotFound);
    }

    // ---- upload sessions ----

    [Theory]
    [InlineData("GET")]
    [InlineData("PATCH")]
    [InlineData("PUT")]
    [InlineData("DELETE")]
    public async Task Unknown_upload_id_returns_404_BLOB_UPLOAD_UNKNOWN(string method)
    {
        var repo = RegistryFixture.NewRepo();
        await _client.PushBlobAsync(repo, Oci.RandomBlob());
        var blob = Oci.RandomBlob(16);
        var query = method == "PUT" ? $"?digest={blob.Digest}" : "";
        var content = method is "PATCH" or "PUT" ? Oci.Octets(blob.Bytes) : null;

        var response = await _client.SendAsync(new HttpMethod(method),
            $"v2/{repo}/blobs/uploads/{Guid.NewGuid()}{query}", content);

        await response.ShouldBeErrorAsync(HttpStatusCode.NotFound, "BLOB_UPLOAD_UNKNOWN");
    }

    [Fact]
    public async Task Upload_id_used_under_another_repository_returns_404_BLOB_UPLOAD_UNKNOWN()
    {
        var repo = RegistryFixture.NewRepo();
        var other = RegistryFixture.NewRepo();
        await _client.PushBlobAsync(other, Oci.RandomBlob());
        var location = new Uri(_client.BaseAddress!, await _client.StartUploadAsync(repo));
        var stolen = location.PathAndQuery.Replace($"/v2/{repo}/", $"/v2/{other}/");

        var response = await _client.PatchAsync(stolen, Oci.Chunk(Oci.RandomBlob(10).Bytes, 0));

        await response.ShouldBeErrorAsync(HttpStatusCode.NotFound, "BLOB_UPLOAD_UNKNOWN");
        (await _client.GetAsync(location)).StatusCode.Should().Be(HttpStatusCode.NoContent);
    }

    // ---- routing ----

    [Fact]
    public async Task Unknown_route_returns_404_with_error_json()
    {
        var response = await _client.GetAsync($"v2/{RegistryFixture.NewRepo()}/nonsense/here");

        await response.ShouldBeErrorAsync(HttpStatusCode.NotFound);
    }

    [Theory]
    [InlineData("PATCH", "manifests/latest")]
    [InlineData("POST", "manifests/latest")]
    [InlineData("PUT", "blobs/sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a")]
    [InlineData("DELETE", "tags/list")]
    public async Task Wrong_method_returns_405_UNSUPPORTED(string method, string path)
    {
        var repo = RegistryFixture.NewRepo();
        await _client.PushImageAsync(repo, "latest");

        var response = await _client.SendAsync(new HttpMethod(method), $"v2/{repo}/{path}",
            new ByteArrayContent(Encoding.UTF8.GetBytes("{}")));

        await response.ShouldBeErrorAsync(HttpStatusCode.MethodNotAllowed, "UNSUPPORTED");
    }
}
