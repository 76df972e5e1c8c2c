using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Registry.Tests.Infrastructure;

namespace Registry.Tests.Conformance;

/// <summary>Content addressed by its digest: a blob or the exact bytes of a manifest.</summary>
internal sealed record Content(byte[] Bytes, string MediaType)
{
    public string Digest { get; } = Http.Sha256(Bytes);
    public long Size => Bytes.Length;

    public Descriptor Descriptor(string? mediaType = null) => new(mediaType ?? MediaType, Digest, Size);
}

internal sealed record Descriptor(string MediaType, string Digest, long Size)
{
    public JsonObject ToJson() => new() { ["mediaType"] = MediaType, ["digest"] = Digest, ["size"] = Size };
}

/// <summary>A config, one layer and the image manifest that references them, all pushed.</summary>
internal sealed record PushedImage(Content Manifest, Content Config, Content Layer);

/// <summary>One error of the spec's error body <c>{"errors":[{"code":..,"message":..,"detail":..}]}</c>.</summary>
internal sealed record RegistryError(string Code, string? Message);

/// <summary>Builds blobs and manifests, and pushes them the ways the spec allows.</summary>
internal static class Oci
{
    /// <summary>The empty JSON blob <c>{}</c> used as the config of artifacts.</summary>
    public static readonly Content EmptyConfig = new("{}"u8.ToArray(), MediaTypes.OciEmpty);

    public const string EmptyConfigDigest = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

    public static string Sha512(byte[] data) => "sha512:" + Convert.ToHexStringLower(SHA512.HashData(data));

    /// <summary>A digest of content nobody pushed.</summary>
    public static string UnknownDigest() => Http.Sha256(RandomNumberGenerator.GetBytes(32));

    public static Content RandomBlob(int size = 256) => new(RandomNumberGenerator.GetBytes(size), MediaTypes.OciLayerGzip);

    /// <summary>An image config that differs on every call, so each test pushes fresh content.</summary>
    public static Content RandomConfig(string mediaType = MediaTypes.OciConfig) => new(Encoding.UTF8.GetBytes(
        $$"""{"architecture":"amd64","os":"linux","author":"{{Guid.NewGuid():N}}","rootfs":{"type":"layers","diff_ids":[]} }"""),
        mediaType);

    public static Content ImageManifest(Descriptor config, IEnumerable<Descriptor> layers,
        string? artifactType = null, Descriptor? subject = null, IDictionary<string, string>? annotations = null,
        string? mediaTypeField = MediaTypes.OciManifest)
    {
        var json = new JsonObject { ["schemaVersion"] = 2 };
        if (mediaTypeField is not null) json["mediaType"] = mediaTypeField;
        if (artifactType is not null) json["artifactType"] = artifactType;
        json["config"] = config.ToJson();
        json["layers"] = new JsonArray(layers.Select(l => (JsonNode)l.ToJson()).ToArray());
        if (subject is not null) json["subject"] = subject.ToJson();
        if (annotations is not null) json["annotations"] = Annotations(annotations);
        return new Content(Serialize(json), MediaTypes.OciManifest);
    }

    public static Content Index(IEnumerable<Descriptor> manifests, string? artifactType = null,
        Descriptor? subject = null, IDictionary<string, string>? annotations = null)
    {
        var json = new JsonObject { ["schemaVersion"] = 2, ["mediaType"] = MediaTypes.OciIndex };
        if (artifactType is not null) json["artifactType"] = artifactType;
        json["manifests"] = new JsonArray(manifests.Select(m =>
        {
            var d = m.ToJson();
            d["platform"] = new JsonObject { ["architecture"] = "amd64", ["os"] = "linux" };
            return (JsonNode)d;
        }).ToArray());
        if (subject is not null) json["subject"] = subject.ToJson();
        if (annotations is not null) json["annotations"] = Annotations(annotations);
        return new Content(Serialize(json), MediaTypes.OciIndex);
    }

