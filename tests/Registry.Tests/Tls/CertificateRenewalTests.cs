using System.Net;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Registry.Tests.Clients;
using Registry.Tests.Infrastructure;

namespace Registry.Tests.Tls;

/// <summary>A renewed certificate is served to new connections without a restart, and a half-written renewal breaks nothing.</summary>
public sealed class CertificateRenewalTests : IAsyncLifetime
{
    private TestCertificateAuthority _ca = null!;
    private readonly TempDir _temp = new("tls-");
    private ServerCertificateFiles _served = null!;
    private RegistryServer _server = null!;

    private string CertificatePath => _temp.Sub("tls.crt");
    private string KeyPath => _temp.Sub("tls.key");

    public async Task InitializeAsync()
    {
        _ca = await TestCertificateAuthority.CreateAsync();
        var first = await _ca.IssueServerCertificateAsync();
        Replace(CertificatePath, first.CertificatePath);
        Replace(KeyPath, first.KeyPath);
        _served = new ServerCertificateFiles(CertificatePath, KeyPath);
        _server = await RegistryServer.StartAsync(tls: _ca, certificate: _served);
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        _ca.Dispose();
        _temp.Dispose();
    }

    /// <summary>As certbot and Kubernetes do: a new file put in place by rename, never a file rewritten in place.</summary>
    private static void Replace(string path, string source)
    {
        var next = path + ".next";
        File.Copy(source, next, overwrite: true);
        File.Move(next, path, overwrite: true);
    }

    /// <summary>The serial number of the certificate a new connection is shown (after the chain checked out against the CA).</summary>
    private async Task<string> ServedSerialAsync()
    {
        string? serial = null;
        var handler = _ca.CreateHandler();
        handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
        {
            serial = ((X509Certificate2)certificate!).SerialNumber;
            return errors == SslPolicyErrors.None;
        };
        using var client = new HttpClient(handler) { BaseAddress = _server.BaseAddress };
        var response = await client.GetAsync("v2/");
        response.StatusCode.Should().Be(HttpStatusCode.OK);
        return serial!;
    }

    [Fact]
    public async Task A_renewed_certificate_is_served_to_new_connections_without_a_restart()
    {
        var before = await ServedSerialAsync();
        var renewed = await _ca.IssueServerCertificateAsync();

        Replace(CertificatePath, renewed.CertificatePath);
        Replace(KeyPath, renewed.KeyPath);

        var after = await ServedSerialAsync();
        after.Should().Be(renewed.Load().SerialNumber).And.NotBe(before);
    }

    [Fact]
    public async Task A_certificate_renewed_before_its_key_keeps_the_previous_pair_until_the_key_follows()
    {
        var before = await ServedSerialAsync();
        var renewed = await _ca.IssueServerCertificateAsync();

        Replace(CertificatePath, renewed.CertificatePath);
        var halfway = await ServedSerialAsync();
        Replace(KeyPath, renewed.KeyPath);
        var after = await ServedSerialAsync();

        halfway.Should().Be(before, "the new certificate does not load with the old key, so the old pair stays");
        after.Should().Be(renewed.Load().SerialNumber);
    }
}
