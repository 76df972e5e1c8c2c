using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;
using Registry.Tests.Infrastructure;
using Registry.Tests.Stack;

namespace Registry.Tests.Storage;

/// <summary>The real registry with <c>Registry:Storage:Kind=s3</c> on a real Ceph, over HTTP.</summary>
[Collection(CephCollection.Name)]
public sealed class S3RegistryTests(CephStack ceph) : IAsyncLifetime
{
    private const int MiB = 1 << 20;

    private RegistryServer _server = null!;
    private HttpClient _client = null!;

    public async Task InitializeAsync()
    {
        _server = await RegistryServer.StartAsync(ceph.RegistrySettings());
        _client = _server.CreateClient();
    }

    public async Task DisposeAsync()
    {
        _client.Dispose();
        await _server.DisposeAsync();
    }

    private async Task<string> PushInChunksAsync(string repo, byte[] data, int chunk)
    {
        var location = await _client.StartUploadAsync(repo);
        for (var start = 0; start < data.Length; start += chunk)
        {
            var piece = data[start..Math.Min(data.Length, start + chunk)];
            var patch = await _client.PatchAsync(location, Http.Chunk(piece, start));
            patch.StatusCode.Should().Be(HttpStatusCode.Accepted, await patch.Content.ReadAsStringAsync());
            patch.Headers.GetValues("Range").Single().Should().Be($"0-{start + piece.Length - 1}");
            location = patch.Headers.Location!;
        }
        var digest = Http.Sha256(data);
        var separator = location.OriginalString.Contains('?') ? '&' : '?';
        var put = await _client.PutAsync($"{location.OriginalString}{separator}digest={digest}", null);
        put.StatusCode.Should().Be(HttpStatusCode.Created, await put.Content.ReadAsStringAsync());
        return digest;
    }

