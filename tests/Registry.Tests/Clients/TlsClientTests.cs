using System.Net;
using Registry.Tests.Infrastructure;

namespace Registry.Tests.Clients;

/// <summary>
/// skopeo, podman and buildah against the registry over HTTPS, with TLS verification on, trusting the throw-away CA
/// the way containers/image clients do: a folder holding <c>ca.crt</c> (<c>--cert-dir</c>, <c>--src-cert-dir</c>,
/// <c>--dest-cert-dir</c>), the per-invocation form of <c>/etc/containers/certs.d/&lt;host:port&gt;/</c>.
/// </summary>
public sealed class TlsClientTests(TlsRegistryFixture fixture) : IClassFixture<TlsRegistryFixture>, IDisposable
{
    private readonly TempDir _temp = new();
    private string Host => fixture.Server.HostPort;
    private string CertDir => fixture.Authority.CertDir;
    private Skopeo Skopeo => new(_temp.Path);

    public void Dispose() => _temp.Dispose();

    private async Task<byte[]> RawManifestAsync(string remote) =>
        (await Skopeo.RunAsync("inspect", "--cert-dir", CertDir, "--raw", $"docker://{remote}")).StdoutBytes;

    [Fact]
    public async Task Skopeo_copies_an_image_both_ways_trusting_the_ca_through_cert_dir()
    {
        var layout = new OciLayoutBuilder(_temp.Sub("source"));
        var image = layout.AddImage("v1");
        var remote = $"{Host}/{RegistryFixture.NewRepo("tls")}:v1";

        await Skopeo.RunAsync("copy", "--dest-cert-dir", CertDir, $"oci:{layout.Path}:v1", $"docker://{remote}");

        (await RawManifestAsync(remote)).Should().Equal(image.Manifest.Bytes);
        var back = _temp.Sub("back");
        await Skopeo.RunAsync("copy", "--src-cert-dir", CertDir, $"docker://{remote}", $"oci:{back}:v1");
        OciLayout.ShouldHoldImage(back, "v1", image);
    }

    [Fact]
    public async Task Skopeo_refuses_the_registry_when_it_does_not_trust_the_ca_and_pushes_nothing()
    {
        var layout = new OciLayoutBuilder(_temp.Sub("source"));
        layout.AddImage("v1");
        var repo = RegistryFixture.NewRepo("tls");

        var result = await Skopeo.TryRunAsync("copy", "--dest-tls-verify=true", $"oci:{layout.Path}:v1", $"docker://{Host}/{repo}:v1");

        result.ExitCode.Should().NotBe(0, result.ToString());
        result.Stderr.Should().Contain("x509: certificate signed by unknown authority");
        (await fixture.Client.GetAsync($"v2/{repo}/tags/list")).StatusCode.Should().Be(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Podman_pushes_and_pulls_trusting_the_ca_through_cert_dir()
    {
        var layout = new OciLayoutBuilder(_temp.Sub("source"));
        var image = layout.AddImage("v1");
        var remote = $"{Host}/{RegistryFixture.NewRepo("tls")}:v1";
        using var storage = new ContainerStorage();
        var policy = new[] { "--signature-policy", storage.PolicyPath };
        var id = (await storage.PodmanAsync(["pull", .. policy, $"oci:{layout.Path}:v1"])).Stdout.Trim().Split('\n')[^1];

        var digestFile = storage.Sub("digest");
        await storage.PodmanAsync(["push", .. policy, "--cert-dir", CertDir, "--digestfile", digestFile, id, $"docker://{remote}"]);

        var raw = await RawManifestAsync(remote);
        Http.Sha256(raw).Should().Be(File.ReadAllText(digestFile).Trim());
        ManifestView.Parse(raw).ConfigDigest.Should().Be(image.Config.Digest);
        await storage.PodmanAsync("rmi", "--all", "--force");
        var pulled = await storage.PodmanAsync(["pull", .. policy, "--cert-dir", CertDir, remote]);
        pulled.Stdout.Trim().Split('\n')[^1].Should().Be(image.Config.Hex);
    }

    [Fact]
    public async Task Buildah_pushes_trusting_the_ca_through_cert_dir()
    {
        var layout = new OciLayoutBuilder(_temp.Sub("source"));
        var image = layout.AddImage("v1");
        var remote = $"{Host}/{RegistryFixture.NewRepo("tls")}:v1";
        using var storage = new ContainerStorage();
        var policy = new[] { "--signature-policy", storage.PolicyPath };
        var id = (await storage.BuildahAsync(["pull", .. policy, $"oci:{layout.Path}:v1"])).Stdout.Trim().Split('\n')[^1];

        var digestFile = storage.Sub("digest");
        await storage.BuildahAsync(["push", .. policy, "--cert-dir", CertDir, "--digestfile", digestFile, id, $"docker://{remote}"]);

        var raw = await RawManifestAsync(remote);
        Http.Sha256(raw).Should().Be(File.ReadAllText(digestFile).Trim());
        var manifest = ManifestView.Parse(raw);
        manifest.ConfigDigest.Should().Be(image.Config.Digest);
        manifest.Layers.Should().HaveCount(image.Layers.Count);
    }
}
