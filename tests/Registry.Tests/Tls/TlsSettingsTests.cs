using System.Net;
using Microsoft.Extensions.Options;
using Registry.Tests.Clients;
using Registry.Tests.Infrastructure;

namespace Registry.Tests.Tls;

/// <summary>Registry:Http:Tls:Certificate and Key: what they turn on, and every way they can be wrong at start-up.</summary>
public sealed class TlsSettingsTests : IAsyncLifetime
{
    private TestCertificateAuthority _ca = null!;
    private readonly TempDir _temp = new("tls-");

    public async Task InitializeAsync() => _ca = await TestCertificateAuthority.CreateAsync();

    public Task DisposeAsync()
    {
        _ca.Dispose();
        _temp.Dispose();
        return Task.CompletedTask;
    }

    private static Dictionary<string, string?> Tls(string? certificate, string? key) => new()
    {
        ["Registry:Http:Tls:Certificate"] = certificate,
        ["Registry:Http:Tls:Key"] = key,
    };

    private static async Task<IReadOnlyList<string>> StartUpFailuresAsync(Dictionary<string, string?> settings, string? storage = null)
    {
        var start = () => RegistryServer.StartAsync(settings, storagePath: storage);
        var failure = await start.Should().ThrowAsync<OptionsValidationException>();
        return failure.Which.Failures.ToList();
    }

    [Fact]
    public async Task An_http_url_serves_https_once_a_certificate_is_configured()
    {
        var certificate = await _ca.IssueServerCertificateAsync();

        // RegistryServer listens on http://127.0.0.1:0 unless asked for TLS: as registry:2, the certificate decides.
        await using var server = await RegistryServer.StartAsync(Tls(certificate.CertificatePath, certificate.KeyPath));
        using var client = new HttpClient(_ca.CreateHandler()) { BaseAddress = server.BaseAddress };
        var response = await client.GetAsync("v2/");

        server.BaseAddress.Scheme.Should().Be("https");
        response.StatusCode.Should().Be(HttpStatusCode.OK);
    }

    [Fact]
    public async Task A_chain_file_lets_clients_that_trust_only_the_root_connect()
    {
        var certificate = await _ca.IssueServerCertificateAsync(viaIntermediate: true);

        await using var server = await RegistryServer.StartAsync(tls: _ca, certificate: certificate);
        using var client = server.CreateClient();
        var response = await client.GetAsync("v2/");

        response.StatusCode.Should().Be(HttpStatusCode.OK, "the server sends the intermediate from the chain file");
    }

    [Fact]
    public async Task One_file_holding_the_key_and_the_certificate_serves_for_both_settings()
    {
        var certificate = await _ca.IssueServerCertificateAsync();
        var combined = _temp.Sub("combined.pem");
        File.WriteAllText(combined, File.ReadAllText(certificate.KeyPath) + File.ReadAllText(certificate.CertificatePath));

        await using var server = await RegistryServer.StartAsync(tls: _ca, certificate: new ServerCertificateFiles(combined, combined));
        using var client = server.CreateClient();
        var response = await client.GetAsync("v2/");

        response.StatusCode.Should().Be(HttpStatusCode.OK);
    }

    [Fact]
    public async Task A_certificate_without_a_key_stops_start_up()
    {
        var certificate = await _ca.IssueServerCertificateAsync();

        var failures = await StartUpFailuresAsync(Tls(certificate.CertificatePath, null));

        failures.Should().ContainSingle().Which.Should().Contain("Registry:Http:Tls:Key is not");
    }

    [Fact]
    public async Task A_key_without_a_certificate_stops_start_up()
    {
        var certificate = await _ca.IssueServerCertificateAsync();

        var failures = await StartUpFailuresAsync(Tls(null, certificate.KeyPath));

        failures.Should().ContainSingle().Which.Should().Contain("Registry:Http:Tls:Certificate is not");
    }

    [Fact]
    public async Task Missing_certificate_and_key_files_are_both_reported_with_the_other_problems()
    {
        var settings = Tls(_temp.Sub("missing.crt"), _temp.Sub("missing.key"));
        settings["Registry:Uploads:MaxSessions"] = "0";

        var failures = await StartUpFailuresAsync(settings);

        failures.Should().HaveCount(3);
        failures.Should().Contain(f => f.Contains("Registry:Http:Tls:Certificate") && f.Contains("missing.crt") && f.Contains("does not exist"));
        failures.Should().Contain(f => f.Contains("Registry:Http:Tls:Key") && f.Contains("missing.key") && f.Contains("does not exist"));
        failures.Should().Contain(f => f.Contains("Registry:Uploads:MaxSessions"));
    }

    [Fact]
    public async Task A_key_that_is_not_the_certificates_stops_start_up()
    {
        var one = await _ca.IssueServerCertificateAsync();
        var other = await _ca.IssueServerCertificateAsync();

        var failures = await StartUpFailuresAsync(Tls(one.CertificatePath, other.KeyPath));

        failures.Should().ContainSingle().Which.Should().Contain("is not the private key of");
    }

    [Fact]
    public async Task Files_that_hold_no_pem_stop_start_up_naming_each()
    {
        File.WriteAllText(_temp.Sub("cert.txt"), "not a certificate");
        File.WriteAllText(_temp.Sub("key.txt"), "not a key");

        var failures = await StartUpFailuresAsync(Tls(_temp.Sub("cert.txt"), _temp.Sub("key.txt")));

        failures.Should().HaveCount(2);
        failures.Should().Contain(f => f.Contains("cert.txt") && f.Contains("holds no PEM certificate"));
        failures.Should().Contain(f => f.Contains("key.txt") && f.Contains("holds no PEM private key"));
    }

    [Fact]
    public async Task An_encrypted_key_stops_start_up_asking_for_it_unencrypted()
    {
        var certificate = await _ca.IssueServerCertificateAsync();
        var encrypted = _temp.Sub("encrypted.key");
        await Cli.RunAsync("openssl", ["pkey", "-in", certificate.KeyPath, "-aes256", "-passout", "pass:secret", "-out", encrypted]);

        var failures = await StartUpFailuresAsync(Tls(certificate.CertificatePath, encrypted));

        failures.Should().ContainSingle().Which.Should().Contain("is encrypted");
    }

    [Fact]
    public async Task A_certificate_only_for_client_authentication_stops_start_up()
    {
        var certificate = await _ca.IssueServerCertificateAsync(extendedKeyUsage: "clientAuth");

        var failures = await StartUpFailuresAsync(Tls(certificate.CertificatePath, certificate.KeyPath));

        failures.Should().ContainSingle().Which.Should().Contain("lacks serverAuth");
    }

    [Fact]
    public async Task An_https_url_without_a_certificate_stops_start_up()
    {
        var failures = await StartUpFailuresAsync(new Dictionary<string, string?> { ["urls"] = "https://127.0.0.1:0" });

        failures.Should().ContainSingle().Which.Should().Contain("https://127.0.0.1:0").And.Contain("Registry:Http:Tls:Certificate");
    }

    [Fact]
    public async Task Bad_tls_settings_create_no_storage()
    {
        var storage = Path.Combine(Path.GetTempPath(), $"registry-test-{Guid.NewGuid():N}");

        await StartUpFailuresAsync(Tls(_temp.Sub("missing.crt"), _temp.Sub("missing.key")), storage);

        await Task.Delay(TimeSpan.FromMilliseconds(500)); // storage is opened on another thread: give it the time to (wrongly) appear
        Directory.Exists(storage).Should().BeFalse();
    }
}
