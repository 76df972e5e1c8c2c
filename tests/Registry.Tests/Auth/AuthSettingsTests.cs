using Microsoft.Extensions.Options;
using Registry.Tests.Infrastructure;

namespace Registry.Tests.Auth;

/// <summary>Bad access-control settings stop the start with every problem listed; none opens the registry.</summary>
public sealed class AuthSettingsTests
{
    [Fact]
    public async Task A_misspelt_mode_stops_the_start_instead_of_leaving_the_registry_open()
    {
        var start = () => RegistryServer.StartAsync(new Dictionary<string, string?> { ["Registry:Auth:Mode"] = "htpassword" });

        await start.Should().ThrowAsync<InvalidOperationException>().WithMessage("*Mode*");
    }

    [Fact]
    public async Task Every_problem_of_the_auth_settings_is_reported_at_once()
    {
        var start = () => RegistryServer.StartAsync(new Dictionary<string, string?>
        {
            ["Registry:Auth:Mode"] = "htpasswd",
            ["Registry:Auth:Htpasswd:Path"] = "/nonexistent/htpasswd",
            ["Registry:Auth:Rules:0:Repositories:0"] = "Team/**",
            ["Registry:Auth:Rules:0:Actions:0"] = "write",
            ["Registry:Auth:Rules:1:Repositories:0"] = "public/**",
            ["Registry:Auth:Rules:1:Anonymous"] = "true",
            ["Registry:Auth:Rules:1:Actions:0"] = "push",
            ["Registry:Auth:Rules:1:Groups:0"] = "nobody",
        });

        var thrown = await start.Should().ThrowAsync<OptionsValidationException>();
        thrown.Which.Failures.Should().Contain(f => f.Contains("no file at '/nonexistent/htpasswd'"))
            .And.Contain(f => f.Contains("invalid pattern 'Team/**'"))
            .And.Contain(f => f.Contains("unknown action 'write'"))
            .And.Contain(f => f.Contains("applies to nobody"))
            .And.Contain(f => f.Contains("anonymous callers may only pull"))
            .And.Contain(f => f.Contains("no group 'nobody'"));
    }

    [Fact]
    public async Task An_external_issuer_needs_its_realm()
    {
        var jwks = Path.GetTempFileName();
        await File.WriteAllTextAsync(jwks, """{"keys":[]}""");
        var start = () => RegistryServer.StartAsync(new Dictionary<string, string?>
        {
            ["Registry:Auth:Mode"] = "token",
            ["Registry:Auth:Token:Jwks"] = jwks,
        });

        var thrown = await start.Should().ThrowAsync<OptionsValidationException>();
        thrown.Which.Failures.Should().Contain(f => f.Contains("Registry:Auth:Token:Realm"));
        File.Delete(jwks);
    }

    [Fact]
    public async Task Replicas_sharing_a_database_must_share_the_token_signing_key()
    {
        var htpasswd = Path.GetTempFileName();
        var start = () => RegistryServer.StartAsync(new Dictionary<string, string?>
        {
            ["Registry:Auth:Mode"] = "token",
            ["Registry:Auth:Htpasswd:Path"] = htpasswd,
            ["Registry:Metadata:Kind"] = "postgres",
            ["Registry:Metadata:ConnectionString"] = "Host=127.0.0.1;Port=1;Database=registry;Username=registry",
        });

        var thrown = await start.Should().ThrowAsync<OptionsValidationException>();
        thrown.Which.Failures.Should().ContainSingle(f => f.Contains("Registry:Auth:Token:SigningKey must name a key file every replica shares"));
        File.Delete(htpasswd);
    }
}
