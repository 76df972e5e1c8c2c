using System.Net;
using System.Security.Cryptography;
using Registry.Tests.Infrastructure;

namespace Registry.Tests.Auth;

/// <summary><c>Registry:Auth:Mode=htpasswd</c>: HTTP Basic against a real <c>htpasswd -B</c> file, and the policy.</summary>
public sealed class HtpasswdTests : IAsyncLifetime
{
    private AuthServer _auth = null!;

    /// <summary>Team namespaces, a public read-only area, a read-only user, an admin and a CI robot.</summary>
    private static readonly Dictionary<string, string?> Policy = new()
    {
        ["Registry:Auth:Groups:team-a:0"] = "alice",
        ["Registry:Auth:Groups:ops:0"] = "olga",
        ["Registry:Auth:Rules:0:Repositories:0"] = "team-a/**",
        ["Registry:Auth:Rules:0:Groups:0"] = "team-a",
        ["Registry:Auth:Rules:0:Actions:0"] = "*",
        ["Registry:Auth:Rules:1:Repositories:0"] = "team-a/**",
        ["Registry:Auth:Rules:1:Users:0"] = "reader",
        ["Registry:Auth:Rules:1:Actions:0"] = "pull",
        ["Registry:Auth:Rules:2:Repositories:0"] = "public/**",
        ["Registry:Auth:Rules:2:Anonymous"] = "true",
        ["Registry:Auth:Rules:2:Actions:0"] = "pull",
        ["Registry:Auth:Rules:3:Repositories:0"] = "public/**",
        ["Registry:Auth:Rules:3:Users:0"] = "alice",
        ["Registry:Auth:Rules:3:Actions:0"] = "pull",
        ["Registry:Auth:Rules:3:Actions:1"] = "push",
        ["Registry:Auth:Admins:Groups:0"] = "ops",
    };

    public async Task InitializeAsync() =>
        _auth = await AuthServer.StartAsync("htpasswd",
            new Dictionary<string, string> { ["alice"] = "alice-pw", ["reader"] = "reader-pw", ["olga"] = "olga-pw" },
            Policy);

    public async Task DisposeAsync() => await _auth.DisposeAsync();

    [Fact]
    public async Task Base_endpoint_without_credentials_is_401_with_a_basic_challenge()
    {
        using var client = _auth.Anonymous();

        var response = await client.GetAsync("v2/");

        response.StatusCode.Should().Be(HttpStatusCode.Unauthorized);
        response.Headers.WwwAuthenticate.ToString().Should().Be("Basic realm=\"Registry Realm\"");
        (await response.ErrorCodeAsync()).Should().Be("UNAUTHORIZED");
    }

    [Fact]
    public async Task Base_endpoint_with_valid_credentials_is_200()
    {
        using var client = _auth.As("alice", "alice-pw");

        (await client.GetAsync("v2/")).StatusCode.Should().Be(HttpStatusCode.OK);
    }

    [Fact]
    public async Task A_wrong_password_is_401()
    {
        using var client = _auth.As("alice", "wrong");

        var response = await client.GetAsync("v2/team-a/app/tags/list");

        response.StatusCode.Should().Be(HttpStatusCode.Unauthorized);
        response.Headers.WwwAuthenticate.Should().NotBeEmpty();
    }

    [Fact]
    public async Task A_team_member_pushes_pulls_and_deletes_in_the_team_namespace()
    {
        using var client = _auth.As("alice", "alice-pw");

        var (bytes, digest) = await client.PushImageAsync("team-a/app", "v1");
        var pulled = await client.GetByteArrayAsync($"v2/team-a/app/manifests/{digest}");
        var deleted = await client.DeleteAsync($"v2/team-a/app/manifests/{digest}");

        pulled.Should().Equal(bytes);
        deleted.StatusCode.Should().Be(HttpStatusCode.Accepted);
    }

