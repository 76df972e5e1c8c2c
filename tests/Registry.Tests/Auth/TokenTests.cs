using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Registry.Tests.Infrastructure;

namespace Registry.Tests.Auth;

/// <summary>
/// <c>Registry:Auth:Mode=token</c> with the built-in token service: the Docker token flow (GET with Basic, repeated
/// scopes), the OAuth2 password and refresh_token grants, and every kind of bad token.
/// </summary>
public sealed class TokenTests : IAsyncLifetime
{
    private AuthServer _auth = null!;
    private const string Service = "registry";
    private const string Issuer = "registry-token-issuer";

    private static readonly Dictionary<string, string?> Policy = new()
    {
        ["Registry:Auth:Rules:0:Repositories:0"] = "team-a/**",
        ["Registry:Auth:Rules:0:Users:0"] = "alice",
        ["Registry:Auth:Rules:0:Actions:0"] = "*",
        ["Registry:Auth:Rules:1:Repositories:0"] = "team-a/**",
        ["Registry:Auth:Rules:1:Users:0"] = "reader",
        ["Registry:Auth:Rules:1:Actions:0"] = "pull",
        ["Registry:Auth:Rules:2:Repositories:0"] = "public/**",
        ["Registry:Auth:Rules:2:Anonymous"] = "true",
        ["Registry:Auth:Rules:2:Actions:0"] = "pull",
        ["Registry:Auth:Rules:3:Repositories:0"] = "public/**",
        ["Registry:Auth:Rules:3:Users:0"] = "alice",
        ["Registry:Auth:Rules:3:Actions:0"] = "*",
        ["Registry:Auth:Admins:Users:0"] = "alice",
    };

    public async Task InitializeAsync() =>
        _auth = await AuthServer.StartAsync("token",
            new Dictionary<string, string> { ["alice"] = "alice-pw", ["reader"] = "reader-pw" }, Policy);

    public async Task DisposeAsync() => await _auth.DisposeAsync();

