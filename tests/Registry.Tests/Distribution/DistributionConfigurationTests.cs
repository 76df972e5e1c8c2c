using System.Net;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Registry.Api.Configuration;
using Registry.Api.Configuration.Distribution;
using Registry.Tests.Infrastructure;

namespace Registry.Tests.Distribution;

/// <summary>registry:2's environment variables and config.yml, mapped onto our settings (README "Migrating from registry:2").</summary>
public class DistributionConfigurationTests
{
    private static DistributionSettings FromEnvironment(params (string Name, string Value)[] variables) =>
        DistributionSettings.Read([], variables.ToDictionary(v => v.Name, v => (string?)v.Value));

    [Theory]
    [InlineData(":5000", "http://0.0.0.0:5000")]
    [InlineData("127.0.0.1:5001", "http://127.0.0.1:5001")]
    [InlineData("0.0.0.0:443", "http://0.0.0.0:443")]
    [InlineData("[::1]:5000", "http://[::1]:5000")]
    [InlineData("localhost:8080", "http://localhost:8080")]
    public void REGISTRY_HTTP_ADDR_becomes_the_listen_url(string addr, string url)
    {
        FromEnvironment(("REGISTRY_HTTP_ADDR", addr)).Settings["urls"].Should().Be(url);
    }

    [Fact]
    public void REGISTRY_HTTP_ADDR_with_a_tls_certificate_listens_with_https()
    {
        var settings = FromEnvironment(("REGISTRY_HTTP_ADDR", ":5000"), ("REGISTRY_HTTP_TLS_CERTIFICATE", "/certs/domain.crt"),
            ("REGISTRY_HTTP_TLS_KEY", "/certs/domain.key")).Settings;

        settings["urls"].Should().Be("https://0.0.0.0:5000");
        settings["Registry:Http:Tls:Certificate"].Should().Be("/certs/domain.crt");
        settings["Registry:Http:Tls:Key"].Should().Be("/certs/domain.key");
    }

    [Theory]
    [InlineData("5000")]
    [InlineData("host:port")]
    [InlineData("::1:5000")]
    public void A_REGISTRY_HTTP_ADDR_that_is_not_host_port_is_an_error(string addr)
    {
        FromEnvironment(("REGISTRY_HTTP_ADDR", addr)).Errors.Should().ContainSingle().Which.Should().Contain("REGISTRY_HTTP_ADDR");
    }

    [Theory]
    [InlineData("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", "/var/lib/registry", "Registry:Storage:Path", "/var/lib/registry")]
    [InlineData("REGISTRY_STORAGE_DELETE_ENABLED", "true", "Registry:Deletion:Enabled", "true")]
    [InlineData("REGISTRY_STORAGE_DELETE_ENABLED", "false", "Registry:Deletion:Enabled", "false")]
    [InlineData("REGISTRY_STORAGE_DELETE_ENABLED", "1", "Registry:Deletion:Enabled", "true")]
    [InlineData("REGISTRY_AUTH", "htpasswd", "Registry:Auth:Mode", "htpasswd")]
    [InlineData("REGISTRY_AUTH_HTPASSWD_REALM", "Registry Realm", "Registry:Auth:Htpasswd:Realm", "Registry Realm")]
    [InlineData("REGISTRY_AUTH_HTPASSWD_PATH", "/auth/htpasswd", "Registry:Auth:Htpasswd:Path", "/auth/htpasswd")]
    [InlineData("REGISTRY_AUTH_HTPASSWD_PATH", "/auth/htpasswd", "Registry:Auth:Mode", "htpasswd")]
    [InlineData("REGISTRY_HTTP_HOST", "https://registry.example.com", "Registry:Http:PublicUrl", "https://registry.example.com")]
    [InlineData("REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_ENABLED", "false", "Registry:Uploads:PurgeEnabled", "false")]
    [InlineData("REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_DRYRUN", "true", "Registry:Uploads:PurgeDryRun", "true")]
    [InlineData("REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_AGE", "168h", "Registry:Uploads:Expiry", "7.00:00:00")]
    [InlineData("REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_INTERVAL", "24h0m0s", "Registry:Uploads:PurgeInterval", "1.00:00:00")]
    public void A_registry2_variable_maps_onto_our_setting(string variable, string value, string setting, string expected)
    {
        var result = FromEnvironment((variable, value));

        result.Errors.Should().BeEmpty();
        result.Settings[setting].Should().Be(expected);
    }