    [Fact]
    public async Task A_read_only_user_pulls_but_may_not_push_or_delete()
    {
        using var alice = _auth.As("alice", "alice-pw");
        using var reader = _auth.As("reader", "reader-pw");
        var (_, digest) = await alice.PushImageAsync("team-a/ro", "v1");

        var pull = await reader.GetAsync($"v2/team-a/ro/manifests/{digest}");
        var push = await reader.PostAsync("v2/team-a/ro/blobs/uploads/", null);
        var delete = await reader.DeleteAsync($"v2/team-a/ro/manifests/{digest}");

        pull.StatusCode.Should().Be(HttpStatusCode.OK);
        push.StatusCode.Should().Be(HttpStatusCode.Forbidden);
        (await push.ErrorCodeAsync()).Should().Be("DENIED");
        delete.StatusCode.Should().Be(HttpStatusCode.Forbidden);
    }

    [Fact]
    public async Task A_user_outside_the_team_can_neither_read_nor_learn_of_its_repositories()
    {
        using var alice = _auth.As("alice", "alice-pw");
        using var olga = _auth.As("olga", "olga-pw");
        var (_, digest) = await alice.PushImageAsync("team-a/hidden", "v1");

        (await olga.GetAsync($"v2/team-a/hidden/manifests/{digest}")).StatusCode.Should().Be(HttpStatusCode.Forbidden);
        (await olga.GetAsync("v2/team-a/hidden/tags/list")).StatusCode.Should().Be(HttpStatusCode.Forbidden);
        (await olga.GetAsync($"v2/team-a/hidden/referrers/{digest}")).StatusCode.Should().Be(HttpStatusCode.Forbidden);
        (await olga.GetAsync("v2/team-a/hidden/_registry/tags/details")).StatusCode.Should().Be(HttpStatusCode.Forbidden);
        var catalog = await olga.GetJsonAsync("v2/_catalog");
        catalog.GetProperty("repositories").EnumerateArray().Should().BeEmpty();
        var search = await olga.GetJsonAsync("v2/_registry/search/repositories?q=hidden");
        search.GetProperty("repositories").EnumerateArray().Should().BeEmpty();
    }

    [Fact]
    public async Task Anonymous_callers_pull_public_repositories_but_may_not_push_there()
    {
        using var alice = _auth.As("alice", "alice-pw");
        using var anonymous = _auth.Anonymous();
        var (bytes, _) = await alice.PushImageAsync("public/tools", "v1");

        var pulled = await anonymous.GetAsync("v2/public/tools/manifests/v1");
        var push = await anonymous.PostAsync("v2/public/tools/blobs/uploads/", null);
        var privateRead = await anonymous.GetAsync("v2/team-a/app/tags/list");

        pulled.StatusCode.Should().Be(HttpStatusCode.OK);
        (await pulled.Content.ReadAsByteArrayAsync()).Should().Equal(bytes);
        push.StatusCode.Should().Be(HttpStatusCode.Unauthorized, "an anonymous caller is asked to log in");
        push.Headers.WwwAuthenticate.ToString().Should().StartWith("Basic ");
        privateRead.StatusCode.Should().Be(HttpStatusCode.Unauthorized);
    }

    [Fact]
    public async Task The_catalog_lists_only_pullable_repositories_in_exact_pages()
    {
        using var alice = _auth.As("alice", "alice-pw");
        using var reader = _auth.As("reader", "reader-pw");
        foreach (var name in new[] { "team-a/r1", "team-a/r2", "team-a/r3", "team-a/r4", "team-a/r5" })
            await alice.PushBlobAsync(name, RandomNumberGenerator.GetBytes(10));
        foreach (var name in new[] { "public/p1", "public/p2", "public/p3" })
            await alice.PushBlobAsync(name, RandomNumberGenerator.GetBytes(10));

        var pages = new List<string[]>();
        var next = "v2/_catalog?n=2";
        while (next is not null)
        {
            var response = await reader.GetAsync(next);
            response.StatusCode.Should().Be(HttpStatusCode.OK);
            var json = System.Text.Json.JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            pages.Add(json.RootElement.GetProperty("repositories").EnumerateArray().Select(r => r.GetString()!).ToArray());
            next = response.Headers.TryGetValues("Link", out var link)
                ? link.Single().Split(';')[0].Trim('<', '>').TrimStart('/')
                : null;
        }

        pages.Should().AllSatisfy(p => p.Should().HaveCount(2), "every page is full while more exist");
        pages.SelectMany(p => p).Should().Equal(
            ["public/p1", "public/p2", "public/p3", "team-a/r1", "team-a/r2", "team-a/r3", "team-a/r4", "team-a/r5"],
            "reader may pull team-a/** and, like everyone, the public repositories");
        var olga = await _auth.As("olga", "olga-pw").GetJsonAsync("v2/_catalog?n=100");
        olga.GetProperty("repositories").EnumerateArray().Select(r => r.GetString())
            .Should().Equal("public/p1", "public/p2", "public/p3");
    }

