using System.Net;
using Microsoft.Extensions.Options;
using Registry.Tests.Infrastructure;

namespace Registry.Tests.Api;

/// <summary>
/// <c>Registry:Http:TrustedProxies</c>: behind a trusted proxy a client is the address the proxy names in
/// <c>X-Forwarded-For</c>, not the proxy's; from anyone else the header is ignored. Seen here through the per-client
/// cap on open upload sessions (one per client in these tests).
/// </summary>
public sealed class ForwardedClientTests
{
    private static Task<RegistryServer> StartAsync(string? trustedProxies = null)
    {
        var settings = new Dictionary<string, string?> { ["Registry:Uploads:MaxSessionsPerClient"] = "1" };
        if (trustedProxies is not null) settings["Registry:Http:TrustedProxies"] = trustedProxies;
        return RegistryServer.StartAsync(settings);
    }

    private static async Task<HttpStatusCode> StartUploadAsync(HttpClient client, string repo, string forwardedFor)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, $"v2/{repo}/blobs/uploads/");
        request.Headers.Add("X-Forwarded-For", forwardedFor);
        return (await client.SendAsync(request)).StatusCode;
    }

    [Fact]
    public async Task Clients_named_by_a_proxy_on_loopback_each_have_their_own_upload_session_allowance()
    {
        await using var server = await StartAsync();
        using var client = server.CreateClient();
        var repo = RegistryFixture.NewRepo();
        (await StartUploadAsync(client, repo, "198.51.100.1")).Should().Be(HttpStatusCode.Accepted);

        var again = await StartUploadAsync(client, repo, "198.51.100.1");
        var other = await StartUploadAsync(client, repo, "198.51.100.2");

        again.Should().Be(HttpStatusCode.TooManyRequests);
        other.Should().Be(HttpStatusCode.Accepted);
    }

    [Fact]
    public async Task The_client_is_the_last_address_that_a_trusted_proxy_did_not_add()
    {
        // The client made up the first entry; the proxy appended the address it saw (198.51.100.7).
        await using var server = await StartAsync();
        using var client = server.CreateClient();
        var repo = RegistryFixture.NewRepo();
        (await StartUploadAsync(client, repo, "203.0.113.1, 198.51.100.7")).Should().Be(HttpStatusCode.Accepted);

        var spoofed = await StartUploadAsync(client, repo, "203.0.113.2, 198.51.100.7");

        spoofed.Should().Be(HttpStatusCode.TooManyRequests, "both requests came from 198.51.100.7");
    }

    [Fact]
    public async Task X_Forwarded_For_from_an_address_that_is_not_a_trusted_proxy_is_ignored()
    {
        await using var server = await StartAsync(trustedProxies: "10.0.0.0/8");
        using var client = server.CreateClient();
        var repo = RegistryFixture.NewRepo();
        (await StartUploadAsync(client, repo, "198.51.100.1")).Should().Be(HttpStatusCode.Accepted);

        var other = await StartUploadAsync(client, repo, "198.51.100.2");

        other.Should().Be(HttpStatusCode.TooManyRequests, "both requests came from 127.0.0.1, which is no trusted proxy here");
    }

    [Fact]
    public async Task A_trusted_proxy_that_is_neither_an_address_nor_a_network_stops_the_start()
    {
        var start = () => StartAsync(trustedProxies: "10.0.0.1; proxy.example; 10.0.0.0/33");

        var thrown = await start.Should().ThrowAsync<OptionsValidationException>();
        thrown.Which.Failures.Should().Contain(f => f.Contains("Registry:Http:TrustedProxies: 'proxy.example'"))
            .And.Contain(f => f.Contains("'10.0.0.0/33'"))
            .And.NotContain(f => f.Contains("'10.0.0.1'"));
    }
}