    [Theory]
    [InlineData("168h", 7 * 24 * 3600_000L)]
    [InlineData("24h0m0s", 24 * 3600_000L)]
    [InlineData("1h30m", 90 * 60_000L)]
    [InlineData("1.5h", 90 * 60_000L)]
    [InlineData("10m", 600_000L)]
    [InlineData("30s", 30_000L)]
    [InlineData("500ms", 500L)]
    [InlineData("2h45m0.5s", (2 * 3600 + 45 * 60) * 1000L + 500)]
    [InlineData("0", 0L)]
    public void Go_durations_parse(string text, long milliseconds)
    {
        GoDuration.TryParse(text, out var duration).Should().BeTrue();
        duration.Should().Be(TimeSpan.FromMilliseconds(milliseconds));
    }

    [Theory]
    [InlineData("")]
    [InlineData("h")]
    [InlineData("10")]
    [InlineData("10x")]
    [InlineData("5 days")]
    [InlineData("1d")]
    public void Strings_that_are_not_go_durations_do_not_parse(string text)
    {
        GoDuration.TryParse(text, out _).Should().BeFalse();
    }

    [Theory]
    [InlineData("REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_AGE", "a week")]
    [InlineData("REGISTRY_STORAGE_DELETE_ENABLED", "maybe")]
    [InlineData("REGISTRY_AUTH", "silly")]
    [InlineData("REGISTRY_AUTH_TOKEN_REALM", "https://auth.example.com/token")]
    [InlineData("REGISTRY_STORAGE_S3_BUCKET", "images")]
    [InlineData("REGISTRY_HTTP_NET", "unix")]
    public void A_registry2_setting_that_cannot_be_honoured_is_an_error_not_a_warning(string variable, string value)
    {
        var result = FromEnvironment((variable, value));

        result.Errors.Should().ContainSingle().Which.Should().Contain(variable);
        result.Ignored.Should().BeEmpty();
    }

    [Fact]
    public void Variables_with_no_equivalent_are_listed_for_the_warning()
    {
        var result = FromEnvironment(("REGISTRY_HTTP_SECRET", "s3cr3t"), ("REGISTRY_LOG_LEVEL", "debug"),
            ("REGISTRY_STORAGE_DELETE_ENABLED", "true"));

        result.Ignored.Should().BeEquivalentTo("REGISTRY_HTTP_SECRET", "REGISTRY_LOG_LEVEL");
        result.Errors.Should().BeEmpty();
    }

    [Fact]
    public void REGISTRY_variables_outside_registry2_s_sections_are_neither_mapped_nor_warned_about()
    {
        var result = FromEnvironment(("REGISTRY_STACK_DIR", "/work/stack"), ("REGISTRY_TEST_URL", "http://127.0.0.1:5000"),
            ("REGISTRY_GC_STRESS_SECONDS", "600"), ("REGISTRY_LOG_LEVEL", "debug"));

        result.Ignored.Should().Equal("REGISTRY_LOG_LEVEL");
        result.Settings.Should().BeEmpty();
        result.Errors.Should().BeEmpty();
    }

    [Fact]
    public void Our_own_double_underscore_variables_are_not_taken_for_registry2_ones()
    {
        FromEnvironment(("REGISTRY__STORAGE__PATH", "/srv")).IsEmpty.Should().BeTrue();
    }

    // ---- config.yml ----

    private const string ConfigYaml = """
        version: 0.1
        log:
          fields:
            service: registry
        storage:
          cache:
            blobdescriptor: inmemory
          filesystem:
            rootdirectory: /var/lib/registry
          delete:
            enabled: true
          maintenance:
            uploadpurging:
              enabled: true
              age: 72h
              interval: 12h
              dryrun: false
        http:
          addr: 127.0.0.1:5005
          headers:
            X-Content-Type-Options: [nosniff]
        auth:
          htpasswd:
            realm: basic-realm
            path: /auth/htpasswd
        """;

    private static string WriteConfig(string yaml)
    {
        var path = Path.Combine(Directory.CreateTempSubdirectory("registry2-config-").FullName, "config.yml");
        File.WriteAllText(path, yaml);
        return path;
    }

