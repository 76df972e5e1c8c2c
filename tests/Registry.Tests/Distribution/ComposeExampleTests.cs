using Registry.Api.Configuration.Distribution;
using Registry.Tests.Clients;
using Registry.Tests.Infrastructure;
using YamlDotNet.RepresentationModel;

namespace Registry.Tests.Distribution;

/// <summary>
/// The compose files of examples/compose/ (and the repository's own docker-compose.yml) are valid for
/// <c>docker-compose config</c> (Debian's docker-compose; no engine needed), and every registry:2 variable they use is
/// one this registry maps.
/// </summary>
public class ComposeExampleTests
{
    public static TheoryData<string> Files => new()
    {
        "examples/compose/plain/docker-compose.yml",
        "examples/compose/htpasswd/docker-compose.yml",
        "examples/compose/tls/docker-compose.yml",
        "examples/compose/webhook/docker-compose.yml",
        "docker-compose.yml",
    };

    private static string RepositoryRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Registry.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("Registry.sln not found above the test binaries");
    }

    /// <summary>The registry service's environment as docker-compose resolves it.</summary>
    private static async Task<Dictionary<string, string?>> RegistryEnvironmentAsync(string file)
    {
        var result = await Cli.RunAsync("docker-compose", ["-f", Path.Combine(RepositoryRoot(), file), "config"]);
        var yaml = new YamlStream();
        yaml.Load(new StringReader(result.Stdout));
        var services = (YamlMappingNode)((YamlMappingNode)yaml.Documents[0].RootNode)["services"];
        var registry = (YamlMappingNode)services["registry"];
        var environment = new Dictionary<string, string?>(StringComparer.Ordinal);
        if (registry.Children.TryGetValue("environment", out var node))
            foreach (var (key, value) in ((YamlMappingNode)node).Children)
                environment[((YamlScalarNode)key).Value!] = ((YamlScalarNode)value).Value;
        return environment;
    }

    [Theory]
    [MemberData(nameof(Files))]
    public async Task A_compose_file_is_valid_for_docker_compose_config(string file)
    {
        var result = await Cli.TryRunAsync("docker-compose", ["-f", Path.Combine(RepositoryRoot(), file), "config", "--quiet"]);

        result.ExitCode.Should().Be(0, result.ToString());
    }

    [Theory]
    [MemberData(nameof(Files))]
    public async Task Every_registry2_variable_of_a_compose_file_is_one_the_registry_maps(string file)
    {
        var environment = await RegistryEnvironmentAsync(file);

        var mapped = DistributionSettings.Read([], environment);

        mapped.Errors.Should().BeEmpty();
        mapped.Ignored.Should().BeEmpty();
    }

    [Theory]
    [InlineData("examples/compose/plain/docker-compose.yml")]
    [InlineData("examples/compose/webhook/docker-compose.yml")]
    public async Task The_settings_of_a_compose_file_start_the_registry(string file)
    {
        var environment = await RegistryEnvironmentAsync(file);
        var ours = environment.Where(e => e.Key.StartsWith("Registry__", StringComparison.Ordinal))
            .ToDictionary(e => e.Key.Replace("__", ":"), e => e.Value);

        await using var server = await RegistryServer.StartAsync(ours, distributionEnvironment: environment);

        using var client = server.CreateClient();
        (await client.GetAsync("v2/")).StatusCode.Should().Be(System.Net.HttpStatusCode.OK);
    }
}
