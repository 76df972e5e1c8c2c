using System.Security.Cryptography;
using System.Text.RegularExpressions;
using Registry.Tests.Infrastructure;

namespace Registry.Tests.Gc;

/// <summary>Garbage collection runs and what they reclaim show in the Prometheus metrics.</summary>
public sealed class GcMetricsTests
{
    [Fact]
    public async Task A_run_is_counted_with_the_bytes_it_reclaimed_and_a_dry_run_is_not()
    {
        await using var server = await RegistryServer.StartAsync(Gc.Aggressive());
        using var client = server.CreateClient();
        var digest = await client.PushBlobAsync("gc/metrics", RandomNumberGenerator.GetBytes(4096));
        await client.DeleteAsync($"v2/gc/metrics/blobs/{digest}");

        await client.RunAsync(dryRun: true);
        var run = await client.RunAsync();

        run.AllBytesReclaimed().Should().BeGreaterThanOrEqualTo(4096);
        var metrics = await client.GetStringAsync("metrics");
        Regex.Match(metrics, @"registry_gc_runs_total\{[^}]*outcome=""completed""[^}]*\} (\d+)").Groups[1].Value
            .Should().Be("1", "the dry run changes nothing and is not counted");
        long.Parse(Regex.Match(metrics, @"registry_gc_reclaimed_bytes_total(?:\{[^}]*\})? (\d+)").Groups[1].Value)
            .Should().Be(run.AllBytesReclaimed());
    }
}