    [Fact]
    public void A_config_yml_given_with_config_is_read_for_the_same_keys()
    {
        var file = WriteConfig(ConfigYaml);

        var result = DistributionSettings.Read(["--config", file], new Dictionary<string, string?>());

        result.Errors.Should().BeEmpty();
        result.Settings.Should().Contain(new Dictionary<string, string?>
        {
            ["urls"] = "http://127.0.0.1:5005",
            ["Registry:Storage:Path"] = "/var/lib/registry",
            ["Registry:Deletion:Enabled"] = "true",
            ["Registry:Uploads:PurgeEnabled"] = "true",
            ["Registry:Uploads:Expiry"] = "3.00:00:00",
            ["Registry:Uploads:PurgeInterval"] = "12:00:00",
            ["Registry:Uploads:PurgeDryRun"] = "false",
            ["Registry:Auth:Mode"] = "htpasswd",
            ["Registry:Auth:Htpasswd:Realm"] = "basic-realm",
            ["Registry:Auth:Htpasswd:Path"] = "/auth/htpasswd",
        });
    }

    [Fact]
    public void Unknown_config_yml_keys_are_listed_by_their_path()
    {
        var result = DistributionSettings.Read(["--config", WriteConfig(ConfigYaml)], new Dictionary<string, string?>());

        result.Ignored.Should().BeEquivalentTo("log.fields.service", "storage.cache.blobdescriptor",
            "http.headers.X-Content-Type-Options");
    }

    [Fact]
    public void Environment_variables_override_the_config_yml_as_in_registry2()
    {
        var result = DistributionSettings.Read([$"--config={WriteConfig(ConfigYaml)}"],
            new Dictionary<string, string?> { ["REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY"] = "/srv/other" });

        result.Settings["Registry:Storage:Path"].Should().Be("/srv/other");
    }

    [Fact]
    public void A_config_yml_without_storage_delete_keeps_registry2s_default_of_no_deletion()
    {
        var result = DistributionSettings.Read(["--config", WriteConfig("version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /r\n")],
            new Dictionary<string, string?>());

        result.Settings["Registry:Deletion:Enabled"].Should().Be("false");
    }

    [Fact]
    public void REGISTRY_CONFIGURATION_PATH_names_the_config_yml_when_config_is_not_given()
    {
        var result = DistributionSettings.Read([],
            new Dictionary<string, string?> { ["REGISTRY_CONFIGURATION_PATH"] = WriteConfig(ConfigYaml) });

        result.Settings["Registry:Storage:Path"].Should().Be("/var/lib/registry");
    }

    [Fact]
    public void A_config_yml_with_another_storage_driver_is_an_error()
    {
        var result = DistributionSettings.Read(["--config", WriteConfig("version: 0.1\nstorage:\n  s3:\n    bucket: images\n")],
            new Dictionary<string, string?>());

        result.Errors.Should().ContainSingle().Which.Should().Contain("storage.s3.bucket");
    }

    [Fact]
    public void A_missing_config_yml_is_an_error()
    {
        DistributionSettings.Read(["--config", "/nonexistent/config.yml"], new Dictionary<string, string?>())
            .Errors.Should().ContainSingle().Which.Should().Contain("/nonexistent/config.yml");
    }

    // ---- on the running server ----

    [Fact]
    public async Task The_server_binds_the_registry2_variables_to_its_options()
    {
        var htpasswd = Path.Combine(Directory.CreateTempSubdirectory("registry-dropin-").FullName, "htpasswd");
        await Registry.Tests.Auth.AuthServer.AddUserAsync(htpasswd, "admin", "admin-pw", create: true);
        await using var server = await RegistryServer.StartAsync(distributionEnvironment: new Dictionary<string, string?>
        {
            ["REGISTRY_STORAGE_DELETE_ENABLED"] = "false",
            ["REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_AGE"] = "168h",
            ["REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_INTERVAL"] = "30m",
            ["REGISTRY_AUTH"] = "htpasswd",
            ["REGISTRY_AUTH_HTPASSWD_REALM"] = "Drop-in Realm",
            ["REGISTRY_AUTH_HTPASSWD_PATH"] = htpasswd,
        });

        var options = server.Services.GetRequiredService<IOptions<RegistryOptions>>().Value;
        options.Deletion.Enabled.Should().BeFalse();
        options.Uploads.Expiry.Should().Be(TimeSpan.FromDays(7));
        options.Uploads.PurgeInterval.Should().Be(TimeSpan.FromMinutes(30));
        options.Auth.Mode.Should().Be(Registry.Api.Auth.AuthMode.Htpasswd);
        options.Auth.Htpasswd.Path.Should().Be(htpasswd);
        using var anonymous = server.CreateClient();
        var challenge = await anonymous.GetAsync("v2/");
        challenge.StatusCode.Should().Be(System.Net.HttpStatusCode.Unauthorized);
        challenge.Headers.WwwAuthenticate.ToString().Should().Be("Basic realm=\"Drop-in Realm\"");
        using var admin = server.CreateClient();
        admin.DefaultRequestHeaders.Authorization = Registry.Tests.Auth.AuthServer.Basic("admin", "admin-pw");
        (await admin.GetAsync("v2/")).StatusCode.Should().Be(System.Net.HttpStatusCode.OK);
    }

