using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Registry.Tests.Infrastructure;

/// <summary>Small push helpers for the tests of this project's own behaviour.</summary>
internal static class Http
{
    public static string Sha256(byte[] data) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(data));

    public static async Task<string> PushBlobAsync(this HttpClient client, string repo, byte[] data)
    {
        var digest = Sha256(data);
        var response = await client.PostAsync($"v2/{repo}/blobs/uploads/?digest={digest}", new ByteArrayContent(data));
        response.StatusCode.Should().Be(HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
        return digest;
    }

    /// <summary>Pushes a config and one layer, then an OCI image manifest; returns the manifest bytes and digest.</summary>
    public static async Task<(byte[] Bytes, string Digest)> PushImageAsync(this HttpClient client, string repo,
        string reference, byte[]? layer = null, string? subject = null, string architecture = "amd64")
    {
        layer ??= RandomNumberGenerator.GetBytes(1000);
        var config = Encoding.UTF8.GetBytes($$"""{"architecture":"{{architecture}}","os":"linux","created":"2026-01-01T00:00:00Z","nonce":"{{Guid.NewGuid()}}"}""");
        var configDigest = await client.PushBlobAsync(repo, config);
        var layerDigest = await client.PushBlobAsync(repo, layer);
        var subjectJson = subject is null ? "" : $$""","subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{{subject}}","size":100}""";
        var manifest = Encoding.UTF8.GetBytes($$"""
            {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
             "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{{configDigest}}","size":{{config.Length}}},
             "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{{layerDigest}}","size":{{layer.Length}}}]{{subjectJson}}}
            """);
        var response = await client.PutManifestAsync(repo, reference, manifest);
        response.StatusCode.Should().Be(HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
        return (manifest, Sha256(manifest));
    }

    /// <summary>Pushes an amd64 and an arm64 image, then an OCI index of both under <paramref name="reference"/>.</summary>
    public static async Task<(byte[] Bytes, string Digest, (byte[] Bytes, string Digest)[] Children)> PushIndexAsync(
        this HttpClient client, string repo, string reference)
    {
        var amd64 = await client.PushImageAsync(repo, "amd64-" + reference, architecture: "amd64");
        var arm64 = await client.PushImageAsync(repo, "arm64-" + reference, architecture: "arm64");
        var index = Encoding.UTF8.GetBytes($$"""
            {"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
             {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{{amd64.Digest}}","size":{{amd64.Bytes.Length}},"platform":{"os":"linux","architecture":"amd64"} },
             {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{{arm64.Digest}}","size":{{arm64.Bytes.Length}},"platform":{"os":"linux","architecture":"arm64","variant":"v8"} }]}
            """);
        var response = await client.PutManifestAsync(repo, reference, index, "application/vnd.oci.image.index.v1+json");
        response.StatusCode.Should().Be(HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
        return (index, Sha256(index), [amd64, arm64]);
    }

    /// <summary>Pushes an artifact (empty config, one blob layer) that refers to <paramref name="subject"/>.</summary>
    public static async Task<(byte[] Bytes, string Digest)> PushArtifactAsync(this HttpClient client, string repo,
        string subject, string artifactType, string? tag = null)
    {
        var payload = RandomNumberGenerator.GetBytes(64);
        var layer = await client.PushBlobAsync(repo, payload);
        var manifest = Encoding.UTF8.GetBytes($$"""
            {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"{{artifactType}}",
             "config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},
             "layers":[{"mediaType":"application/octet-stream","digest":"{{layer}}","size":64}],
             "subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{{subject}}","size":1},
             "annotations":{"org.example.kind":"sbom"} }
            """);
        var digest = Sha256(manifest);
        var response = await client.PutManifestAsync(repo, tag ?? digest, manifest);
        response.StatusCode.Should().Be(HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
        return (manifest, digest);
    }

    public static async Task<JsonElement> GetJsonAsync(this HttpClient client, string path)
    {
        var response = await client.GetAsync(path);
        response.StatusCode.Should().Be(HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        using var document = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return document.RootElement.Clone();
    }

    public static Task<HttpResponseMessage> PutManifestAsync(this HttpClient client, string repo, string reference,
        byte[] manifest, string mediaType = "application/vnd.oci.image.manifest.v1+json")
    {
        var content = new ByteArrayContent(manifest);
        content.Headers.ContentType = new MediaTypeHeaderValue(mediaType);
        return client.PutAsync($"v2/{repo}/manifests/{reference}", content);
    }

    public static HttpContent Chunk(byte[] data, long start)
    {
        var content = new ByteArrayContent(data);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        content.Headers.TryAddWithoutValidation("Content-Range", $"{start}-{start + data.Length - 1}");
        return content;
    }

    public static async Task<string> ErrorCodeAsync(this HttpResponseMessage response)
    {
        using var document = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return document.RootElement.GetProperty("errors")[0].GetProperty("code").GetString()!;
    }

    public static async Task<Uri> StartUploadAsync(this HttpClient client, string repo)
    {
        var response = await client.PostAsync($"v2/{repo}/blobs/uploads/", null);
        response.StatusCode.Should().Be(HttpStatusCode.Accepted);
        return response.Headers.Location!;
    }
}