    public static Content DockerManifest(Descriptor config, IEnumerable<Descriptor> layers)
    {
        var json = new JsonObject
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = MediaTypes.DockerManifest,
            ["config"] = config.ToJson(),
            ["layers"] = new JsonArray(layers.Select(l => (JsonNode)l.ToJson()).ToArray()),
        };
        return new Content(Serialize(json), MediaTypes.DockerManifest);
    }

    public static Content DockerManifestList(IEnumerable<Descriptor> manifests)
    {
        var json = new JsonObject
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = MediaTypes.DockerManifestList,
            ["manifests"] = new JsonArray(manifests.Select(m =>
            {
                var d = m.ToJson();
                d["platform"] = new JsonObject { ["architecture"] = "amd64", ["os"] = "linux" };
                return (JsonNode)d;
            }).ToArray()),
        };
        return new Content(Serialize(json), MediaTypes.DockerManifestList);
    }

    /// <summary>Indented, as real clients often push, so that a server that re-serialises is caught.</summary>
    private static byte[] Serialize(JsonObject json) =>
        Encoding.UTF8.GetBytes(json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));

    private static JsonObject Annotations(IDictionary<string, string> annotations)
    {
        var json = new JsonObject();
        foreach (var (key, value) in annotations) json[key] = value;
        return json;
    }

    // ---- HTTP ----

    public static Uri WithQuery(this Uri location, string query)
    {
        var text = location.OriginalString;
        return new Uri(text + (text.Contains('?') ? "&" : "?") + query, UriKind.RelativeOrAbsolute);
    }

    public static HttpContent Octets(byte[] data)
    {
        var content = new ByteArrayContent(data);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        return content;
    }

    public static HttpContent Chunk(byte[] data, long start)
    {
        var content = Octets(data);
        content.Headers.TryAddWithoutValidation("Content-Range", $"{start}-{start + data.Length - 1}");
        return content;
    }

    /// <summary>POST /v2/&lt;name&gt;/blobs/uploads/ and return the session's Location.</summary>
    public static async Task<Uri> StartUploadAsync(this HttpClient client, string repo)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, $"v2/{repo}/blobs/uploads/")
        {
            Content = new ByteArrayContent([]),
        };
        var response = await client.SendAsync(request);
        response.StatusCode.Should().Be(HttpStatusCode.Accepted, await response.Content.ReadAsStringAsync());
        response.Headers.Location.Should().NotBeNull();
        return response.Headers.Location!;
    }

    /// <summary>Monolithic POST then PUT with the whole blob; asserts 201.</summary>
    public static async Task<Content> PushBlobAsync(this HttpClient client, string repo, Content blob)
    {
        var location = await client.StartUploadAsync(repo);
        var response = await client.PutAsync(location.WithQuery($"digest={blob.Digest}"), Octets(blob.Bytes));
        response.StatusCode.Should().Be(HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
        return blob;
    }

    /// <summary>Single POST with ?digest= and the whole blob.</summary>
    public static Task<HttpResponseMessage> PostBlobAsync(this HttpClient client, string repo, byte[] data, string digest) =>
        client.PostAsync($"v2/{repo}/blobs/uploads/?digest={digest}", Octets(data));

    /// <summary>POST, then a PATCH with Content-Range per chunk, then PUT ?digest= without a body; asserts every step.</summary>
    public static async Task<Content> PushChunkedAsync(this HttpClient client, string repo, Content blob, int chunkSize)
    {
        var location = await client.StartUploadAsync(repo);
        for (var offset = 0; offset < blob.Bytes.Length; offset += chunkSize)
        {
            var chunk = blob.Bytes[offset..Math.Min(offset + chunkSize, blob.Bytes.Length)];
            var patch = await client.PatchAsync(location, Chunk(chunk, offset));
            patch.StatusCode.Should().Be(HttpStatusCode.Accepted, await patch.Content.ReadAsStringAsync());
            location = patch.Headers.Location ?? location;
        }
        var put = await client.PutAsync(location.WithQuery($"digest={blob.Digest}"), null);
        put.StatusCode.Should().Be(HttpStatusCode.Created, await put.Content.ReadAsStringAsync());
        return blob;
    }

    public static Task<HttpResponseMessage> PutManifestAsync(this HttpClient client, string repo, string reference,
        Content manifest, string? contentType = null)
    {
        var content = new ByteArrayContent(manifest.Bytes);
        content.Headers.ContentType = new MediaTypeHeaderValue(contentType ?? manifest.MediaType);
        return client.PutAsync($"v2/{repo}/manifests/{reference}", content);
    }

    /// <summary>PUT a manifest and assert 201.</summary>
    public static async Task<Content> PushManifestAsync(this HttpClient client, string repo, string reference, Content manifest)
    {
        var response = await client.PutManifestAsync(repo, reference, manifest);
        response.StatusCode.Should().Be(HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
        return manifest;
    }

    /// <summary>Pushes a fresh config and layer, then an OCI image manifest under <paramref name="reference"/>.</summary>
    public static async Task<PushedImage> PushImageAsync(this HttpClient client, string repo, string reference)
    {
        var config = await client.PushBlobAsync(repo, RandomConfig());
        var layer = await client.PushBlobAsync(repo, RandomBlob());
        var manifest = ImageManifest(config.Descriptor(), [layer.Descriptor()]);
        await client.PushManifestAsync(repo, reference, manifest);
        return new PushedImage(manifest, config, layer);
    }

    /// <summary>Pushes the empty config and an artifact manifest whose subject is <paramref name="subject"/>.</summary>
    public static async Task<Content> PushReferrerAsync(this HttpClient client, string repo, Content subject,
        string? artifactType, IDictionary<string, string>? annotations = null, Content? config = null)
    {
        config ??= EmptyConfig;
        await client.PushBlobAsync(repo, config);
        var layer = await client.PushBlobAsync(repo, RandomBlob(64));
        var manifest = ImageManifest(config.Descriptor(), [layer.Descriptor()], artifactType,
            subject.Descriptor(), annotations);
        var response = await client.PutManifestAsync(repo, manifest.Digest, manifest);
        response.StatusCode.Should().Be(HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
        return manifest;
    }

    /// <summary>GET or HEAD a manifest, accepting every manifest type so that no server rewrites it.</summary>
    public static Task<HttpResponseMessage> GetManifestAsync(this HttpClient client, string repo, string reference,
        HttpMethod? method = null)
    {
        var request = new HttpRequestMessage(method ?? HttpMethod.Get, $"v2/{repo}/manifests/{reference}");
        foreach (var type in MediaTypes.AllManifests) request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(type));
        return client.SendAsync(request);
    }

    /// <summary>GET a manifest at a Location the registry gave, accepting every manifest type.</summary>
    public static Task<HttpResponseMessage> GetManifestAsync(this HttpClient client, Uri location)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, location);
        foreach (var type in MediaTypes.AllManifests) request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(type));
        return client.SendAsync(request);
    }

    public static Task<HttpResponseMessage> SendAsync(this HttpClient client, HttpMethod method, string uri,
        HttpContent? content = null, params (string Name, string Value)[] headers)
    {
        var request = new HttpRequestMessage(method, uri) { Content = content };
        foreach (var (name, value) in headers) request.Headers.TryAddWithoutValidation(name, value);
        return client.SendAsync(request);
    }

    public static async Task<JsonElement> JsonAsync(this HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync();
        using var document = JsonDocument.Parse(text);
        return document.RootElement.Clone();
    }

    /// <summary>Asserts the status and that the body is the spec's error JSON; returns its errors.</summary>
    public static async Task<IReadOnlyList<RegistryError>> ShouldBeErrorAsync(this HttpResponseMessage response,
        HttpStatusCode status)
    {
        var body = await response.Content.ReadAsStringAsync();
        response.StatusCode.Should().Be(status, body);
        response.Content.Headers.ContentType?.MediaType.Should().Be("application/json", body);
        JsonElement root;
        try
        {
            using var document = JsonDocument.Parse(body);
            root = document.RootElement.Clone();
        }
        catch (JsonException)
        {
            throw new Xunit.Sdk.XunitException($"error body is not JSON: {body}");
        }
        root.ValueKind.Should().Be(JsonValueKind.Object, body);
        root.TryGetProperty("errors", out var errors).Should().BeTrue(body);
        errors.ValueKind.Should().Be(JsonValueKind.Array, body);
        errors.GetArrayLength().Should().BeGreaterThan(0, body);
        var result = new List<RegistryError>();
        foreach (var error in errors.EnumerateArray())
        {
            error.TryGetProperty("code", out var code).Should().BeTrue(body);
            code.ValueKind.Should().Be(JsonValueKind.String, body);
            error.TryGetProperty("message", out var message).Should().BeTrue(body);
            message.ValueKind.Should().Be(JsonValueKind.String, body);
            result.Add(new RegistryError(code.GetString()!, message.GetString()));
        }
        return result;
    }

    /// <summary>Asserts the status, the error JSON, and that its first error has <paramref name="code"/>.</summary>
    public static async Task ShouldBeErrorAsync(this HttpResponseMessage response, HttpStatusCode status, string code)
    {
        var errors = await response.ShouldBeErrorAsync(status);
        errors.Select(e => e.Code).Should().Contain(code);
    }

    public static string? Header(this HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) ? string.Join(",", values)
        : response.Content.Headers.TryGetValues(name, out var contentValues) ? string.Join(",", contentValues)
        : null;

    /// <summary>The target of a <c>Link: &lt;url&gt;; rel="next"</c> header, or null.</summary>
    public static string? NextLink(this HttpResponseMessage response)
    {
        var link = response.Header("Link");
        if (link is null) return null;
        foreach (var part in link.Split(','))
        {
            var start = part.IndexOf('<');
            var end = part.IndexOf('>');
            if (start < 0 || end < start) continue;
            var parameters = part[(end + 1)..].Replace(" ", "");
            if (parameters.Contains("rel=\"next\"") || parameters.Contains("rel=next"))
                return part[(start + 1)..end];
        }
        return null;
    }

    public static async Task<string[]> TagsAsync(this HttpClient client, string repo, string query = "")
    {
        var response = await client.GetAsync($"v2/{repo}/tags/list{query}");
        response.StatusCode.Should().Be(HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        var json = await response.JsonAsync();
        return json.GetProperty("tags").ValueKind == JsonValueKind.Null ? []
            : json.GetProperty("tags").EnumerateArray().Select(t => t.GetString()!).ToArray();
    }
}
