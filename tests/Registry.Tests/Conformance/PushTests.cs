using System.Net;
using Registry.Tests.Infrastructure;

namespace Registry.Tests.Conformance;

/// <summary>The Push workflow: spec "Pushing blobs" (monolithic, chunked, mount) and "Pushing Manifests".</summary>
/// <remarks>Against one in-process server.</remarks>
public sealed class PushTests(RegistryFixture fixture) : PushTestsBase(fixture), IClassFixture<RegistryFixture>;

/// <summary>The Push workflow: spec "Pushing blobs" (monolithic, chunked, mount) and "Pushing Manifests".</summary>
/// <remarks>
/// What every registry target must do: one server (<see cref="PushTests"/>) and the scale-out stack through its
/// proxy in front of two replicas (<c>Stack.ScaleOutPushTests</c>).
/// </remarks>
public abstract class PushTestsBase(IRegistryTarget registry)
{
    private readonly HttpClient _client = registry.Client;

    private async Task<bool> BlobExistsAsync(string repo, string digest) =>
        (await _client.SendAsync(HttpMethod.Head, $"v2/{repo}/blobs/{digest}")).StatusCode == HttpStatusCode.OK;

    // ---- blob uploads ----

    [Fact]
    public async Task Post_upload_returns_202_with_a_session_location()
    {
        var repo = RegistryFixture.NewRepo();

        var response = await _client.PostAsync($"v2/{repo}/blobs/uploads/", null);

        response.StatusCode.Should().Be(HttpStatusCode.Accepted);
        response.Headers.Location.Should().NotBeNull();
        new Uri(_client.BaseAddress!, response.Headers.Location!).AbsolutePath.Should().StartWith($"/v2/{repo}/blobs/uploads/");
    }

    [Fact]
    public async Task Monolithic_put_returns_201_with_blob_location_and_the_blob_is_served()
    {
        var repo = RegistryFixture.NewRepo();
        var blob = Oci.RandomBlob(3000);
        var location = await _client.StartUploadAsync(repo);

        var response = await _client.PutAsync(location.WithQuery($"digest={blob.Digest}"), Oci.Octets(blob.Bytes));

        response.StatusCode.Should().Be(HttpStatusCode.Created);
        response.Headers.Location.Should().NotBeNull();
        response.Header("Docker-Content-Digest").Should().Be(blob.Digest);
        (await _client.GetByteArrayAsync(response.Headers.Location!)).Should().Equal(blob.Bytes);
    }

    [Fact]
    public async Task Single_post_with_digest_returns_201_with_blob_location()
    {
        var repo = RegistryFixture.NewRepo();
        var blob = Oci.RandomBlob(3000);

        var response = await _client.PostBlobAsync(repo, blob.Bytes, blob.Digest);

        response.StatusCode.Should().Be(HttpStatusCode.Created);
        response.Headers.Location.Should().NotBeNull();
        (await _client.GetByteArrayAsync($"v2/{repo}/blobs/{blob.Digest}")).Should().Equal(blob.Bytes);
    }

    [Fact]
    public async Task Streamed_patch_without_content_range_returns_202()
    {
        var repo = RegistryFixture.NewRepo();
        var blob = Oci.RandomBlob(42);
        var location = await _client.StartUploadAsync(repo);

        var response = await _client.PatchAsync(location, Oci.Octets(blob.Bytes));

        response.StatusCode.Should().Be(HttpStatusCode.Accepted);
        response.Headers.Location.Should().NotBeNull();
        response.Header("Range").Should().Be($"0-{blob.Size - 1}");
    }

    [Fact]
    public async Task Put_without_body_after_streamed_patch_returns_201_and_the_blob_is_served()
    {
        var repo = RegistryFixture.NewRepo();
        var blob = Oci.RandomBlob(42);
        var location = await _client.StartUploadAsync(repo);
        var patch = await _client.PatchAsync(location, Oci.Octets(blob.Bytes));

        var response = await _client.PutAsync(patch.Headers.Location!.WithQuery($"digest={blob.Digest}"), null);

        response.StatusCode.Should().Be(HttpStatusCode.Created);
        response.Headers.Location.Should().NotBeNull();
        (await _client.GetByteArrayAsync($"v2/{repo}/blobs/{blob.Digest}")).Should().Equal(blob.Bytes);
    }