    private async Task<string> TokenAsync(string? user, string? password, params string[] scopes)
    {
        using var client = _auth.Anonymous();
        var query = string.Join('&', scopes.Select(s => "scope=" + Uri.EscapeDataString(s)).Prepend($"service={Service}"));
        using var request = new HttpRequestMessage(HttpMethod.Get, $"auth/token?{query}");
        if (user is not null) request.Headers.Authorization = AuthServer.Basic(user, password!);
        var response = await client.SendAsync(request);
        response.StatusCode.Should().Be(HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        json.RootElement.GetProperty("access_token").GetString().Should().Be(json.RootElement.GetProperty("token").GetString());
        json.RootElement.GetProperty("expires_in").GetInt32().Should().BePositive();
        return json.RootElement.GetProperty("token").GetString()!;
    }

    private ECDsa ServerKey()
    {
        var key = ECDsa.Create();
        key.ImportFromPem(File.ReadAllText(Path.Combine(_auth.Server.StoragePath!, "auth", "token-signing-key.pem")));
        return key;
    }

    private static JsonArray Access(string token) => TestJwt.Payload(token)["access"]!.AsArray();

    [Fact]
    public async Task Base_endpoint_without_a_token_is_401_with_a_bearer_challenge()
    {
        using var client = _auth.Anonymous();

        var response = await client.GetAsync("v2/");

        response.StatusCode.Should().Be(HttpStatusCode.Unauthorized);
        var challenge = response.Headers.WwwAuthenticate.Single();
        challenge.Scheme.Should().Be("Bearer");
        challenge.Parameter.Should().Be($"realm=\"{_auth.Server.BaseAddress}auth/token\",service=\"{Service}\"");
        (await response.ErrorCodeAsync()).Should().Be("UNAUTHORIZED");
    }

    [Fact]
    public async Task The_challenge_names_the_scope_the_request_needs()
    {
        using var client = _auth.Anonymous();

        var pull = await client.GetAsync("v2/team-a/app/manifests/v1");
        var push = await client.PostAsync("v2/team-a/app/blobs/uploads/", null);
        var catalog = await client.GetAsync("v2/_catalog");

        pull.Headers.WwwAuthenticate.Single().Parameter.Should().EndWith(",scope=\"repository:team-a/app:pull\"");
        push.Headers.WwwAuthenticate.Single().Parameter.Should().EndWith(",scope=\"repository:team-a/app:pull,push\"");
        catalog.Headers.WwwAuthenticate.Single().Parameter.Should().EndWith(",scope=\"registry:catalog:*\"");
    }

    [Fact]
    public async Task A_token_pushes_and_pulls_what_it_grants()
    {
        var token = await TokenAsync("alice", "alice-pw", "repository:team-a/app:pull,push");
        using var client = _auth.WithToken(token);

        var (bytes, digest) = await client.PushImageAsync("team-a/app", "v1");

        (await client.GetByteArrayAsync($"v2/team-a/app/manifests/{digest}")).Should().Equal(bytes);
        (await client.GetAsync("v2/")).StatusCode.Should().Be(HttpStatusCode.OK);
        TestJwt.Payload(token)["sub"]!.GetValue<string>().Should().Be("alice");
    }

    [Fact]
    public async Task The_token_holds_only_what_the_policy_grants_never_what_was_asked_for()
    {
        var token = await TokenAsync("reader", "reader-pw",
            "repository:team-a/app:pull,push,delete", "repository:elsewhere/app:pull", "registry:admin:*");

        var access = Access(token);

        access.Should().HaveCount(1);
        access[0]!["name"]!.GetValue<string>().Should().Be("team-a/app");
        access[0]!["actions"]!.AsArray().Select(a => a!.GetValue<string>()).Should().Equal("pull");
    }

    [Fact]
    public async Task A_pull_token_cannot_push_and_the_answer_asks_for_more_scope()
    {
        var alice = await TokenAsync("alice", "alice-pw", "repository:team-a/app:pull,push");
        await _auth.WithToken(alice).PushBlobAsync("team-a/app", [1, 2, 3]);
        var readerToken = await TokenAsync("reader", "reader-pw", "repository:team-a/app:pull,push");
        using var reader = _auth.WithToken(readerToken);

        var push = await reader.PostAsync("v2/team-a/app/blobs/uploads/", null);

        push.StatusCode.Should().Be(HttpStatusCode.Unauthorized);
        push.Headers.WwwAuthenticate.Single().Parameter.Should()
            .Contain("scope=\"repository:team-a/app:pull,push\"").And.EndWith("error=\"insufficient_scope\"");
        (await reader.GetAsync($"v2/team-a/app/blobs/{Http.Sha256([1, 2, 3])}")).StatusCode.Should().Be(HttpStatusCode.OK);
    }

    [Fact]
    public async Task A_token_for_one_repository_does_not_open_another()
    {
        var token = await TokenAsync("alice", "alice-pw", "repository:team-a/one:pull,push");
        using var client = _auth.WithToken(token);

        var other = await client.GetAsync("v2/team-a/two/tags/list");

        other.StatusCode.Should().Be(HttpStatusCode.Unauthorized);
        other.Headers.WwwAuthenticate.Single().Parameter.Should().EndWith("error=\"insufficient_scope\"");
    }

    [Fact]
    public async Task Anonymous_tokens_pull_public_repositories_only()
    {
        var alice = await TokenAsync("alice", "alice-pw", "repository:public/tools:pull,push", "repository:team-a/app:pull,push");
        await _auth.WithToken(alice).PushImageAsync("public/tools", "v1");
        await _auth.WithToken(alice).PushImageAsync("team-a/app", "v1");

        var anonymous = await TokenAsync(null, null, "repository:public/tools:pull", "repository:team-a/app:pull");
        using var client = _auth.WithToken(anonymous);

        Access(anonymous).Select(a => a!["name"]!.GetValue<string>()).Should().Equal("public/tools");
        (await client.GetAsync("v2/public/tools/manifests/v1")).StatusCode.Should().Be(HttpStatusCode.OK);
        (await client.GetAsync("v2/team-a/app/manifests/v1")).StatusCode.Should().Be(HttpStatusCode.Unauthorized);
    }

    [Fact]
    public async Task Wrong_credentials_at_the_token_endpoint_are_401_and_a_wrong_service_is_400()
    {
        using var client = _auth.Anonymous();
        using var wrong = new HttpRequestMessage(HttpMethod.Get, $"auth/token?service={Service}&scope=repository:team-a/app:pull");
        wrong.Headers.Authorization = AuthServer.Basic("alice", "nope");
        using var otherService = new HttpRequestMessage(HttpMethod.Get, "auth/token?service=elsewhere");

        var refused = await client.SendAsync(wrong);
        var service = await client.SendAsync(otherService);

        refused.StatusCode.Should().Be(HttpStatusCode.Unauthorized);
        (await refused.ErrorCodeAsync()).Should().Be("UNAUTHORIZED");
        service.StatusCode.Should().Be(HttpStatusCode.BadRequest);
    }

    [Fact]
    public async Task Password_and_refresh_token_grants_issue_tokens_over_post()
    {
        using var client = _auth.Anonymous();
        var password = await client.PostAsync("auth/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "password", ["username"] = "alice", ["password"] = "alice-pw", ["service"] = Service,
            ["scope"] = "repository:team-a/app:pull repository:public/x:pull", ["client_id"] = "test", ["access_type"] = "offline",
        }));
        password.StatusCode.Should().Be(HttpStatusCode.OK, await password.Content.ReadAsStringAsync());
        using var first = JsonDocument.Parse(await password.Content.ReadAsStringAsync());
        var refresh = first.RootElement.GetProperty("refresh_token").GetString()!;