    [Fact]
    public async Task Registry_scope_operations_need_the_admin_role()
    {
        using var alice = _auth.As("alice", "alice-pw");
        using var olga = _auth.As("olga", "olga-pw");

        var denied = await alice.GetAsync("v2/_registry/events/stream");
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        using var allowed = await olga.GetAsync("v2/_registry/events/stream", HttpCompletionOption.ResponseHeadersRead, cancel.Token);

        denied.StatusCode.Should().Be(HttpStatusCode.Forbidden);
        allowed.StatusCode.Should().Be(HttpStatusCode.OK);
    }

    [Fact]
    public async Task Discovery_lists_only_the_endpoints_the_caller_may_use()
    {
        using var alice = _auth.As("alice", "alice-pw");
        using var olga = _auth.As("olga", "olga-pw");

        string[] Endpoints(System.Text.Json.JsonElement json) => json.GetProperty("extensions").EnumerateArray()
            .SelectMany(e => e.GetProperty("endpoints").EnumerateArray().Select(p => p.GetString()!)).ToArray();
        var forAlice = Endpoints(await alice.GetJsonAsync("v2/_oci/ext/discover"));
        var forOlga = Endpoints(await olga.GetJsonAsync("v2/_oci/ext/discover"));

        forAlice.Should().NotContain("_registry/events/stream").And.Contain("_registry/search/repositories");
        forOlga.Should().Contain("_registry/events/stream");
    }
}

/// <summary>htpasswd with no rules configured: what registry:2 does, plus the file's life cycle and login limits.</summary>
public sealed class HtpasswdDefaultPolicyTests : IAsyncLifetime
{
    private AuthServer _auth = null!;

    public async Task InitializeAsync() =>
        _auth = await AuthServer.StartAsync("htpasswd",
            new Dictionary<string, string> { ["alice"] = "alice-pw", ["bob"] = "bob-pw" });

    public async Task DisposeAsync() => await _auth.DisposeAsync();

    [Fact]
    public async Task Without_rules_every_authenticated_user_may_pull_push_and_delete_and_anonymous_nothing()
    {
        using var bob = _auth.As("bob", "bob-pw");
        using var anonymous = _auth.Anonymous();

        var (_, digest) = await bob.PushImageAsync("anything/app", "v1");
        var read = await anonymous.GetAsync("v2/anything/app/manifests/v1");
        var catalog = await anonymous.GetAsync("v2/_catalog");
        var deleted = await bob.DeleteAsync($"v2/anything/app/manifests/{digest}");

        read.StatusCode.Should().Be(HttpStatusCode.Unauthorized);
        catalog.StatusCode.Should().Be(HttpStatusCode.Unauthorized);
        deleted.StatusCode.Should().Be(HttpStatusCode.Accepted);
    }

    [Fact]
    public async Task An_upload_session_belongs_to_the_user_who_opened_it()
    {
        using var alice = _auth.As("alice", "alice-pw");
        using var bob = _auth.As("bob", "bob-pw");
        var location = await alice.StartUploadAsync("shared/sessions");

        var status = await bob.GetAsync(location);
        var patch = await bob.PatchAsync(location, Http.Chunk([1, 2, 3], 0));

        status.StatusCode.Should().Be(HttpStatusCode.NotFound);
        (await status.ErrorCodeAsync()).Should().Be("BLOB_UPLOAD_UNKNOWN");
        patch.StatusCode.Should().Be(HttpStatusCode.NotFound);
        (await alice.GetAsync(location)).StatusCode.Should().Be(HttpStatusCode.NoContent);
    }