    [Fact]
    public async Task First_chunk_returns_202_with_range_of_bytes_received()
    {
        var repo = RegistryFixture.NewRepo();
        var blob = Oci.RandomBlob(42);
        var location = await _client.StartUploadAsync(repo);

        var response = await _client.PatchAsync(location, Oci.Chunk(blob.Bytes[..22], 0));

        response.StatusCode.Should().Be(HttpStatusCode.Accepted);
        response.Headers.Location.Should().NotBeNull();
        response.Header("Range").Should().Be("0-21");
    }

    [Fact]
    public async Task Chunk_out_of_order_returns_416()
    {
        var repo = RegistryFixture.NewRepo();
        var blob = Oci.RandomBlob(42);
        var location = await _client.StartUploadAsync(repo);

        var response = await _client.PatchAsync(location, Oci.Chunk(blob.Bytes[22..], 22));

        response.StatusCode.Should().Be(HttpStatusCode.RequestedRangeNotSatisfiable);
    }

    [Fact]
    public async Task Retrying_a_chunk_already_received_returns_416()
    {
        var repo = RegistryFixture.NewRepo();
        var blob = Oci.RandomBlob(42);
        var location = await _client.StartUploadAsync(repo);
        var first = await _client.PatchAsync(location, Oci.Chunk(blob.Bytes[..22], 0));

        var response = await _client.PatchAsync(first.Headers.Location!, Oci.Chunk(blob.Bytes[..22], 0));

        response.StatusCode.Should().Be(HttpStatusCode.RequestedRangeNotSatisfiable);
    }

    [Fact]
    public async Task Upload_status_returns_204_with_location_and_range()
    {
        var repo = RegistryFixture.NewRepo();
        var blob = Oci.RandomBlob(42);
        var location = await _client.StartUploadAsync(repo);
        var patch = await _client.PatchAsync(location, Oci.Chunk(blob.Bytes[..22], 0));

        var response = await _client.GetAsync(patch.Headers.Location!);

        response.StatusCode.Should().Be(HttpStatusCode.NoContent);
        response.Headers.Location.Should().NotBeNull();
        response.Header("Range").Should().Be("0-21");
    }

    [Fact]
    public async Task Upload_status_at_the_first_location_still_reports_progress()
    {
        // The conformance suite asks for the status at the Location the POST gave, after a chunk moved on.
        var repo = RegistryFixture.NewRepo();
        var blob = Oci.RandomBlob(42);
        var location = await _client.StartUploadAsync(repo);
        await _client.PatchAsync(location, Oci.Chunk(blob.Bytes[..22], 0));

        var response = await _client.GetAsync(location);

        response.StatusCode.Should().Be(HttpStatusCode.NoContent);
        response.Headers.Location.Should().NotBeNull();
        response.Header("Range").Should().Be("0-21");
    }

    [Fact]
    public async Task Chunked_upload_completes_with_put_without_body()
    {
        var repo = RegistryFixture.NewRepo();
        var blob = Oci.RandomBlob(42);
        var location = await _client.StartUploadAsync(repo);
        var first = await _client.PatchAsync(location, Oci.Chunk(blob.Bytes[..22], 0));
        var second = await _client.PatchAsync(first.Headers.Location!, Oci.Chunk(blob.Bytes[22..], 22));
        second.StatusCode.Should().Be(HttpStatusCode.Accepted);
        second.Header("Range").Should().Be("0-41");

        var response = await _client.PutAsync(second.Headers.Location!.WithQuery($"digest={blob.Digest}"), null);

        response.StatusCode.Should().Be(HttpStatusCode.Created);
        response.Headers.Location.Should().NotBeNull();
        (await _client.GetByteArrayAsync($"v2/{repo}/blobs/{blob.Digest}")).Should().Equal(blob.Bytes);
    }

