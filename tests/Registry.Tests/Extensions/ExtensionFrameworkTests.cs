using System.Collections.Concurrent;
using System.Net;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Registry.Api.Http;
using Registry.Storage.Model;
using Registry.Tests.Infrastructure;

namespace Registry.Tests.Extensions;

public class ExtensionFrameworkTests(RegistryFixture fixture) : IClassFixture<RegistryFixture>
{
    private HttpClient Client => fixture.Client;

    private static IEnumerable<string> Endpoints(System.Text.Json.JsonElement discovery, string name) =>
        discovery.GetProperty("extensions").EnumerateArray()
            .Single(e => e.GetProperty("name").GetString() == name)
            .GetProperty("endpoints").EnumerateArray().Select(e => e.GetString()!);

    [Fact]
    public async Task Registry_discovery_lists_every_enabled_namespace_with_its_registry_endpoints()
    {
        var discovery = await Client.GetJsonAsync("v2/_oci/ext/discover");

        discovery.GetProperty("extensions").EnumerateArray().Select(e => e.GetProperty("name").GetString())
            .Should().Equal("_oci", "_registry");
        Endpoints(discovery, "_oci").Should().Equal("_oci/ext/discover");
        Endpoints(discovery, "_registry").Should().Equal("_registry/events/stream", "_registry/gc/runs",
            "_registry/search/repositories", "_registry/storage/usage");
    }

    [Fact]
    public async Task Repository_discovery_lists_the_repository_endpoints()
    {
        var repo = RegistryFixture.NewRepo("disc");
        await Client.PushImageAsync(repo, "v1");

        var discovery = await Client.GetJsonAsync($"v2/{repo}/_oci/ext/discover");

        Endpoints(discovery, "_oci").Should().Equal("_oci/ext/discover");
        Endpoints(discovery, "_registry").Should().Equal("_registry/tags/details");
    }

    [Fact]
    public async Task Each_discovery_url_serves_its_document()
    {
        var discovery = await Client.GetJsonAsync("v2/_oci/ext/discover");

        foreach (var extension in discovery.GetProperty("extensions").EnumerateArray())
        {
            var response = await Client.GetAsync(extension.GetProperty("url").GetString());
            response.StatusCode.Should().Be(HttpStatusCode.OK);
            (await response.Content.ReadAsStringAsync()).Should().Contain(extension.GetProperty("name").GetString());
        }
    }

    [Theory]
    [InlineData("v2/_nope/ext/discover")]
    [InlineData("v2/_oci/ext/nothing")]
    [InlineData("v2/_oci/nothing/discover")]
    [InlineData("v2/_oci/ext/discover/more")]
    [InlineData("v2/_oci/ext")]
    [InlineData("v2/_OCI/ext/discover")]
    [InlineData("v2/_oci/ext/dis..cover")]
    [InlineData("v2/_registry/tags/details")]
    public async Task Unknown_extension_paths_answer_404_EXTENSION_UNKNOWN(string path)
    {
        var response = await Client.GetAsync(path);

        response.StatusCode.Should().Be(HttpStatusCode.NotFound);
        (await response.ErrorCodeAsync()).Should().Be("EXTENSION_UNKNOWN");
    }

    [Fact]
    public async Task Unknown_repository_extensions_answer_404_EXTENSION_UNKNOWN()
    {
        var repo = RegistryFixture.NewRepo("ext");
        await Client.PushImageAsync(repo, "v1");

        var response = await Client.GetAsync($"v2/{repo}/_registry/search/repositories");

        response.StatusCode.Should().Be(HttpStatusCode.NotFound);
        (await response.ErrorCodeAsync()).Should().Be("EXTENSION_UNKNOWN");
    }

    [Fact]
    public async Task A_known_extension_path_with_another_method_answers_405_UNSUPPORTED()
    {
        var response = await Client.PostAsync("v2/_oci/ext/discover", null);

        response.StatusCode.Should().Be(HttpStatusCode.MethodNotAllowed);
        (await response.ErrorCodeAsync()).Should().Be("UNSUPPORTED");
    }