    [Fact]
    public async Task The_htpasswd_file_is_read_again_when_it_changes()
    {
        using var carol = _auth.As("carol", "carol-pw");
        (await carol.GetAsync("v2/")).StatusCode.Should().Be(HttpStatusCode.Unauthorized);

        await AuthServer.AddUserAsync(_auth.HtpasswdPath, "carol", "carol-pw");
        await EventuallyAsync(async () => (await carol.GetAsync("v2/")).StatusCode == HttpStatusCode.OK);

        await Clients.Cli.RunAsync("htpasswd", ["-D", _auth.HtpasswdPath, "carol"]);
        await EventuallyAsync(async () => (await carol.GetAsync("v2/")).StatusCode == HttpStatusCode.Unauthorized);
    }

    [Fact]
    public async Task A_changed_password_replaces_the_cached_one()
    {
        using var old = _auth.As("alice", "alice-pw");
        (await old.GetAsync("v2/")).StatusCode.Should().Be(HttpStatusCode.OK);

        await AuthServer.AddUserAsync(_auth.HtpasswdPath, "alice", "new-pw");

        await EventuallyAsync(async () => (await old.GetAsync("v2/")).StatusCode == HttpStatusCode.Unauthorized);
        using var renewed = _auth.As("alice", "new-pw");
        (await renewed.GetAsync("v2/")).StatusCode.Should().Be(HttpStatusCode.OK);
    }

    [Fact]
    public async Task Repeated_failed_logins_from_one_address_get_429_with_retry_after()
    {
        await using var auth = await AuthServer.StartAsync("htpasswd", new Dictionary<string, string> { ["bob"] = "bob-pw" },
            new Dictionary<string, string?> { ["Registry:Auth:FailedLogins:Limit"] = "3" });
        using var guesser = auth.As("bob", "guess");
        for (var i = 0; i < 3; i++)
            (await guesser.GetAsync("v2/")).StatusCode.Should().Be(HttpStatusCode.Unauthorized);

        var throttled = await guesser.GetAsync("v2/");
        using var right = auth.As("bob", "bob-pw");
        var evenRight = await right.GetAsync("v2/");

        throttled.StatusCode.Should().Be(HttpStatusCode.TooManyRequests);
        (await throttled.ErrorCodeAsync()).Should().Be("TOOMANYREQUESTS");
        throttled.Headers.RetryAfter!.Delta.Should().BePositive();
        evenRight.StatusCode.Should().Be(HttpStatusCode.TooManyRequests, "no password is checked while throttled");
    }

    [Fact]
    public async Task Malformed_basic_credentials_are_401_not_500()
    {
        using var client = _auth.Anonymous();
        foreach (var header in new[] { "Basic !!!", "Basic " + Convert.ToBase64String("no-colon"u8.ToArray()), "Digest abc" })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "v2/");
            request.Headers.TryAddWithoutValidation("Authorization", header);
            (await client.SendAsync(request)).StatusCode.Should().Be(HttpStatusCode.Unauthorized, header);
        }
    }

    [Fact]
    public async Task Refusals_are_counted_by_reason_in_the_metrics()
    {
        using var wrong = _auth.As("alice", "wrong");
        using var anonymous = _auth.Anonymous();
        await wrong.GetAsync("v2/");
        await anonymous.GetAsync("v2/team/app/tags/list");

        var metrics = await anonymous.GetStringAsync("metrics");

        metrics.Should().MatchRegex(@"registry_auth_failures_total\{[^}]*reason=""invalid_credentials""[^}]*\} 1")
            .And.MatchRegex(@"registry_auth_failures_total\{[^}]*reason=""unauthenticated""[^}]*\} 1");
    }

    /// <summary>The file is checked at most once a second; retry (each failure counts as a failed login) for a while.</summary>
    private static async Task EventuallyAsync(Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!await condition())
        {
            DateTime.UtcNow.Should().BeBefore(deadline, "the change should be seen within seconds");
            await Task.Delay(1100);
        }
    }
}
