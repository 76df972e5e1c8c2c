using System.Diagnostics;
using Registry.Bench;
using Registry.Tests.Infrastructure;

namespace Registry.Tests.Reliability;

/// <summary>
/// The short form of the soak (issue #5): the benchmark's mixed load at concurrency 64 for a few seconds with zero
/// errors. The long form (10 minutes) is documented in bench/README.md.
/// </summary>
public class SoakTests
{
    [Fact]
    public async Task Mixed_load_at_concurrency_64_has_no_errors()
    {
        await using var server = await RegistryServer.StartAsync(new Dictionary<string, string?>());
        var soak = new Soak(server.BaseAddress, TimeSpan.FromSeconds(8), 64, Environment.ProcessId)
        {
            SampleEvery = TimeSpan.FromSeconds(2),
        };

        var result = await soak.RunAsync(CancellationToken.None);

        result.FirstErrors.Should().BeEmpty();
        result.Errors.Should().Be(0);
        result.Operations.Should().BeGreaterThan(500);
        result.ByKind.Keys.Should().BeEquivalentTo(
            "manifest.head", "manifest.get", "blob.get", "blob.push", "blob.chunked", "manifest.push", "tags.list",
            "catalog", "delete");
    }
}
