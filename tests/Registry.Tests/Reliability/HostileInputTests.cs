using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Registry.Tests.Infrastructure;

namespace Registry.Tests.Reliability;

/// <summary>
/// Hostile input: each case gets the spec's error code and status, never a 500, and writes nothing.
/// </summary>
public class HostileInputTests(RegistryFixture fixture) : IClassFixture<RegistryFixture>
{
    private HttpClient Client => fixture.Client;
    private string Storage => fixture.Server.StoragePath!;

    private int StoredFiles() =>
        Directory.EnumerateFiles(Path.Combine(Storage, "blobs"), "*", SearchOption.AllDirectories).Count()
        + Directory.EnumerateFiles(Path.Combine(Storage, "uploads")).Count()
        + Directory.EnumerateFiles(Path.Combine(Storage, "tmp")).Count()
        + (int)Registry.Tests.Gc.Gc.InlineCount(Storage);

    /// <summary>Sends raw bytes (paths that HttpClient would normalise) and returns the status line and body.</summary>
    private async Task<(int Status, string Response)> RawAsync(string requestHead, byte[]? body = null, bool closeEarly = false)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(IPAddress.Loopback, fixture.Server.BaseAddress.Port);
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        await stream.WriteAsync(Encoding.Latin1.GetBytes(requestHead));
        if (body is not null) await stream.WriteAsync(body);
        if (closeEarly)
        {
            socket.Shutdown(SocketShutdown.Send);
        }
        var buffer = new byte[64 * 1024];
        var received = new StringBuilder();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        try
        {
            int read;
            while ((read = await stream.ReadAsync(buffer, timeout.Token)) > 0)
            {
                received.Append(Encoding.Latin1.GetString(buffer, 0, read));
                var text = received.ToString();
                var headerEnd = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
                if (headerEnd > 0 && IsComplete(text, headerEnd)) break;
            }
        }
        catch (IOException) { }
        var response = received.ToString();
        return (response.Length >= 12 ? int.Parse(response.AsSpan(9, 3)) : 0, response);
    }

    private static bool IsComplete(string text, int headerEnd)
    {
        var head = text[..headerEnd];
        var length = head.Split("\r\n").FirstOrDefault(h => h.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase));
        if (length is not null) return text.Length - headerEnd - 4 >= int.Parse(length.Split(':')[1].Trim());
        return text.EndsWith("0\r\n\r\n", StringComparison.Ordinal);
    }

    private static string Get(string path) => $"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";

    [Theory]
    [InlineData("/v2/../../etc/manifests/latest")]
    [InlineData("/v2/a/%2e%2e/%2e%2e/manifests/latest")]
    [InlineData("/v2/a%2f..%2f..%2fb/manifests/latest")]
    [InlineData("/v2/a%252f..%252fb/manifests/latest")]
    [InlineData("/v2/a%5c..%5cb/manifests/latest")]
    [InlineData("/v2/a\\..\\b/manifests/latest")]
    [InlineData("/v2/A/manifests/latest")]
    [InlineData("/v2//_oci/ext/discover")]
    [InlineData("/v2/a/blobs/sha256:..%2f..%2f..%2fetc%2fpasswd")]
    [InlineData("/v2/a/blobs/uploads/..%2f..%2fmetadata.db")]
    [InlineData("/v2/a/manifests/..%2f..%2fmetadata.db")]
    public async Task Traversal_attempts_are_refused_with_a_json_error_and_touch_nothing(string path)
    {
        var before = StoredFiles();

        var (status, response) = await RawAsync(Get(path));

        status.Should().BeOneOf([400, 404], response);
        response.Should().Contain("\"errors\"");
        StoredFiles().Should().Be(before);
    }

    [Fact]
    public async Task A_nul_byte_in_the_path_is_refused_by_the_http_server_itself()
    {
        var before = StoredFiles();

        var (status, _) = await RawAsync(Get("/v2/a%00b/manifests/latest"));

        status.Should().Be(400);
        StoredFiles().Should().Be(before);
    }

    [Fact]
    public async Task A_name_of_256_characters_is_NAME_INVALID()
    {
        var response = await Client.GetAsync($"v2/{new string('a', 256)}/tags/list");

        response.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        (await response.ErrorCodeAsync()).Should().Be("NAME_INVALID");
    }

    [Theory]
    [InlineData("garbage")]
    [InlineData("0-99999999999999999999999999")]
    [InlineData("-1-5")]
    [InlineData("5-1")]
    [InlineData("bytes  0-4")]
    public async Task Content_range_garbage_and_overflow_are_416_and_keep_nothing(string range)
    {
        var location = await Client.StartUploadAsync(RegistryFixture.NewRepo("hostile"));
        var content = new ByteArrayContent([1, 2, 3, 4, 5]);
        content.Headers.TryAddWithoutValidation("Content-Range", range);

        var response = await Client.PatchAsync(location, content);

        response.StatusCode.Should().Be(HttpStatusCode.RequestedRangeNotSatisfiable);
        (await Client.GetAsync(location)).Headers.GetValues("Range").Should().Equal("0-0");
    }

    [Fact]
    public async Task An_overlapping_chunk_is_416_and_the_session_keeps_its_bytes()
    {
        var location = await Client.StartUploadAsync(RegistryFixture.NewRepo("hostile"));
        await Client.PatchAsync(location, Http.Chunk(new byte[10], 0));

        var response = await Client.PatchAsync(location, Http.Chunk(new byte[10], 5));

        response.StatusCode.Should().Be(HttpStatusCode.RequestedRangeNotSatisfiable);
        response.Headers.GetValues("Range").Should().Equal("0-9");
    }

    [Fact]
    public async Task A_content_length_that_disagrees_with_the_content_range_is_rejected()
    {
        var location = await Client.StartUploadAsync(RegistryFixture.NewRepo("hostile"));
        var content = new ByteArrayContent(new byte[5]);
        content.Headers.TryAddWithoutValidation("Content-Range", "0-9");

        var response = await Client.PatchAsync(location, content);

        response.StatusCode.Should().Be(HttpStatusCode.RequestedRangeNotSatisfiable);
        (await Client.GetAsync(location)).Headers.GetValues("Range").Should().Equal("0-0");
    }

    [Fact]
    public async Task A_body_shorter_than_its_content_length_leaves_the_session_as_it_was()
    {
        var repo = RegistryFixture.NewRepo("hostile");
        var location = await Client.StartUploadAsync(repo);
        await Client.PatchAsync(location, Http.Chunk(new byte[100], 0));

        await RawAsync($"PATCH {location} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/octet-stream\r\n" +
                       "Content-Range: 100-1099\r\nContent-Length: 1000\r\n\r\n", new byte[300], closeEarly: true);

        var status = await Client.GetAsync(location);
        status.StatusCode.Should().Be(HttpStatusCode.NoContent);
        status.Headers.GetValues("Range").Should().Equal("0-99");
    }

    [Fact]
    public async Task A_single_request_upload_cut_short_stores_and_links_nothing()
    {
        var repo = RegistryFixture.NewRepo("hostile");
        var data = RandomNumberGenerator.GetBytes(1000);
        var before = StoredFiles();

        await RawAsync($"POST /v2/{repo}/blobs/uploads/?digest={Http.Sha256(data)} HTTP/1.1\r\nHost: localhost\r\n" +
                       "Content-Type: application/octet-stream\r\nContent-Length: 1000\r\n\r\n", data[..300], closeEarly: true);

        // The server sees the connection close on its own schedule: give it a moment to clean up.
        for (var i = 0; i < 50 && StoredFiles() != before; i++) await Task.Delay(100);
        StoredFiles().Should().Be(before);
        (await Client.SendAsync(new HttpRequestMessage(HttpMethod.Head, $"v2/{repo}/blobs/{Http.Sha256(data)}")))
            .StatusCode.Should().Be(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task A_body_on_a_post_without_digest_is_refused_and_no_session_is_opened()
    {
        var before = StoredFiles();

        var response = await Client.PostAsync($"v2/{RegistryFixture.NewRepo("hostile")}/blobs/uploads/", new ByteArrayContent([1, 2, 3]));

        response.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        (await response.ErrorCodeAsync()).Should().Be("BLOB_UPLOAD_INVALID");
        StoredFiles().Should().Be(before);
    }

    [Fact]
    public async Task A_finished_upload_id_cannot_be_reused()
    {
        var repo = RegistryFixture.NewRepo("hostile");
        var location = await Client.StartUploadAsync(repo);
        var data = new byte[] { 9, 9, 9 };
        (await Client.PutAsync($"{location}?digest={Http.Sha256(data)}", new ByteArrayContent(data))).StatusCode
            .Should().Be(HttpStatusCode.Created);

        var again = await Client.PatchAsync(location, Http.Chunk(data, 3));

        again.StatusCode.Should().Be(HttpStatusCode.NotFound);
        (await again.ErrorCodeAsync()).Should().Be("BLOB_UPLOAD_UNKNOWN");
    }

    [Fact]
    public async Task A_huge_manifest_is_refused_with_413_without_reading_it_all()
    {
        var repo = RegistryFixture.NewRepo("hostile");

        var (status, response) = await RawAsync(
            $"PUT /v2/{repo}/manifests/big HTTP/1.1\r\nHost: localhost\r\n" +
            "Content-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: 10737418240\r\n\r\n",
            new byte[64 * 1024]);

        status.Should().Be(413);
        response.Should().Contain("MANIFEST_INVALID");
        response.Should().Contain("Connection: close");
    }

    [Fact]
    public async Task A_chunked_manifest_over_the_limit_is_refused_with_413()
    {
        var repo = RegistryFixture.NewRepo("hostile");
        var content = new StreamContent(new MemoryStream(new byte[5 * 1024 * 1024]));
        content.Headers.ContentLength = null;
        content.Headers.TryAddWithoutValidation("Content-Type", "application/vnd.oci.image.manifest.v1+json");
        HttpResponseMessage response;
        try
        {
            response = await Client.PutAsync($"v2/{repo}/manifests/big", content);
        }
        catch (HttpRequestException)
        {
            return; // the server closed the connection while the client was still sending: also a refusal
        }

        response.StatusCode.Should().Be(HttpStatusCode.RequestEntityTooLarge);
    }

    [Theory]
    [InlineData("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":\"x\",\"digest\":\"sha256:\u00f1\",\"size\":1},\"layers\":[]}")]
    [InlineData("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\",\"config\":{},\"layers\":[]}")]
    [InlineData("{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":\"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a\",\"size\":2},\"layers\":{}}")]
    [InlineData("{\"schemaVersion\":2,\"mediaType\":\"text/html\",\"layers\":[]}")]
    public async Task Malformed_or_mistyped_manifests_are_MANIFEST_INVALID(string manifest)
    {
        var repo = RegistryFixture.NewRepo("hostile");
        var before = StoredFiles();

        var response = await Client.PutManifestAsync(repo, "bad", Encoding.UTF8.GetBytes(manifest));

        response.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        (await response.ErrorCodeAsync()).Should().Be("MANIFEST_INVALID");
        StoredFiles().Should().Be(before);
    }

    [Fact]
    public async Task An_index_that_claims_to_contain_itself_is_refused_either_way()
    {
        var repo = RegistryFixture.NewRepo("hostile");
        static byte[] Index(string child) => Encoding.UTF8.GetBytes(
            "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":[" +
            $"{{\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"digest\":\"{child}\",\"size\":200}}]}}");
        // An index can only name the digest of other bytes: point it at the digest of its own previous draft.
        var claimed = Http.Sha256(Index("sha256:" + new string('0', 64)));
        var index = Index(claimed);
        var before = StoredFiles();

        var byDigest = await Client.PutManifestAsync(repo, claimed, index, "application/vnd.oci.image.index.v1+json");
        var byTag = await Client.PutManifestAsync(repo, "self", index, "application/vnd.oci.image.index.v1+json");

        byDigest.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        (await byDigest.ErrorCodeAsync()).Should().Be("DIGEST_INVALID");
        byTag.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        (await byTag.ErrorCodeAsync()).Should().Be("MANIFEST_BLOB_UNKNOWN");
        StoredFiles().Should().Be(before);
    }

    [Fact]
    public async Task A_manifest_with_invalid_utf8_is_MANIFEST_INVALID()
    {
        var repo = RegistryFixture.NewRepo("hostile");
        var bytes = Encoding.UTF8.GetBytes("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":[],\"annotations\":{\"k\":\"__\"}}");
        bytes[^5] = 0xF1;

        var response = await Client.PutManifestAsync(repo, "bad", bytes, "application/vnd.oci.image.index.v1+json");

        response.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        (await response.ErrorCodeAsync()).Should().Be("MANIFEST_INVALID");
    }

    [Fact]
    public async Task Deeply_nested_json_is_MANIFEST_INVALID()
    {
        var repo = RegistryFixture.NewRepo("hostile");
        var deep = "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":[],\"x\":"
                   + new string('[', 100_000) + new string(']', 100_000) + "}";

        var response = await Client.PutManifestAsync(repo, "deep", Encoding.UTF8.GetBytes(deep), "application/vnd.oci.image.index.v1+json");

        response.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        (await response.ErrorCodeAsync()).Should().Be("MANIFEST_INVALID");
    }

    [Fact]
    public async Task Huge_header_sets_are_refused_by_the_server_limits()
    {
        var head = new StringBuilder($"GET /v2/ HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
        for (var i = 0; i < 2000; i++) head.Append($"X-Junk-{i}: {new string('x', 100)}\r\n");
        head.Append("\r\n");

        var (status, _) = await RawAsync(head.ToString());

        status.Should().BeOneOf(431, 400);
    }
}
