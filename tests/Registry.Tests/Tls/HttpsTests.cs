using System.Net;
using System.Net.Http.Headers;
using System.Security.Authentication;
using System.Security.Cryptography;
using Registry.Tests.Infrastructure;

namespace Registry.Tests.Tls;

/// <summary>The registry over HTTPS (Registry:Http:Tls:*): TLS from PEM files, HTTP/2 and HTTP/1.1 by ALPN.</summary>
public sealed class HttpsTests(TlsRegistryFixture fixture) : IClassFixture<TlsRegistryFixture>
{
    [Fact]
    public async Task Base_endpoint_answers_200_over_https()
    {
        var response = await fixture.Client.GetAsync("v2/");

        fixture.Server.BaseAddress.Scheme.Should().Be("https");
        response.StatusCode.Should().Be(HttpStatusCode.OK);
        response.Headers.GetValues("Docker-Distribution-API-Version").Should().Equal("registry/2.0");
    }

    [Fact]
    public async Task Tls_connections_negotiate_http2()
    {
        using var client = fixture.Server.CreateClient(HttpVersion.Version20);

        var response = await client.GetAsync("v2/");

        response.StatusCode.Should().Be(HttpStatusCode.OK);
        response.Version.Should().Be(HttpVersion.Version20);
    }

    [Fact]
    public async Task Tls_connections_still_serve_http11_to_clients_that_ask_for_it()
    {
        using var client = fixture.Server.CreateClient(HttpVersion.Version11);

        var response = await client.GetAsync("v2/");

        response.StatusCode.Should().Be(HttpStatusCode.OK);
        response.Version.Should().Be(HttpVersion.Version11);
    }

    [Fact]
    public async Task A_blob_and_a_manifest_are_pushed_and_pulled_over_http2()
    {
        using var client = fixture.Server.CreateClient(HttpVersion.Version20);
        var repo = RegistryFixture.NewRepo("tls");
        var layer = RandomNumberGenerator.GetBytes(3 * 1024 * 1024);

        var image = await client.PushImageAsync(repo, "v1", layer);

        var manifest = await client.SendAsync(new HttpRequestMessage(HttpMethod.Get, $"v2/{repo}/manifests/v1")
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Headers = { Accept = { new MediaTypeWithQualityHeaderValue(MediaTypes.OciManifest) } },
        });
        manifest.Version.Should().Be(HttpVersion.Version20);
        manifest.StatusCode.Should().Be(HttpStatusCode.OK);
        (await manifest.Content.ReadAsByteArrayAsync()).Should().Equal(image.Bytes);
        var blob = await client.GetAsync($"v2/{repo}/blobs/{Http.Sha256(layer)}");
        blob.StatusCode.Should().Be(HttpStatusCode.OK);
        (await blob.Content.ReadAsByteArrayAsync()).Should().Equal(layer);
    }

    [Fact]
    public async Task A_chunked_upload_over_http2_is_stored_intact()
    {
        using var client = fixture.Server.CreateClient(HttpVersion.Version20);
        var repo = RegistryFixture.NewRepo("tls");
        var data = RandomNumberGenerator.GetBytes(2 * 1024 * 1024 + 17);
        var location = await client.StartUploadAsync(repo);

        var first = await client.PatchAsync(location, Http.Chunk(data[..1_000_000], 0));
        first.StatusCode.Should().Be(HttpStatusCode.Accepted);
        var second = await client.PatchAsync(first.Headers.Location, Http.Chunk(data[1_000_000..], 1_000_000));
        second.StatusCode.Should().Be(HttpStatusCode.Accepted);
        var put = await client.PutAsync($"{second.Headers.Location}?digest={Http.Sha256(data)}", null);

        put.StatusCode.Should().Be(HttpStatusCode.Created);
        (await client.GetByteArrayAsync($"v2/{repo}/blobs/{Http.Sha256(data)}")).Should().Equal(data);
    }

    [Fact]
    public async Task Discovery_points_at_documents_over_https()
    {
        var discovery = await fixture.Client.GetJsonAsync("v2/_oci/ext/discover");

        var urls = discovery.GetProperty("extensions").EnumerateArray().Select(e => e.GetProperty("url").GetString()!).ToList();
        urls.Should().NotBeEmpty().And.OnlyContain(url => url.StartsWith(fixture.Server.BaseAddress.GetLeftPart(UriPartial.Authority) + "/"));
        (await fixture.Client.GetAsync(urls[0])).StatusCode.Should().Be(HttpStatusCode.OK);
    }

    [Fact]
    public async Task A_client_that_does_not_trust_the_ca_is_refused()
    {
        using var client = new HttpClient { BaseAddress = fixture.Server.BaseAddress };

        var request = () => client.GetAsync("v2/");

        (await request.Should().ThrowAsync<HttpRequestException>())
            .WithInnerException<AuthenticationException>();
    }

    [Fact]
    public async Task A_plain_http_request_to_the_tls_port_gets_no_answer()
    {
        using var client = new HttpClient { BaseAddress = new UriBuilder(fixture.Server.BaseAddress) { Scheme = "http" }.Uri };

        var request = () => client.GetAsync("v2/");

        await request.Should().ThrowAsync<HttpRequestException>();
    }
}
