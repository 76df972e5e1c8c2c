using Registry.Tests.Auth;
using Registry.Tests.Infrastructure;

namespace Registry.Tests.Clients;

/// <summary>
/// Real clients against each authentication mode, over HTTPS with TLS verification on (the throw-away CA trusted
/// through <c>--cert-dir</c>, as containers/image clients do): `skopeo login` and copies both ways, `podman login`
/// with push and pull and a read-only user refused, buildah push. Credentials live in a per-test auth file.
/// </summary>
public sealed class AuthClientTests : IAsyncLifetime
{
    private readonly TempDir _temp = new();
    private TestCertificateAuthority _ca = null!;

    public async Task InitializeAsync() => _ca = await TestCertificateAuthority.CreateAsync();

    public Task DisposeAsync()
    {
        _ca.Dispose();
        _temp.Dispose();
        return Task.CompletedTask;
    }

    /// <summary>What each client is told about TLS: verify, trusting only the test CA.</summary>
    private string[] Tls => ["--cert-dir", _ca.CertDir];

    private static readonly Dictionary<string, string?> Policy = new()
    {
        ["Registry:Auth:Rules:0:Repositories:0"] = "team/**",
        ["Registry:Auth:Rules:0:Users:0"] = "alice",
        ["Registry:Auth:Rules:0:Actions:0"] = "*",
        ["Registry:Auth:Rules:1:Repositories:0"] = "team/**",
        ["Registry:Auth:Rules:1:Users:0"] = "reader",
        ["Registry:Auth:Rules:1:Actions:0"] = "pull",
    };

    private Task<AuthServer> StartAsync(string mode) =>
        AuthServer.StartAsync(mode, new Dictionary<string, string> { ["alice"] = "alice-pw", ["reader"] = "reader-pw" }, Policy,
            tls: _ca);

    [Theory]
    [InlineData("htpasswd")]
    [InlineData("token")]
    public async Task Skopeo_logs_in_and_copies_both_ways(string mode)
    {
        await using var auth = await StartAsync(mode);
        var host = auth.Server.HostPort;
        var skopeo = new Skopeo(_temp.Path);
        var authfile = _temp.Sub("skopeo-auth.json");
        var layout = new OciLayoutBuilder(_temp.Sub("source"));
        var image = layout.AddImage("v1");

        await skopeo.RunAsync([.. "login".Split(), .. Tls, "--authfile", authfile, "-u", "alice", "-p", "alice-pw", host]);
        await skopeo.RunAsync("copy", "--dest-cert-dir", _ca.CertDir, "--authfile", authfile,
            $"oci:{layout.Path}:v1", $"docker://{host}/team/app:v1");
        var back = _temp.Sub("back");
        await skopeo.RunAsync("copy", "--src-cert-dir", _ca.CertDir, "--authfile", authfile,
            $"docker://{host}/team/app:v1", $"oci:{back}:v1");

        OciLayout.ShouldHoldImage(back, "v1", image);
        var anonymous = await skopeo.TryRunAsync("copy", "--src-cert-dir", _ca.CertDir, $"docker://{host}/team/app:v1",
            $"oci:{_temp.Sub("anon")}:v1");
        anonymous.ExitCode.Should().NotBe(0, "an anonymous pull of a private repository must fail");
        var wrong = await skopeo.TryRunAsync([.. "login".Split(), .. Tls, "--authfile", _temp.Sub("wrong.json"),
            "-u", "alice", "-p", "wrong", host]);
        wrong.ExitCode.Should().NotBe(0, "a wrong password must not log in");
    }

    [Theory]
    [InlineData("htpasswd")]
    [InlineData("token")]
    public async Task Podman_logs_in_pushes_and_pulls_and_a_read_only_user_cannot_push(string mode)
    {
        await using var auth = await StartAsync(mode);
        var host = auth.Server.HostPort;
        var layout = new OciLayoutBuilder(_temp.Sub("source"));
        var image = layout.AddImage("v1");
        using var storage = new ContainerStorage();
        var policy = new[] { "--signature-policy", storage.PolicyPath };
        var aliceAuth = storage.Sub("alice-auth.json");
        var readerAuth = storage.Sub("reader-auth.json");

        await storage.PodmanAsync(["login", .. Tls, "--authfile", aliceAuth, "-u", "alice", "-p", "alice-pw", host]);
        await storage.PodmanAsync(["login", .. Tls, "--authfile", readerAuth, "-u", "reader", "-p", "reader-pw", host]);
        var id = (await storage.PodmanAsync(["pull", .. policy, $"oci:{layout.Path}:v1"])).Stdout.Trim().Split('\n')[^1];
        await storage.PodmanAsync(["push", .. policy, .. Tls, "--authfile", aliceAuth, id, $"docker://{host}/team/app:v1"]);
        var refused = await storage.TryPodmanAsync(["push", .. policy, .. Tls, "--authfile", readerAuth, id,
            $"docker://{host}/team/app:reader"]);
        await storage.PodmanAsync("rmi", "--all", "--force");
        var pulled = await storage.PodmanAsync(["pull", .. policy, .. Tls, "--authfile", readerAuth, $"{host}/team/app:v1"]);

        pulled.Stdout.Trim().Split('\n')[^1].Should().Be(image.Config.Hex);
        refused.ExitCode.Should().NotBe(0, "reader may pull only");
    }

    [Theory]
    [InlineData("htpasswd")]
    [InlineData("token")]
    public async Task Buildah_pushes_with_credentials(string mode)
    {
        await using var auth = await StartAsync(mode);
        var host = auth.Server.HostPort;
        var layout = new OciLayoutBuilder(_temp.Sub("source"));
        var image = layout.AddImage("v1");
        using var storage = new ContainerStorage();
        var policy = new[] { "--signature-policy", storage.PolicyPath };
        var authfile = storage.Sub("auth.json");

        await storage.BuildahAsync(["login", .. Tls, "--authfile", authfile, "-u", "alice", "-p", "alice-pw", host]);
        var id = (await storage.BuildahAsync(["pull", .. policy, $"oci:{layout.Path}:v1"])).Stdout.Trim().Split('\n')[^1];
        await storage.BuildahAsync(["push", .. policy, .. Tls, "--authfile", authfile, id, $"docker://{host}/team/built:v1"]);

        var raw = await new Skopeo(_temp.Path).RunAsync("inspect", "--cert-dir", _ca.CertDir, "--authfile", authfile,
            "--config", "--raw", $"docker://{host}/team/built:v1");
        raw.StdoutBytes.Should().Equal(image.Config.Bytes);
    }
}
