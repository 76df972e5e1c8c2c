using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Claims;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Registry.CrashHarness;
using Registry.Tests.Conformance;
using Registry.Tests.Infrastructure;
using Xunit.Sdk;

namespace Registry.Tests.Operations;

/// <summary>
/// One access-log line per request (category <c>Registry.Access</c>): method, operation, repository, status, body
/// bytes, duration, identity and request id, and never a header or a query string value.
/// </summary>
public class AccessLogTests
{
    private const string Category = "Registry.Access";

    private static async Task<(RegistryServer Server, LogCapture Log)> StartAsync(Action<IServiceCollection>? more = null)
    {
        var log = new LogCapture();
        var server = await RegistryServer.StartAsync(services: services =>
        {
            log.AddTo(services);
            more?.Invoke(services);
        });
        return (server, log);
    }

    /// <summary>The line is written once the answer is complete, which can be just after the client has it.</summary>
    private static async Task<LogEntry> LineAsync(LogCapture log, string requestId)
    {
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(10))
        {
            var lines = log.From(Category).Where(e => Equals(e.Fields.GetValueOrDefault("RequestId"), requestId)).ToList();
            if (lines.Count > 0)
            {
                await Task.Delay(50);
                log.From(Category).Count(e => Equals(e.Fields.GetValueOrDefault("RequestId"), requestId))
                    .Should().Be(1, "one line per request");
                return lines[0];
            }
            await Task.Delay(20);
        }
        throw new XunitException($"no access-log line for request {requestId}");
    }

    private static HttpRequestMessage Request(HttpMethod method, string path, string requestId, HttpContent? content = null)
    {
        var request = new HttpRequestMessage(method, path) { Content = content };
        request.Headers.TryAddWithoutValidation("X-Request-Id", requestId);
        return request;
    }

    [Fact]
    public async Task Each_request_writes_one_line_with_method_operation_repository_status_bytes_duration_identity_and_id()
    {
        var (server, log) = await StartAsync();
        await using var _ = server;
        using var client = server.CreateClient();
        var repo = RegistryFixture.NewRepo();
        var blob = Oci.RandomBlob(1000);

        var response = await client.SendAsync(Request(HttpMethod.Post, $"v2/{repo}/blobs/uploads/?digest={blob.Digest}",
            "push-1", Oci.Octets(blob.Bytes)));
        response.StatusCode.Should().Be(HttpStatusCode.Created);
        var line = await LineAsync(log, "push-1");

        line.Level.Should().Be(LogLevel.Information);
        line.Fields.Should().Contain(new Dictionary<string, object?>
        {
            ["Method"] = "POST",
            ["Operation"] = "upload_start",
            ["Repository"] = repo,
            ["Status"] = 201,
            ["BytesReceived"] = 1000L,
            ["BytesSent"] = 0L,
            ["Identity"] = "-",
            ["RequestId"] = "push-1",
        });
        line.Fields["DurationMs"].Should().BeOfType<double>().Which.Should().BeGreaterThanOrEqualTo(0);
        line.Message.Should().StartWith($"POST upload_start {repo} 201 ");
    }

    [Fact]
    public async Task A_pull_logs_the_bytes_sent_and_the_operation()
    {
        var (server, log) = await StartAsync();
        await using var _ = server;
        using var client = server.CreateClient();
        var repo = RegistryFixture.NewRepo();
        var blob = await client.PushBlobAsync(repo, Oci.RandomBlob(5000));

        (await client.SendAsync(Request(HttpMethod.Get, $"v2/{repo}/blobs/{blob.Digest}", "pull-1"))).EnsureSuccessStatusCode();
        var line = await LineAsync(log, "pull-1");

        line.Fields["Operation"].Should().Be("blob_get");
        line.Fields["Status"].Should().Be(200);
        line.Fields["BytesSent"].Should().Be(5000L);
    }

    [Fact]
    public async Task The_request_id_from_the_client_is_returned_in_the_response()
    {
        await using var server = await RegistryServer.StartAsync();
        using var client = server.CreateClient();

        var response = await client.SendAsync(Request(HttpMethod.Get, "v2/", "client-chosen-id.42"));

        response.Headers.GetValues("X-Request-Id").Should().Equal("client-chosen-id.42");
    }

    [Theory]
    [InlineData(null)]
    [InlineData("two words")]
    [InlineData("line\tbreak")]
    public async Task Without_a_usable_request_id_a_new_one_is_generated_returned_and_logged(string? offered)
    {
        var (server, log) = await StartAsync();
        await using var _ = server;
        using var client = server.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, "v2/");
        if (offered is not null) request.Headers.TryAddWithoutValidation("X-Request-Id", offered);

        var response = await client.SendAsync(request);
        var id = response.Headers.GetValues("X-Request-Id").Single();

        id.Should().MatchRegex("^[0-9a-f]{24}$");
        (await LineAsync(log, id)).Fields["Operation"].Should().Be("base");
    }

    [Fact]
    public async Task Too_long_a_request_id_is_replaced()
    {
        await using var server = await RegistryServer.StartAsync();
        using var client = server.CreateClient();

        var response = await client.SendAsync(Request(HttpMethod.Get, "v2/", new string('a', 129)));

        response.Headers.GetValues("X-Request-Id").Single().Should().HaveLength(24);
    }

    [Fact]
    public async Task The_authenticated_identity_is_logged()
    {
        var (server, log) = await StartAsync(services => services.AddSingleton<IStartupFilter>(new SignedIn("alice")));
        await using var _ = server;
        using var client = server.CreateClient();

        await client.SendAsync(Request(HttpMethod.Get, "v2/_catalog", "who-1"));

        var line = await LineAsync(log, "who-1");
        line.Fields["Identity"].Should().Be("alice");
        line.Fields["Operation"].Should().Be("catalog");
    }

    [Fact]
    public async Task An_Authorization_header_never_reaches_the_log()
    {
        var (server, log) = await StartAsync();
        await using var _ = server;
        using var client = server.CreateClient();
        var repo = RegistryFixture.NewRepo();

        var basic = Request(HttpMethod.Get, $"v2/{repo}/tags/list", "auth-1");
        basic.Headers.Authorization = new AuthenticationHeaderValue("Basic", "YWxpY2U6czNjcjN0LXBhc3N3b3Jk");
        await client.SendAsync(basic);
        var bearer = Request(HttpMethod.Get, "v2/", "auth-2");
        bearer.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "eyJhbGciOiJFUzI1NiJ9.secret-token-body");
        await client.SendAsync(bearer);
        await LineAsync(log, "auth-1");
        await LineAsync(log, "auth-2");

        var everything = string.Join('\n', log.Entries.Select(e =>
            e.Message + " " + string.Join(' ', e.Fields.Values.Select(v => v?.ToString()))));
        everything.Should().NotContain("YWxpY2U6czNjcjN0").And.NotContain("secret-token-body").And.NotContain("Basic ")
            .And.NotContain("Bearer ");
    }

    [Fact]
    public async Task Query_string_values_never_reach_the_log()
    {
        var (server, log) = await StartAsync();
        await using var _ = server;
        using var client = server.CreateClient();

        await client.SendAsync(Request(HttpMethod.Get, "token?service=registry&account=alice&password=hunter2", "query-1"));
        await client.SendAsync(Request(HttpMethod.Get, "v2/_catalog?n=5&last=s3cret-marker", "query-2"));
        await LineAsync(log, "query-1");
        await LineAsync(log, "query-2");

        var everything = string.Join('\n', log.Entries.Select(e =>
            e.Message + " " + string.Join(' ', e.Fields.Values.Select(v => v?.ToString()))));
        everything.Should().NotContain("hunter2").And.NotContain("s3cret-marker");
    }

    [Fact]
    public async Task Health_probes_and_scrapes_are_logged_at_debug_level_only()
    {
        var (server, log) = await StartAsync();
        await using var _ = server;
        using var client = server.CreateClient();

        await client.SendAsync(Request(HttpMethod.Get, "healthz", "probe-1"));
        await client.SendAsync(Request(HttpMethod.Get, "readyz", "probe-2"));
        await client.SendAsync(Request(HttpMethod.Get, "metrics", "probe-3"));

        (await LineAsync(log, "probe-1")).Level.Should().Be(LogLevel.Debug);
        (await LineAsync(log, "probe-2")).Level.Should().Be(LogLevel.Debug);
        var scrape = await LineAsync(log, "probe-3");
        scrape.Level.Should().Be(LogLevel.Debug);
        scrape.Fields["Operation"].Should().Be("metrics");
    }

    [Fact]
    public async Task In_text_format_each_request_is_one_line_on_the_console()
    {
        using var storage = new Clients.TempDir("registry-log-");
        using var server = await ServerProcess.StartAsync(ServerPath, storage.Path, TimeSpan.FromSeconds(60));
        using var client = new HttpClient { BaseAddress = server.BaseAddress };

        using var request = Request(HttpMethod.Get, "v2/some/repo/manifests/latest", "text-1");
        await client.SendAsync(request);

        var line = await ConsoleLineAsync(server, "text-1");
        line.Should().StartWith("info: Registry.Access[1] GET manifest_get some/repo 404 received=0 sent=")
            .And.EndWith("identity=- request_id=text-1");
    }

    [Fact]
    public async Task In_json_format_each_request_is_one_JSON_object_with_the_fields()
    {
        using var storage = new Clients.TempDir("registry-log-");
        using var server = await ServerProcess.StartAsync(ServerPath, storage.Path, TimeSpan.FromSeconds(60),
            ["--Registry:Logging:Format=json"]);
        using var client = new HttpClient { BaseAddress = server.BaseAddress };

        await client.SendAsync(Request(HttpMethod.Get, "v2/some/repo/tags/list", "json-1"));

        using var json = JsonDocument.Parse(await ConsoleLineAsync(server, "json-1"));
        var root = json.RootElement;
        root.GetProperty("Category").GetString().Should().Be(Category);
        root.GetProperty("LogLevel").GetString().Should().Be("Information");
        root.TryGetProperty("Timestamp", out _).Should().BeTrue();
        var state = root.GetProperty("State");
        state.GetProperty("Method").GetString().Should().Be("GET");
        state.GetProperty("Operation").GetString().Should().Be("tags_list");
        state.GetProperty("Repository").GetString().Should().Be("some/repo");
        state.GetProperty("Status").GetInt32().Should().Be(404);
        state.GetProperty("RequestId").GetString().Should().Be("json-1");
        state.GetProperty("Identity").GetString().Should().Be("-");
        state.TryGetProperty("DurationMs", out _).Should().BeTrue();
        state.TryGetProperty("BytesSent", out _).Should().BeTrue();
    }

    private static string ServerPath => Path.Combine(AppContext.BaseDirectory, "Registry.Api.dll");

    private static async Task<string> ConsoleLineAsync(ServerProcess server, string requestId)
    {
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(10))
        {
            var lines = server.Log.Where(l => l.Contains(requestId, StringComparison.Ordinal)).ToList();
            if (lines.Count > 0)
            {
                lines.Should().HaveCount(1, "one line per request");
                return lines[0];
            }
            await Task.Delay(20);
        }
        throw new XunitException($"no console line for request {requestId}:\n{string.Join('\n', server.Log)}");
    }

    /// <summary>Stands in for authentication (not built yet): every request is signed in as one user.</summary>
    private sealed class SignedIn(string name) : IStartupFilter
    {
        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
        {
            app.Use((HttpContext context, RequestDelegate inner) =>
            {
                context.User = new ClaimsPrincipal(new ClaimsIdentity([new Claim(ClaimTypes.Name, name)], "test"));
                return inner(context);
            });
            next(app);
        };
    }
}