    [Fact]
    public async Task Repository_scope_on_a_missing_repository_answers_404_NAME_UNKNOWN()
    {
        var response = await Client.GetAsync("v2/does/not/exist/_oci/ext/discover");

        response.StatusCode.Should().Be(HttpStatusCode.NotFound);
        (await response.ErrorCodeAsync()).Should().Be("NAME_UNKNOWN");
    }

    [Fact]
    public async Task Repository_scope_with_an_invalid_name_answers_400_NAME_INVALID()
    {
        var response = await Client.GetAsync("v2/Bad..Name/_oci/ext/discover");

        response.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        (await response.ErrorCodeAsync()).Should().Be("NAME_INVALID");
    }

    [Fact]
    public async Task A_repository_may_have_a_tag_that_starts_with_an_underscore()
    {
        var repo = RegistryFixture.NewRepo("under");
        var (bytes, _) = await Client.PushImageAsync(repo, "_oci");

        (await Client.GetByteArrayAsync($"v2/{repo}/manifests/_oci")).Should().Equal(bytes);
    }

    [Fact]
    public async Task A_disabled_extension_has_no_routes_and_no_discovery_entry()
    {
        await using var server = await RegistryServer.StartAsync(new Dictionary<string, string?>
        {
            ["Registry:Extensions:Search:Enabled"] = "false",
            ["Registry:Extensions:Events:Enabled"] = "false",
            ["Registry:Extensions:Storage:Enabled"] = "false",
        });
        using var client = server.CreateClient();

        var discovery = await client.GetJsonAsync("v2/_oci/ext/discover");
        var search = await client.GetAsync("v2/_registry/search/repositories");

        discovery.GetProperty("extensions").EnumerateArray().Select(e => e.GetProperty("name").GetString())
            .Should().Equal("_oci");
        search.StatusCode.Should().Be(HttpStatusCode.NotFound);
        (await search.ErrorCodeAsync()).Should().Be("EXTENSION_UNKNOWN");
    }

    [Fact]
    public async Task Extension_endpoints_are_checked_by_the_access_policy_like_core_routes()
    {
        var policy = new RecordingPolicy();
        await using var server = await RegistryServer.StartAsync(new Dictionary<string, string?>(),
            services: s => s.AddSingleton<IAccessPolicy>(policy));
        using var client = server.CreateClient();
        await client.PushImageAsync("acl/app", "v1");
        while (policy.Requests.TryDequeue(out _)) { }

        await client.GetAsync("v2/acl/app/manifests/v1");
        await client.GetAsync("v2/acl/app/_registry/tags/details");
        await client.GetAsync("v2/_registry/search/repositories");
        await client.GetAsync("v2/_catalog");
        policy.Deny = true;
        var denied = await client.GetAsync("v2/acl/app/_registry/tags/details");

        policy.Requests.Select(r => r.ToString()).Should().Equal(
            "AccessRequest { Repository = acl/app, Access = Pull }",
            "AccessRequest { Repository = acl/app, Access = Pull }",
            "AccessRequest { Repository = , Access = RegistryRead }",
            "AccessRequest { Repository = , Access = RegistryRead }",
            "AccessRequest { Repository = acl/app, Access = Pull }");
        denied.StatusCode.Should().Be(HttpStatusCode.Forbidden);
        (await denied.ErrorCodeAsync()).Should().Be("DENIED");
    }

    private sealed class RecordingPolicy : IAccessPolicy
    {
        public ConcurrentQueue<AccessRequest> Requests { get; } = new();
        public bool Deny { get; set; }

        public ValueTask<AccessDecision> AuthorizeAsync(HttpContext context, AccessRequest request)
        {
            Requests.Enqueue(request);
            return ValueTask.FromResult(Deny ? AccessDecision.Deny : AccessDecision.Allow);
        }

        public ValueTask<Func<RepositoryName, bool>?> PullableAsync(HttpContext context) =>
            ValueTask.FromResult<Func<RepositoryName, bool>?>(null);
    }
}
