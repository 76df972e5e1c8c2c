using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using Registry.Tests.Infrastructure;

namespace Registry.Tests.Gc;

/// <summary>`Registry.Api gc [--dry-run]`: one run on storage no server is using.</summary>
public sealed class GcCommandTests
{
    internal static async Task<(int ExitCode, string Output)> GcAsync(string storage, params string[] more)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "Registry.Api.dll");
        var start = new ProcessStartInfo("dotnet", [dll, "gc", .. more, $"--Registry:Storage:Path={storage}",
            "--Registry:Gc:GracePeriod=00:00:00"]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, await output + await error);
    }

    private static async Task<(string Storage, string Layer)> StoppedStorageWithGarbageAsync()
    {
        var storage = Directory.CreateTempSubdirectory("gc-command-").FullName;
        await using var server = await RegistryServer.StartAsync(Gc.Aggressive(), storagePath: storage);
        using var client = server.CreateClient();
        var layer = RandomNumberGenerator.GetBytes(1000);
        var image = await client.PushImageAsync("gc/command", "v1", layer);
        await client.DeleteAsync($"v2/gc/command/manifests/{image.Digest}");
        await server.StopAsync();
        return (storage, Http.Sha256(layer));
    }

    [Fact]
    public async Task Gc_collects_stopped_storage_and_prints_the_report()
    {
        var (storage, layer) = await StoppedStorageWithGarbageAsync();
        try
        {
            var (exitCode, output) = await GcAsync(storage);

            exitCode.Should().Be(0, output);
            // The report is the one JSON line; log lines may come before or after it.
            using var report = JsonDocument.Parse(output.Split('\n').Single(l => l.StartsWith("{\"dryRun\"")));
            report.RootElement.GetProperty("deleted").EnumerateArray().Select(e => e.GetString()).Should().Contain($"blob {layer}");
            Gc.Stored(storage, layer).Should().BeFalse();
        }
        finally
        {
            Directory.Delete(storage, recursive: true);
        }
    }

    [Fact]
    public async Task Gc_dry_run_deletes_nothing()
    {
        var (storage, layer) = await StoppedStorageWithGarbageAsync();
        try
        {
            var (exitCode, output) = await GcAsync(storage, "--dry-run");

            exitCode.Should().Be(0, output);
            output.Should().Contain($"blob {layer}");
            Gc.Stored(storage, layer).Should().BeTrue();
        }
        finally
        {
            Directory.Delete(storage, recursive: true);
        }
    }

    [Fact]
    public async Task Gc_refuses_storage_that_a_server_is_using()
    {
        await using var server = await RegistryServer.StartAsync(Gc.Aggressive());
        using var client = server.CreateClient();
        await client.PushBlobAsync("gc/busy", RandomNumberGenerator.GetBytes(100));

        var (exitCode, output) = await GcAsync(server.StoragePath!);

        exitCode.Should().Be(2);
        output.Should().Contain("POST /v2/_registry/gc/runs");
        (await client.GetAsync("v2/")).StatusCode.Should().Be(HttpStatusCode.OK);
    }
}