        var renewed = await client.PostAsync("auth/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "refresh_token", ["refresh_token"] = refresh, ["service"] = Service,
            ["scope"] = "repository:team-a/app:pull,push", ["client_id"] = "test",
        }));

        renewed.StatusCode.Should().Be(HttpStatusCode.OK, await renewed.Content.ReadAsStringAsync());
        using var second = JsonDocument.Parse(await renewed.Content.ReadAsStringAsync());
        var token = second.RootElement.GetProperty("access_token").GetString()!;
        second.RootElement.GetProperty("scope").GetString().Should().Be("repository:team-a/app:pull,push");
        (await _auth.WithToken(token).PostAsync("v2/team-a/app/blobs/uploads/", null)).StatusCode
            .Should().Be(HttpStatusCode.Accepted);
        (await _auth.WithToken(refresh).GetAsync("v2/")).StatusCode
            .Should().Be(HttpStatusCode.Unauthorized, "a refresh token is not an access token");
    }

    [Fact]
    public async Task A_wrong_password_or_forged_refresh_token_is_refused_over_post()
    {
        using var client = _auth.Anonymous();
        var access = await TokenAsync("alice", "alice-pw", "repository:team-a/app:pull");

        var password = await client.PostAsync("auth/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "password", ["username"] = "alice", ["password"] = "nope", ["service"] = Service,
        }));
        var refresh = await client.PostAsync("auth/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "refresh_token", ["refresh_token"] = access, ["service"] = Service,
        }));

        password.StatusCode.Should().Be(HttpStatusCode.Unauthorized);
        refresh.StatusCode.Should().Be(HttpStatusCode.Unauthorized, "an access token is not a refresh token");
        (await refresh.Content.ReadAsStringAsync()).Should().Contain("invalid_grant");
    }

    [Fact]
    public async Task Tokens_signed_by_another_key_are_refused()
    {
        var genuine = await TokenAsync("alice", "alice-pw", "repository:team-a/app:pull");
        using var other = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var forged = TestJwt.EcSigned(other, TestJwt.Header(genuine)["kid"]!.GetValue<string>(), TestJwt.Payload(genuine));

        await ExpectInvalidAsync(forged);
    }

    [Fact]
    public async Task A_tampered_token_is_refused()
    {
        var genuine = await TokenAsync("reader", "reader-pw", "repository:team-a/app:pull");
        var tampered = TestJwt.Tampered(genuine, payload =>
            payload["access"]![0]!["actions"] = new JsonArray("pull", "push", "delete"));

        await ExpectInvalidAsync(tampered, "v2/team-a/app/tags/list");
    }

    [Fact]
    public async Task An_unsigned_alg_none_token_is_refused()
    {
        var genuine = await TokenAsync("alice", "alice-pw", "repository:team-a/app:pull");
        var none = TestJwt.Encode(new JsonObject { ["alg"] = "none", ["typ"] = "JWT" }, TestJwt.Payload(genuine), null);

        await ExpectInvalidAsync(none);
    }

    [Fact]
    public async Task An_hmac_token_keyed_with_the_public_key_is_refused()
    {
        var genuine = await TokenAsync("alice", "alice-pw", "repository:team-a/app:pull");
        using var key = ServerKey();
        var publicKey = key.ExportSubjectPublicKeyInfo();
        var confused = TestJwt.Encode(new JsonObject { ["alg"] = "HS256", ["typ"] = "JWT", ["kid"] = TestJwt.Header(genuine)["kid"]!.DeepClone() },
            TestJwt.Payload(genuine), data => HMACSHA256.HashData(publicKey, data));

        await ExpectInvalidAsync(confused);
    }

    [Fact]
    public async Task Expiry_is_checked_with_a_thirty_second_allowance()
    {
        using var key = ServerKey();
        var kid = TestJwt.Header(await TokenAsync("alice", "alice-pw"))["kid"]!.GetValue<string>();
        var now = DateTimeOffset.UtcNow;
        var justExpired = TestJwt.EcSigned(key, kid, TestJwt.Claims(Issuer, Service, "alice", "team-a/app", ["pull"],
            expires: now.AddSeconds(-10), notBefore: now.AddMinutes(-5)));
        var longExpired = TestJwt.EcSigned(key, kid, TestJwt.Claims(Issuer, Service, "alice", "team-a/app", ["pull"],
            expires: now.AddSeconds(-90), notBefore: now.AddMinutes(-5)));
        var notYet = TestJwt.EcSigned(key, kid, TestJwt.Claims(Issuer, Service, "alice", "team-a/app", ["pull"],
            notBefore: now.AddMinutes(2)));

        (await _auth.WithToken(justExpired).GetAsync("v2/team-a/app/tags/list")).StatusCode
            .Should().NotBe(HttpStatusCode.Unauthorized, "10 s past exp is within the 30 s allowance");
        await ExpectInvalidAsync(longExpired);
        await ExpectInvalidAsync(notYet);
    }

    [Fact]
    public async Task Tokens_for_another_audience_or_from_another_issuer_are_refused()
    {
        using var key = ServerKey();
        var kid = TestJwt.Header(await TokenAsync("alice", "alice-pw"))["kid"]!.GetValue<string>();

        await ExpectInvalidAsync(TestJwt.EcSigned(key, kid, TestJwt.Claims(Issuer, "other-registry", "alice", "team-a/app", ["pull"])));
        await ExpectInvalidAsync(TestJwt.EcSigned(key, kid, TestJwt.Claims("someone-else", Service, "alice", "team-a/app", ["pull"])));
    }

    [Fact]
    public async Task The_public_keys_are_published_as_jwks_and_verify_issued_tokens()
    {
        var token = await TokenAsync("alice", "alice-pw", "repository:team-a/app:pull");
        using var client = _auth.Anonymous();

        var jwks = new JsonWebKeySet(await client.GetStringAsync("auth/jwks"));
        var result = await new JsonWebTokenHandler().ValidateTokenAsync(token, new TokenValidationParameters
        {
            IssuerSigningKeys = jwks.GetSigningKeys(), ValidIssuer = Issuer, ValidAudience = Service,
        });

        result.IsValid.Should().BeTrue(result.Exception?.Message);
        jwks.Keys.Single().Kid.Should().Be(TestJwt.Header(token)["kid"]!.GetValue<string>());
    }

    [Fact]
    public async Task The_signing_key_is_kept_so_tokens_survive_a_restart()
    {
        var token = await TokenAsync("alice", "alice-pw", "repository:team-a/app:pull,push");
        var storage = _auth.Server.StoragePath!;
        await _auth.Server.StopAsync();
        var mode = OperatingSystem.IsWindows() ? default : File.GetUnixFileMode(Path.Combine(storage, "auth", "token-signing-key.pem"));

        await using var restarted = await RegistryServer.StartAsync(new Dictionary<string, string?>(Policy)
        {
            ["Registry:Auth:Mode"] = "token", ["Registry:Auth:Htpasswd:Path"] = _auth.HtpasswdPath,
        }, storage);
        using var client = restarted.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);

        (await client.PostAsync("v2/team-a/app/blobs/uploads/", null)).StatusCode.Should().Be(HttpStatusCode.Accepted);
        mode.Should().Be(UnixFileMode.UserRead | UnixFileMode.UserWrite, "the private key is readable by its owner only");
    }

    private async Task ExpectInvalidAsync(string token, string path = "v2/team-a/app/tags/list")
    {
        using var client = _auth.WithToken(token);
        var response = await client.GetAsync(path);
        response.StatusCode.Should().Be(HttpStatusCode.Unauthorized);
        response.Headers.WwwAuthenticate.Single().Parameter.Should().EndWith("error=\"invalid_token\"");
        (await response.ErrorCodeAsync()).Should().Be("UNAUTHORIZED");
    }
}