    [Fact]
    public async Task REGISTRY_HTTP_TLS_CERTIFICATE_and_KEY_serve_https_on_the_address()
    {
        using var ca = await TestCertificateAuthority.CreateAsync();
        var files = await ca.IssueServerCertificateAsync();
        await using var server = await RegistryServer.StartAsync(distributionEnvironment: new Dictionary<string, string?>
        {
            ["REGISTRY_HTTP_TLS_CERTIFICATE"] = files.CertificatePath,
            ["REGISTRY_HTTP_TLS_KEY"] = files.KeyPath,
        });
        var address = server.Services.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>()
            .Features.Get<Microsoft.AspNetCore.Hosting.Server.Features.IServerAddressesFeature>()!.Addresses.Single();
        using var client = new HttpClient(ca.CreateHandler()) { BaseAddress = new Uri(address.Replace("http://", "https://") + "/") };

        address.Should().StartWith("https://", "registry:2's TLS variables make the listen address a TLS one");
        (await client.GetAsync("v2/")).StatusCode.Should().Be(System.Net.HttpStatusCode.OK);
    }

    [Fact]
    public async Task REGISTRY_STORAGE_DELETE_ENABLED_false_makes_deletes_405_UNSUPPORTED()
    {
        await using var server = await RegistryServer.StartAsync(distributionEnvironment: new Dictionary<string, string?>
        {
            ["REGISTRY_STORAGE_DELETE_ENABLED"] = "false",
        });
        using var client = server.CreateClient();
        var (_, digest) = await Infrastructure.Http.PushImageAsync(client, "drop-in/app", "v1");

        var response = await client.DeleteAsync($"v2/drop-in/app/manifests/{digest}");

        await Conformance.Oci.ShouldBeErrorAsync(response, HttpStatusCode.MethodNotAllowed, "UNSUPPORTED");
    }

    [Fact]
    public async Task Our_own_setting_wins_over_the_registry2_variable()
    {
        await using var server = await RegistryServer.StartAsync(
            new Dictionary<string, string?> { ["Registry:Deletion:Enabled"] = "true" },
            distributionEnvironment: new Dictionary<string, string?> { ["REGISTRY_STORAGE_DELETE_ENABLED"] = "false" });

        server.Services.GetRequiredService<IOptions<RegistryOptions>>().Value.Deletion.Enabled.Should().BeTrue();
    }

    [Fact]
    public async Task The_registry2_variable_wins_over_the_config_yml()
    {
        var file = WriteConfig("version: 0.1\nstorage:\n  delete:\n    enabled: true\n");
        await using var server = await RegistryServer.StartAsync(args: ["--config", file],
            distributionEnvironment: new Dictionary<string, string?> { ["REGISTRY_STORAGE_DELETE_ENABLED"] = "false" });

        server.Services.GetRequiredService<IOptions<RegistryOptions>>().Value.Deletion.Enabled.Should().BeFalse();
    }

    [Fact]
    public async Task A_registry2_setting_that_cannot_be_honoured_stops_start_up()
    {
        var start = () => RegistryServer.StartAsync(distributionEnvironment: new Dictionary<string, string?>
        {
            ["REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_AGE"] = "a week",
        });

        await start.Should().ThrowAsync<OptionsValidationException>().WithMessage("*REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_AGE*");
    }
}