    [Fact]
    public async Task Chunked_upload_completes_with_the_final_chunk_in_the_put()
    {
        var repo = RegistryFixture.NewRepo();
        var blob = Oci.RandomBlob(1000);
        var location = await _client.StartUploadAsync(repo);
        var first = await _client.PatchAsync(location, Oci.Chunk(blob.Bytes[..600], 0));

        var response = await _client.PutAsync(first.Headers.Location!.WithQuery($"digest={blob.Digest}"),
            Oci.Chunk(blob.Bytes[600..], 600));

        response.StatusCode.Should().Be(HttpStatusCode.Created);
        (await _client.GetByteArrayAsync($"v2/{repo}/blobs/{blob.Digest}")).Should().Equal(blob.Bytes);
    }

    [Fact]
    public async Task Many_chunks_assemble_the_exact_blob()
    {
        var repo = RegistryFixture.NewRepo();
        var blob = Oci.RandomBlob(100_000);

        await _client.PushChunkedAsync(repo, blob, 7_000);

        (await _client.GetByteArrayAsync($"v2/{repo}/blobs/{blob.Digest}")).Should().Equal(blob.Bytes);
    }

    [Fact]
    public async Task Deleting_an_upload_returns_204_and_the_session_is_gone()
    {
        var repo = RegistryFixture.NewRepo();
        var start = await _client.StartUploadAsync(repo);
        var location = (await _client.PatchAsync(start, Oci.Chunk(Oci.RandomBlob(10).Bytes, 0))).Headers.Location!;

        var response = await _client.DeleteAsync(location);

        response.StatusCode.Should().Be(HttpStatusCode.NoContent);
        await (await _client.GetAsync(location)).ShouldBeErrorAsync(HttpStatusCode.NotFound, "BLOB_UPLOAD_UNKNOWN");
    }

    [Fact]
    public async Task Put_with_wrong_digest_returns_400_DIGEST_INVALID_and_nothing_is_stored()
    {
        var repo = RegistryFixture.NewRepo();
        var blob = Oci.RandomBlob(500);
        var claimed = Oci.UnknownDigest();
        var location = await _client.StartUploadAsync(repo);

        var response = await _client.PutAsync(location.WithQuery($"digest={claimed}"), Oci.Octets(blob.Bytes));

        await response.ShouldBeErrorAsync(HttpStatusCode.BadRequest, "DIGEST_INVALID");
        (await BlobExistsAsync(repo, claimed)).Should().BeFalse();
        (await BlobExistsAsync(repo, blob.Digest)).Should().BeFalse();
    }

    [Fact]
    public async Task Single_post_with_wrong_digest_returns_400_DIGEST_INVALID()
    {
        var repo = RegistryFixture.NewRepo();
        var blob = Oci.RandomBlob(500);
        var claimed = Oci.UnknownDigest();

        var response = await _client.PostBlobAsync(repo, blob.Bytes, claimed);

        await response.ShouldBeErrorAsync(HttpStatusCode.BadRequest, "DIGEST_INVALID");
        (await BlobExistsAsync(repo, claimed)).Should().BeFalse();
    }

    [Fact]
    public async Task Pushing_a_blob_that_already_exists_succeeds()
    {
        var repo = RegistryFixture.NewRepo();
        var blob = await _client.PushBlobAsync(repo, Oci.RandomBlob());
        var location = await _client.StartUploadAsync(repo);

        var response = await _client.PutAsync(location.WithQuery($"digest={blob.Digest}"), Oci.Octets(blob.Bytes));

        response.StatusCode.Should().Be(HttpStatusCode.Created);
        (await _client.GetByteArrayAsync($"v2/{repo}/blobs/{blob.Digest}")).Should().Equal(blob.Bytes);
    }