    private async Task PushManifestAsync(string repo, string tag, string layerDigest, int layerSize)
    {
        var config = Encoding.UTF8.GetBytes("""{"architecture":"amd64","os":"linux"}""");
        var configDigest = await _client.PushBlobAsync(repo, config);
        var manifest = Encoding.UTF8.GetBytes($$"""
            {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
             "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{{configDigest}}","size":{{config.Length}}},
             "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{{layerDigest}}","size":{{layerSize}}}]}
            """);
        var response = await _client.PutManifestAsync(repo, tag, manifest);
        response.StatusCode.Should().Be(HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
        (await _client.GetByteArrayAsync($"v2/{repo}/manifests/{tag}")).Should().Equal(manifest);
    }

    [Fact]
    public async Task A_20_MiB_blob_pushed_in_one_request_and_its_manifest_pull_back_byte_for_byte()
    {
        var repo = RegistryFixture.NewRepo("s3");
        var data = RandomNumberGenerator.GetBytes(20 * MiB);

        var digest = await _client.PushBlobAsync(repo, data);
        await PushManifestAsync(repo, "v1", digest, data.Length);

        (await _client.GetByteArrayAsync($"v2/{repo}/blobs/{digest}")).Should().Equal(data);
    }

    [Fact]
    public async Task A_20_MiB_blob_pushed_in_chunks_smaller_than_a_part_and_its_manifest_pull_back_byte_for_byte()
    {
        var repo = RegistryFixture.NewRepo("s3");
        var data = RandomNumberGenerator.GetBytes(20 * MiB + 333);

        var digest = await PushInChunksAsync(repo, data, 3 * MiB);
        await PushManifestAsync(repo, "v1", digest, data.Length);

        (await _client.GetByteArrayAsync($"v2/{repo}/blobs/{digest}")).Should().Equal(data);
    }

    [Fact]
    public async Task A_range_of_a_blob_is_served_with_206()
    {
        var repo = RegistryFixture.NewRepo("s3");
        var data = RandomNumberGenerator.GetBytes(20 * MiB);
        var digest = await PushInChunksAsync(repo, data, 8 * MiB);
        var request = new HttpRequestMessage(HttpMethod.Get, $"v2/{repo}/blobs/{digest}");
        request.Headers.Range = new RangeHeaderValue(9 * MiB + 5, 12 * MiB);

        var response = await _client.SendAsync(request);

        response.StatusCode.Should().Be(HttpStatusCode.PartialContent);
        response.Content.Headers.ContentRange!.ToString().Should().Be($"bytes {9 * MiB + 5}-{12 * MiB}/{data.Length}");
        (await response.Content.ReadAsByteArrayAsync()).Should().Equal(data[(9 * MiB + 5)..(12 * MiB + 1)]);
    }

    [Fact]
    public async Task A_blob_head_answers_its_length_and_digest()
    {
        var repo = RegistryFixture.NewRepo("s3");
        var data = RandomNumberGenerator.GetBytes(12345);
        var digest = await _client.PushBlobAsync(repo, data);

        var response = await _client.SendAsync(new HttpRequestMessage(HttpMethod.Head, $"v2/{repo}/blobs/{digest}"));

        response.StatusCode.Should().Be(HttpStatusCode.OK);
        response.Content.Headers.ContentLength.Should().Be(12345);
        response.Headers.GetValues("Docker-Content-Digest").Single().Should().Be(digest);
    }

    [Fact]
    public async Task A_push_with_the_wrong_digest_is_refused_and_leaves_nothing_to_pull()
    {
        var repo = RegistryFixture.NewRepo("s3");
        var data = RandomNumberGenerator.GetBytes(6 * MiB);
        var wrong = Http.Sha256([1, 2, 3]);

        var response = await _client.PostAsync($"v2/{repo}/blobs/uploads/?digest={wrong}", new ByteArrayContent(data));

        response.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        (await response.ErrorCodeAsync()).Should().Be("DIGEST_INVALID");
        (await _client.GetAsync($"v2/{repo}/blobs/{wrong}")).StatusCode.Should().Be(HttpStatusCode.NotFound);
    }
}

[Collection(CephCollection.Name)]
public sealed class S3RedirectTests(CephStack ceph)
{
    [Fact]
    public async Task With_redirects_on_a_pull_answers_307_to_a_presigned_url_that_serves_the_blob()
    {
        var settings = ceph.RegistrySettings();
        settings["Registry:Storage:S3:Redirect"] = "true";
        await using var server = await RegistryServer.StartAsync(settings);
        using var client = server.CreateClient();
        var repo = RegistryFixture.NewRepo("s3");
        var data = RandomNumberGenerator.GetBytes(4096);
        var digest = await client.PushBlobAsync(repo, data);

        var response = await client.GetAsync($"v2/{repo}/blobs/{digest}");

        response.StatusCode.Should().Be(HttpStatusCode.TemporaryRedirect);
        response.Headers.Location!.GetLeftPart(UriPartial.Authority).Should().Be(ceph.Endpoint.GetLeftPart(UriPartial.Authority));
        using var plain = new HttpClient();
        (await plain.GetByteArrayAsync(response.Headers.Location)).Should().Equal(data);
    }
}

/// <summary>The registry:2 import with <c>Registry:Storage:Kind=s3</c> (the import writes only the filesystem store).</summary>
[Collection(CephCollection.Name)]
public sealed class S3ImportTests(CephStack ceph, Distribution.Distribution282 registry2)
    : IClassFixture<Distribution.Distribution282>, IDisposable
{
    private readonly Clients.TempDir _temp = new("s3-import-");

    public void Dispose() => _temp.Dispose();

    [Fact]
    public async Task Starting_with_storage_kind_s3_on_a_registry2_storage_serves_without_importing_it()
    {
        var root = registry2.CopyTree(_temp.Path);

        await using var server = await RegistryServer.StartAsync(ceph.RegistrySettings(), storagePath: root);

        using var client = server.CreateClient();
        var catalog = await Http.GetJsonAsync(client, "v2/_catalog");
        catalog.GetProperty("repositories").GetArrayLength().Should().Be(0, "nothing may be imported into the filesystem store");
        var layout = new Registry.Storage.StorageLayout(root);
        File.Exists(layout.ImportMarkerPath).Should().BeFalse();
        (Directory.Exists(layout.BlobsRoot) ? Directory.EnumerateFiles(layout.BlobsRoot, "*", SearchOption.AllDirectories) : [])
            .Should().BeEmpty();
    }
}

/// <summary>
/// Two replicas, each with a storage folder of its own, sharing one bucket prefix (<c>Kind=s3</c>) and one
/// PostgreSQL database (<c>Registry:Metadata:Kind=postgres</c>): what issue #12's scale-out runs.
/// </summary>
[Collection(CephCollection.Name)]
public sealed class S3PostgresReplicaTests(CephStack ceph)
{
    private const int MiB = 1 << 20;

