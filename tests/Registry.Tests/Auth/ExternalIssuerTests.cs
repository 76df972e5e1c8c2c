using System.Buffers.Text;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json.Nodes;
using Registry.Tests.Infrastructure;

namespace Registry.Tests.Auth;

/// <summary>
/// Token mode behind an existing token server (GitLab, Harbor core, docker_auth): tokens from an external issuer,
/// trusted through a JWKS file or PEM certificates, with <c>kid</c> and <c>x5c</c> honoured.
/// </summary>
public sealed class ExternalIssuerTests : IAsyncLifetime
{
    private const string Issuer = "https://auth.example.test";
    private const string Service = "registry.example.test";
    private readonly string _folder = Directory.CreateTempSubdirectory("registry-issuer-").FullName;
    private readonly ECDsa _jwksKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
    private readonly ECDsa _caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
    private readonly ECDsa _signerKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
    private X509Certificate2 _ca = null!;
    private X509Certificate2 _signer = null!;
    private RegistryServer _server = null!;

    public async Task InitializeAsync()
    {
        var p = _jwksKey.ExportParameters(false);
        var jwks = new JsonObject
        {
            ["keys"] = new JsonArray(new JsonObject
            {
                ["kty"] = "EC", ["crv"] = "P-256", ["kid"] = "jwks-key-1", ["use"] = "sig", ["alg"] = "ES256",
                ["x"] = Base64Url.EncodeToString(p.Q.X!), ["y"] = Base64Url.EncodeToString(p.Q.Y!),
            }),
        };
        await File.WriteAllTextAsync(Path.Combine(_folder, "jwks.json"), jwks.ToJsonString());

        var now = DateTimeOffset.UtcNow;
        var caRequest = new CertificateRequest("CN=test token CA", _caKey, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign, true));
        _ca = caRequest.CreateSelfSigned(now.AddDays(-1), now.AddDays(30));
        var signerRequest = new CertificateRequest("CN=token signer", _signerKey, HashAlgorithmName.SHA256);
        signerRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        _signer = signerRequest.Create(_ca, now.AddDays(-1), now.AddDays(30), [1, 2, 3, 4]);
        await File.WriteAllTextAsync(Path.Combine(_folder, "roots.pem"), _ca.ExportCertificatePem());

        _server = await RegistryServer.StartAsync(new Dictionary<string, string?>
        {
            ["Registry:Auth:Mode"] = "token",
            ["Registry:Auth:Token:Realm"] = "https://auth.example.test/token",
            ["Registry:Auth:Token:Service"] = Service,
            ["Registry:Auth:Token:Issuer"] = Issuer,
            ["Registry:Auth:Token:Jwks"] = Path.Combine(_folder, "jwks.json"),
            ["Registry:Auth:Token:Certificates"] = Path.Combine(_folder, "roots.pem"),
        });
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        Directory.Delete(_folder, recursive: true);
    }

    private HttpClient With(string token)
    {
        var client = _server.CreateClient();
        client.DefaultRequestHeaders.Authorization = new("Bearer", token);
        return client;
    }

    private static JsonObject Claims(string repository, params string[] actions) =>
        TestJwt.Claims(Issuer, Service, "ci-bot", repository, actions);

    [Fact]
    public async Task The_challenge_points_at_the_external_token_server()
    {
        var response = await _server.CreateClient().GetAsync("v2/team/app/tags/list");

        response.StatusCode.Should().Be(HttpStatusCode.Unauthorized);
        response.Headers.WwwAuthenticate.Single().Parameter.Should().Be(
            $"realm=\"https://auth.example.test/token\",service=\"{Service}\",scope=\"repository:team/app:pull\"");
        (await _server.CreateClient().GetAsync("auth/token")).StatusCode
            .Should().Be(HttpStatusCode.NotFound, "no built-in token service runs beside an external issuer");
    }

    [Fact]
    public async Task A_token_signed_by_a_jwks_key_is_accepted_with_exactly_its_grants()
    {
        using var client = With(TestJwt.EcSigned(_jwksKey, "jwks-key-1", Claims("team/app", "pull", "push")));

        var digest = await client.PushBlobAsync("team/app", [9, 9, 9]);

        (await client.GetAsync($"v2/team/app/blobs/{digest}")).StatusCode.Should().Be(HttpStatusCode.OK);
        (await client.DeleteAsync($"v2/team/app/blobs/{digest}")).StatusCode.Should().Be(HttpStatusCode.Unauthorized);
        (await client.GetAsync("v2/team/other/tags/list")).StatusCode.Should().Be(HttpStatusCode.Unauthorized);
    }

    [Fact]
    public async Task A_token_signed_by_a_configured_certificate_is_accepted_by_its_libtrust_key_id()
    {
        using var caSigned = With(TestJwt.EcSigned(_caKey, LibtrustKeyId(_ca), Claims("team/app", "pull", "push")));

        (await caSigned.PostAsync("v2/team/app/blobs/uploads/", null)).StatusCode.Should().Be(HttpStatusCode.Accepted);
    }

    [Fact]
    public async Task A_token_carrying_an_x5c_chain_to_a_configured_root_is_accepted()
    {
        var x5c = new JsonObject { ["x5c"] = new JsonArray(Convert.ToBase64String(_signer.RawData)) };
        using var client = With(TestJwt.EcSigned(_signerKey, null, Claims("team/app", "pull", "push"), x5c));

        (await client.PostAsync("v2/team/app/blobs/uploads/", null)).StatusCode.Should().Be(HttpStatusCode.Accepted);
    }

    [Fact]
    public async Task A_token_carrying_an_x5c_chain_to_an_unknown_root_is_refused()
    {
        using var strangerKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var stranger = new CertificateRequest("CN=stranger", strangerKey, HashAlgorithmName.SHA256)
            .CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        var x5c = new JsonObject { ["x5c"] = new JsonArray(Convert.ToBase64String(stranger.RawData)) };
        using var client = With(TestJwt.EcSigned(strangerKey, null, Claims("team/app", "pull"), x5c));

        (await client.GetAsync("v2/team/app/tags/list")).StatusCode.Should().Be(HttpStatusCode.Unauthorized);
    }

    [Fact]
    public async Task A_token_from_another_issuer_or_signed_by_an_unknown_key_is_refused()
    {
        using var unknown = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var wrongIssuer = With(TestJwt.EcSigned(_jwksKey, "jwks-key-1",
            TestJwt.Claims("https://evil.example.test", Service, "ci-bot", "team/app", ["pull"])));
        using var wrongKey = With(TestJwt.EcSigned(unknown, "jwks-key-1", Claims("team/app", "pull")));

        (await wrongIssuer.GetAsync("v2/team/app/tags/list")).StatusCode.Should().Be(HttpStatusCode.Unauthorized);
        (await wrongKey.GetAsync("v2/team/app/tags/list")).StatusCode.Should().Be(HttpStatusCode.Unauthorized);
    }

    /// <summary>libtrust's key id, computed independently of the product: base32 of 240 bits of SHA-256(SPKI).</summary>
    private static string LibtrustKeyId(X509Certificate2 certificate)
    {
        var hash = SHA256.HashData(certificate.PublicKey.ExportSubjectPublicKeyInfo())[..30];
        var bits = string.Concat(hash.Select(b => Convert.ToString(b, 2).PadLeft(8, '0')));
        var encoded = string.Concat(Enumerable.Range(0, bits.Length / 5)
            .Select(i => "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"[Convert.ToInt32(bits.Substring(i * 5, 5), 2)]));
        return string.Join(':', encoded.Chunk(4).Select(c => new string(c)));
    }
}