    [Fact]
    public async Task Blob_with_sha512_digest_is_accepted_and_served()
    {
        var repo = RegistryFixture.NewRepo();
        var data = Oci.RandomBlob(2000).Bytes;
        var digest = Oci.Sha512(data);
        var location = await _client.StartUploadAsync(repo);

        var response = await _client.PutAsync(location.WithQuery($"digest={digest}"), Oci.Octets(data));

        response.StatusCode.Should().Be(HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
        var get = await _client.GetAsync($"v2/{repo}/blobs/{digest}");
        get.StatusCode.Should().Be(HttpStatusCode.OK);
        (await get.Content.ReadAsByteArrayAsync()).Should().Equal(data);
    }

    // ---- cross-repository mount ----

    [Fact]
    public async Task Mount_from_another_repository_returns_201_with_the_blob_location()
    {
        var source = RegistryFixture.NewRepo();
        var target = RegistryFixture.NewRepo();
        var blob = await _client.PushBlobAsync(source, Oci.RandomBlob());

        var response = await _client.PostAsync($"v2/{target}/blobs/uploads/?mount={blob.Digest}&from={source}", null);

        response.StatusCode.Should().Be(HttpStatusCode.Created);
        new Uri(_client.BaseAddress!, response.Headers.Location!).AbsolutePath.Should().Be($"/v2/{target}/blobs/{blob.Digest}");
    }

    [Fact]
    public async Task Mounted_blob_is_served_by_the_target_repository()
    {
        var source = RegistryFixture.NewRepo();
        var target = RegistryFixture.NewRepo();
        var blob = await _client.PushBlobAsync(source, Oci.RandomBlob());

        await _client.PostAsync($"v2/{target}/blobs/uploads/?mount={blob.Digest}&from={source}", null);

        (await _client.GetByteArrayAsync($"v2/{target}/blobs/{blob.Digest}")).Should().Equal(blob.Bytes);
    }

    [Fact]
    public async Task Mount_without_from_of_an_existing_blob_returns_201()
    {
        var source = RegistryFixture.NewRepo();
        var target = RegistryFixture.NewRepo();
        var blob = await _client.PushBlobAsync(source, Oci.RandomBlob());

        var response = await _client.PostAsync($"v2/{target}/blobs/uploads/?mount={blob.Digest}", null);

        response.StatusCode.Should().Be(HttpStatusCode.Created);
        (await _client.GetByteArrayAsync($"v2/{target}/blobs/{blob.Digest}")).Should().Equal(blob.Bytes);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Mount_of_an_unknown_blob_returns_202_with_a_new_session(bool withFrom)
    {
        var source = RegistryFixture.NewRepo();
        var target = RegistryFixture.NewRepo();
        await _client.PushBlobAsync(source, Oci.RandomBlob());
        var from = withFrom ? $"&from={source}" : "";

        var response = await _client.PostAsync($"v2/{target}/blobs/uploads/?mount={Oci.UnknownDigest()}{from}", null);

        response.StatusCode.Should().Be(HttpStatusCode.Accepted);
        var location = response.Headers.Location!;
        new Uri(_client.BaseAddress!, location).AbsolutePath.Should().StartWith($"/v2/{target}/blobs/uploads/");
        (await _client.GetAsync(location)).StatusCode.Should().Be(HttpStatusCode.NoContent);
    }

    // ---- manifests ----

    [Fact]
    public async Task Put_manifest_by_tag_returns_201_with_location_and_digest()
    {
        var repo = RegistryFixture.NewRepo();
        var config = await _client.PushBlobAsync(repo, Oci.RandomConfig());
        var layer = await _client.PushBlobAsync(repo, Oci.RandomBlob());
        var manifest = Oci.ImageManifest(config.Descriptor(), [layer.Descriptor()]);

        var response = await _client.PutManifestAsync(repo, "latest", manifest);

        response.StatusCode.Should().Be(HttpStatusCode.Created);
        response.Headers.Location.Should().NotBeNull();
        response.Header("Docker-Content-Digest").Should().Be(manifest.Digest);
        (await (await _client.GetManifestAsync(repo, "latest")).Content.ReadAsByteArrayAsync()).Should().Equal(manifest.Bytes);
    }

    [Fact]
    public async Task Put_manifest_by_digest_returns_201_and_location_is_pullable()
    {
        var repo = RegistryFixture.NewRepo();
        var config = await _client.PushBlobAsync(repo, Oci.RandomConfig());
        var manifest = Oci.ImageManifest(config.Descriptor(), []);

        var response = await _client.PutManifestAsync(repo, manifest.Digest, manifest);

        response.StatusCode.Should().Be(HttpStatusCode.Created);
        response.Header("Docker-Content-Digest").Should().Be(manifest.Digest);
        var pulled = await _client.GetManifestAsync(response.Headers.Location!);
        pulled.StatusCode.Should().Be(HttpStatusCode.OK);
        (await pulled.Content.ReadAsByteArrayAsync()).Should().Equal(manifest.Bytes);
    }

    [Fact]
    public async Task Manifest_with_no_layers_is_accepted()
    {
        var repo = RegistryFixture.NewRepo();
        var config = await _client.PushBlobAsync(repo, Oci.RandomConfig());
        var manifest = Oci.ImageManifest(config.Descriptor(), [], mediaTypeField: null);

        var response = await _client.PutManifestAsync(repo, "emptylayer", manifest);

        response.StatusCode.Should().Be(HttpStatusCode.Created);
        response.Headers.Location.Should().NotBeNull();
    }

    [Fact]
    public async Task Same_manifest_can_be_pushed_under_several_tags()
    {
        var repo = RegistryFixture.NewRepo();
        var image = await _client.PushImageAsync(repo, "test0");

        foreach (var tag in new[] { "test1", "test2", "test3" })
        {
            var response = await _client.PutManifestAsync(repo, tag, image.Manifest);
            response.StatusCode.Should().Be(HttpStatusCode.Created);
            response.Headers.Location.Should().NotBeNull();
        }

        (await _client.TagsAsync(repo)).Should().BeEquivalentTo(["test0", "test1", "test2", "test3"]);
    }

    [Fact]
    public async Task Pushing_another_manifest_to_a_tag_moves_the_tag()
    {
        var repo = RegistryFixture.NewRepo();
        var first = await _client.PushImageAsync(repo, "latest");
        var second = await _client.PushImageAsync(repo, "latest");

        var response = await _client.GetManifestAsync(repo, "latest");

        (await response.Content.ReadAsByteArrayAsync()).Should().Equal(second.Manifest.Bytes);
        (await _client.GetManifestAsync(repo, first.Manifest.Digest)).StatusCode.Should().Be(HttpStatusCode.OK);
    }

    [Fact]
    public async Task Put_by_digest_with_tag_parameters_creates_each_tag()
    {
        var repo = RegistryFixture.NewRepo();
        var config = await _client.PushBlobAsync(repo, Oci.RandomConfig());
        var manifest = Oci.ImageManifest(config.Descriptor(), []);

        var response = await _client.PutManifestAsync(repo, $"{manifest.Digest}?tag=a&tag=b", manifest);

        response.StatusCode.Should().Be(HttpStatusCode.Created);
        (await _client.TagsAsync(repo)).Should().BeEquivalentTo(["a", "b"]);
        (await (await _client.GetManifestAsync(repo, "b")).Content.ReadAsByteArrayAsync()).Should().Equal(manifest.Bytes);
    }

    [Fact]
    public async Task Oci_index_is_accepted_and_served_with_its_media_type()
    {
        var repo = RegistryFixture.NewRepo();
        var amd = await _client.PushImageAsync(repo, "amd64");
        var arm = await _client.PushImageAsync(repo, "arm64");
        var index = Oci.Index([amd.Manifest.Descriptor(), arm.Manifest.Descriptor()]);

        var put = await _client.PutManifestAsync(repo, "multi", index);
        var response = await _client.GetManifestAsync(repo, "multi");

        put.StatusCode.Should().Be(HttpStatusCode.Created);
        response.Content.Headers.ContentType!.MediaType.Should().Be(MediaTypes.OciIndex);
        response.Header("Docker-Content-Digest").Should().Be(index.Digest);
        (await response.Content.ReadAsByteArrayAsync()).Should().Equal(index.Bytes);
    }

    [Fact]
    public async Task Docker_schema2_manifest_is_accepted_and_served_with_its_media_type()
    {
        var repo = RegistryFixture.NewRepo();
        var config = await _client.PushBlobAsync(repo, Oci.RandomConfig(MediaTypes.DockerConfig));
        var layer = await _client.PushBlobAsync(repo, Oci.RandomBlob());
        var manifest = Oci.DockerManifest(config.Descriptor(), [layer.Descriptor(MediaTypes.DockerLayerGzip)]);

        var put = await _client.PutManifestAsync(repo, "docker", manifest);
        var response = await _client.GetManifestAsync(repo, "docker");

        put.StatusCode.Should().Be(HttpStatusCode.Created);
        response.Content.Headers.ContentType!.MediaType.Should().Be(MediaTypes.DockerManifest);
        (await response.Content.ReadAsByteArrayAsync()).Should().Equal(manifest.Bytes);
    }

    [Fact]
    public async Task Docker_manifest_list_is_accepted_and_served_with_its_media_type()
    {
        var repo = RegistryFixture.NewRepo();
        var config = await _client.PushBlobAsync(repo, Oci.RandomConfig(MediaTypes.DockerConfig));
        var layer = await _client.PushBlobAsync(repo, Oci.RandomBlob());
        var child = await _client.PushManifestAsync(repo, "child",
            Oci.DockerManifest(config.Descriptor(), [layer.Descriptor(MediaTypes.DockerLayerGzip)]));
        var list = Oci.DockerManifestList([child.Descriptor()]);

        var put = await _client.PutManifestAsync(repo, "list", list);
        var response = await _client.GetManifestAsync(repo, "list");

        put.StatusCode.Should().Be(HttpStatusCode.Created);
        response.Content.Headers.ContentType!.MediaType.Should().Be(MediaTypes.DockerManifestList);
        (await response.Content.ReadAsByteArrayAsync()).Should().Equal(list.Bytes);
    }

    [Fact]
    public async Task Artifact_manifest_with_artifact_type_and_empty_config_is_accepted_and_served()
    {
        var repo = RegistryFixture.NewRepo();
        var config = await _client.PushBlobAsync(repo, Oci.EmptyConfig);
        var layer = await _client.PushBlobAsync(repo, Oci.RandomBlob());
        var manifest = Oci.ImageManifest(config.Descriptor(), [layer.Descriptor("application/vnd.example.sbom")],
            artifactType: "application/vnd.example.sbom.v1");

        var put = await _client.PutManifestAsync(repo, "sbom", manifest);
        var response = await _client.GetManifestAsync(repo, manifest.Digest);

        config.Digest.Should().Be(Oci.EmptyConfigDigest);
        put.StatusCode.Should().Be(HttpStatusCode.Created);
        response.Content.Headers.ContentType!.MediaType.Should().Be(MediaTypes.OciManifest);
        (await response.Content.ReadAsByteArrayAsync()).Should().Equal(manifest.Bytes);
    }

    [Fact]
    public async Task Manifest_with_a_subject_that_does_not_exist_is_accepted_with_OCI_Subject_header()
    {
        var repo = RegistryFixture.NewRepo();
        var absentSubject = Oci.ImageManifest(Oci.RandomConfig().Descriptor(), []);
        var config = await _client.PushBlobAsync(repo, Oci.EmptyConfig);
        var manifest = Oci.ImageManifest(config.Descriptor(), [], "application/vnd.example.sig", absentSubject.Descriptor());

        var response = await _client.PutManifestAsync(repo, manifest.Digest, manifest);

        response.StatusCode.Should().Be(HttpStatusCode.Created);
        response.Header("OCI-Subject").Should().Be(absentSubject.Digest);
    }

    [Fact]
    public async Task Index_with_a_subject_gets_OCI_Subject_header()
    {
        var repo = RegistryFixture.NewRepo();
        var subject = await _client.PushImageAsync(repo, "v1");
        var child = await _client.PushImageAsync(repo, "child");
        var index = Oci.Index([child.Manifest.Descriptor()], "application/vnd.food.stand", subject.Manifest.Descriptor());

        var response = await _client.PutManifestAsync(repo, index.Digest, index);

        response.StatusCode.Should().Be(HttpStatusCode.Created);
        response.Header("OCI-Subject").Should().Be(subject.Manifest.Digest);
    }
}
