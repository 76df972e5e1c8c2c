using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using Registry.Tests.Clients;
using Registry.Tests.Infrastructure;

namespace Registry.Tests.Stack;

/// <summary>
/// The stack's nginx in front of two replicas: how it spreads requests and how it carries big blobs. These replicas
/// do not share storage (those of <see cref="ScaleOutStack"/> do), so a blob push here is the single-request form
/// (POST ?digest= with the body): a POST + PUT pair would reach the two replicas in turn, and the second would not
/// know the first's session.
/// </summary>
[Collection(ProxyCollection.Name)]
public sealed class ProxyTests(ProxyStack proxy) : IDisposable
{
    private const int BlobSize = 64 << 20;
    private readonly HttpClient _client = proxy.CreateClient();

    public void Dispose() => _client.Dispose();

    [Fact]
    public async Task Consecutive_requests_alternate_between_the_replicas()
    {
        var marker = $"probe-{Guid.NewGuid():N}";
        for (var i = 0; i < 6; i++)
            (await _client.GetAsync($"v2/?{marker}={i}")).StatusCode.Should().Be(HttpStatusCode.OK);

        var upstreams = await proxy.UpstreamsOfAsync(marker, 6);

        upstreams.Should().HaveCount(6);
        upstreams.Distinct().Should().BeEquivalentTo(proxy.Replicas.Select(r => r.HostPort));
        upstreams.Zip(upstreams.Skip(1)).Should().OnlyContain(pair => pair.First != pair.Second,
            "round-robin without affinity sends each request to the other replica");
    }

    [Fact]
    public async Task A_64_MiB_blob_push_reaches_a_replica_while_the_client_is_still_sending_it()
    {
        var blob = RandomNumberGenerator.GetBytes(BlobSize);
        var digest = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(blob));
        // After half the body the client waits until a replica has received a quarter of it: a proxy that
        // buffers the request body would hold it all back until the end, and the wait would run out.
        var content = new HalfwayPausingContent(blob, () => BytesReceivedByReplicas() >= BlobSize / 4);

        var response = await _client.PostAsync($"v2/{RegistryFixture.NewRepo("proxy")}/blobs/uploads/?digest={digest}", content);

        content.ForwardedWhileSending.Should().BeTrue("the proxy streams request bodies (proxy_request_buffering off)");
        response.StatusCode.Should().Be(HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
        response.Headers.GetValues("Docker-Content-Digest").Should().Equal(digest);
    }

    [Fact]
    public async Task A_64_MiB_blob_push_is_not_buffered_to_disk_by_the_proxy()
    {
        var blob = RandomNumberGenerator.GetBytes(BlobSize);
        var digest = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(blob));
        var content = new ByteArrayContent(blob) { Headers = { ContentType = new MediaTypeHeaderValue("application/octet-stream") } };

        var response = await _client.PostAsync($"v2/{RegistryFixture.NewRepo("proxy")}/blobs/uploads/?digest={digest}", content);

        response.StatusCode.Should().Be(HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
        (await File.ReadAllTextAsync(proxy.ErrorLog)).Should().NotContain("buffered to a temporary file");
    }

    [Fact]
    public async Task Idempotent_requests_go_on_to_the_next_replica_when_one_is_down()
    {
        using var state = new TempDir("proxy-down-");
        var down = $"127.0.0.1:{CrashHarness.ServerProcess.FreePort()}";
        var live = proxy.Replicas[0].HostPort;
        var script = new StackScript("nginx", new Dictionary<string, string>
        {
            ["REGISTRY_STACK_DIR"] = state.Path,
            ["PROXY_PORT"] = CrashHarness.ServerProcess.FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["PROXY_UPSTREAMS"] = $"{down} {live}",
        });
        var exports = await script.StartAsync();
        try
        {
            using var client = new HttpClient { BaseAddress = new Uri(exports["PROXY_URL"].TrimEnd('/') + "/") };

            var statuses = new List<HttpStatusCode>();
            for (var i = 0; i < 4; i++) statuses.Add((await client.GetAsync("v2/")).StatusCode);

            statuses.Should().OnlyContain(status => status == HttpStatusCode.OK);
        }
        finally
        {
            await script.StopAsync();
        }
    }

    private long BytesReceivedByReplicas() => proxy.Replicas.Sum(replica =>
    {
        var temp = new DirectoryInfo(Path.Combine(replica.StoragePath!, "tmp"));
        return temp.Exists ? temp.EnumerateFiles().Sum(SafeLength) : 0;
    });

    private static long SafeLength(FileInfo file)
    {
        try { return file.Length; }
        catch (FileNotFoundException) { return 0; }
    }

    /// <summary>
    /// A body with a Content-Length that sends its first half, then waits (up to a minute) until
    /// <c>forwarded</c> holds before it sends the rest, and says whether it did.
    /// </summary>
    private sealed class HalfwayPausingContent(byte[] bytes, Func<bool> forwarded) : HttpContent
    {
        public bool ForwardedWhileSending { get; private set; }

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        {
            var half = bytes.Length / 2;
            await stream.WriteAsync(bytes.AsMemory(0, half));
            await stream.FlushAsync();
            var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(1);
            while (!(ForwardedWhileSending = forwarded()) && DateTime.UtcNow < deadline) await Task.Delay(50);
            await stream.WriteAsync(bytes.AsMemory(half));
        }

        protected override bool TryComputeLength(out long length)
        {
            length = bytes.Length;
            return true;
        }
    }
}