    [Fact]
    public async Task A_chunked_upload_whose_requests_alternate_between_two_replicas_commits_and_pulls_from_either()
    {
        var settings = ceph.RegistrySettings();
        settings["Registry:Metadata:Kind"] = "postgres";
        settings["Registry:Metadata:ConnectionString"] = await PostgresStack.CreateDatabaseAsync();
        await using var a = await RegistryServer.StartAsync(settings);
        await using var b = await RegistryServer.StartAsync(settings);
        using var clientA = a.CreateClient();
        using var clientB = b.CreateClient();
        HttpClient[] replicas = [clientA, clientB];
        var repo = RegistryFixture.NewRepo("s3pg");
        var data = RandomNumberGenerator.GetBytes(20 * MiB + 77);

        var location = await clientA.StartUploadAsync(repo);
        var turn = 1;
        for (var start = 0; start < data.Length; start += 6 * MiB, turn++)
        {
            var piece = data[start..Math.Min(data.Length, start + 6 * MiB)];
            var patch = await replicas[turn % 2].PatchAsync(location, Http.Chunk(piece, start));
            patch.StatusCode.Should().Be(HttpStatusCode.Accepted, await patch.Content.ReadAsStringAsync());
            location = patch.Headers.Location!;
        }
        var digest = Http.Sha256(data);
        var separator = location.OriginalString.Contains('?') ? '&' : '?';
        var put = await replicas[turn % 2].PutAsync($"{location.OriginalString}{separator}digest={digest}", null);

        put.StatusCode.Should().Be(HttpStatusCode.Created, await put.Content.ReadAsStringAsync());
        (await clientA.GetByteArrayAsync($"v2/{repo}/blobs/{digest}")).Should().Equal(data);
        (await clientB.GetByteArrayAsync($"v2/{repo}/blobs/{digest}")).Should().Equal(data);
    }
}

public sealed class S3SettingsTests
{
    [Fact]
    public async Task S3_storage_without_its_settings_stops_the_start_with_every_problem_listed()
    {
        var start = () => RegistryServer.StartAsync(new Dictionary<string, string?>
        {
            ["Registry:Storage:Kind"] = "s3",
            ["Registry:Storage:S3:Bucket"] = "Not_A_Bucket",
            ["Registry:Storage:S3:ServiceUrl"] = "ftp://example",
            ["Registry:Storage:S3:AccessKey"] = "key",
            ["Registry:Storage:S3:SecretKey"] = "secret",
            ["Registry:Storage:S3:RedirectExpiry"] = "8.00:00:00",
        });

        var thrown = await start.Should().ThrowAsync<OptionsValidationException>();
        thrown.Which.Failures.Should().Contain(f => f.Contains("Registry:Storage:S3:ServiceUrl must be an absolute http or https URL"))
            .And.Contain(f => f.Contains("Bucket 'Not_A_Bucket' is not a valid bucket name"))
            .And.Contain(f => f.Contains("Registry:Storage:S3:RedirectExpiry"));
    }

    [Fact]
    public async Task An_unknown_storage_kind_stops_the_start()
    {
        var start = () => RegistryServer.StartAsync(new Dictionary<string, string?> { ["Registry:Storage:Kind"] = "gcs" });

        var thrown = await start.Should().ThrowAsync<OptionsValidationException>();
        thrown.Which.Failures.Should().Contain(f => f.Contains("Registry:Storage:Kind must be 'filesystem' or 's3'"));
    }
}
