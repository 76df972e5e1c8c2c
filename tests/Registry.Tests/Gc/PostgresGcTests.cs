using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Registry.Api.Storage;
using Registry.Storage.Metadata;
using Registry.Tests.Conformance;
using Registry.Tests.Infrastructure;
using Registry.Tests.Stack;

namespace Registry.Tests.Gc;

/// <summary>
/// Garbage collection with <c>Registry:Metadata:Kind=postgres</c>, on one replica and on two sharing one database and
/// one storage folder: one run at a time across replicas (the <c>gc</c> lease), and cleanup policies.
/// </summary>
public sealed class PostgresGcTests
{
    private static async Task<Dictionary<string, string?>> PostgresAsync(params (string Key, string? Value)[] more)
    {
        var settings = Gc.Aggressive(more);
        settings["Registry:Metadata:Kind"] = "postgres";
        settings["Registry:Metadata:ConnectionString"] = await PostgresStack.CreateDatabaseAsync();
        return settings;
    }

    /// <summary>A replica whose runs stay "running" until <paramref name="gate"/> completes.</summary>
    private static Task<RegistryServer> HeldReplicaAsync(Dictionary<string, string?> settings, string storage, Task gate) =>
        RegistryServer.StartAsync(settings, storage, services: s => s.AddSingleton<IGarbageCollectionStore>(provider =>
            SweepRaceTests.HeldStore.Wrap(provider.GetRequiredService<MetadataBackend>().Store, gate)));

    /// <summary>A replica each of whose runs takes at least 500 ms.</summary>
    private static Task<RegistryServer> SlowReplicaAsync(Dictionary<string, string?> settings, string storage) =>
        RegistryServer.StartAsync(settings, storage, services: s => s.AddSingleton<IGarbageCollectionStore>(provider =>
            SlowStore.Wrap(provider.GetRequiredService<MetadataBackend>().Store, TimeSpan.FromMilliseconds(500))));

    /// <summary>A store whose repository listing (the first step of a run) takes at least a given time.</summary>
    public class SlowStore : System.Reflection.DispatchProxy
    {
        private IGarbageCollectionStore _inner = null!;
        private TimeSpan _delay;

        public static IGarbageCollectionStore Wrap(IGarbageCollectionStore inner, TimeSpan delay)
        {
            var proxy = Create<IGarbageCollectionStore, SlowStore>();
            var slow = (SlowStore)(object)proxy;
            slow._inner = inner;
            slow._delay = delay;
            return proxy;
        }

        protected override object? Invoke(System.Reflection.MethodInfo? method, object?[]? args)
        {
            if (method!.Name == nameof(IGarbageCollectionStore.ListAllRepositoriesAsync))
                return ListSlowlyAsync((CancellationToken)args![0]!);
            return method.Invoke(_inner, args);
        }

        private async ValueTask<IReadOnlyList<Registry.Storage.Model.RepositoryName>> ListSlowlyAsync(CancellationToken ct)
        {
            await Task.Delay(_delay, ct);
            return await _inner.ListAllRepositoriesAsync(ct);
        }
    }

    private static async Task<JsonElement[]> RunsAsync(HttpClient client) =>
        (await client.GetJsonAsync("v2/_registry/gc/runs")).GetProperty("runs").EnumerateArray().ToArray();

    /// <summary>A blob recorded in the metadata that nothing links or references: what a sweep takes.</summary>
    private static async Task<(byte[] Data, Registry.Storage.Model.Digest Digest)> UnreferencedBlobAsync(HttpClient client)
    {
        var data = RandomNumberGenerator.GetBytes(4000);
        var digest = await client.PushBlobAsync("pg/race-source", data);
        (await client.DeleteAsync($"v2/pg/race-source/blobs/{digest}")).StatusCode.Should().Be(HttpStatusCode.Accepted);
        return (data, Registry.Storage.Model.Digest.Parse(digest));
    }

    [Fact]
    public async Task A_push_on_one_replica_of_content_another_replica_is_sweeping_waits_and_stores_the_content_again()
    {
        var settings = await PostgresAsync();
        var storage = Directory.CreateTempSubdirectory("pg-gc-").FullName;
        try
        {
            await using var a = await RegistryServer.StartAsync(settings, storage);
            await using var b = await RegistryServer.StartAsync(settings, storage);
            using var clientA = a.CreateClient();
            var (data, digest) = await UnreferencedBlobAsync(clientA);
            var sweeper = b.Services.GetRequiredService<Registry.Storage.Gc.IBlobPins>();
            (await sweeper.BeginSweepAsync([digest], default)).Should().ContainSingle();

            var push = clientA.PostAsync($"v2/pg/race/blobs/uploads/?digest={digest}", new ByteArrayContent(data));
            await Task.Delay(300);
            // What B's collector does with a digest it took: tombstone, delete the file, clear, let go.
            var store = b.Services.GetRequiredService<IGarbageCollectionStore>();
            (await store.TombstoneBlobsAsync([digest], DateTimeOffset.UtcNow, default)).Should().ContainSingle();
            await b.Services.GetRequiredService<Registry.Storage.Blobs.IBlobStore>().DeleteAsync(digest, default);
            await store.ClearTombstonesAsync([digest], default);
            await sweeper.EndSweepAsync([digest], default);

            (await push).StatusCode.Should().Be(HttpStatusCode.Created);
            (await clientA.GetByteArrayAsync($"v2/pg/race/blobs/{digest}")).Should().Equal(data);
        }
        finally
        {
            Directory.Delete(storage, recursive: true);
        }
    }

    [Fact]
    public async Task A_run_on_one_replica_leaves_alone_content_a_push_on_the_other_is_using()
    {
        var settings = await PostgresAsync();
        var storage = Directory.CreateTempSubdirectory("pg-gc-").FullName;
        try
        {
            await using var a = await RegistryServer.StartAsync(settings, storage);
            await using var b = await RegistryServer.StartAsync(settings, storage);
            using var clientB = b.CreateClient();
            var (_, digest) = await UnreferencedBlobAsync(clientB);
            await using var push = await a.Services.GetRequiredService<Registry.Storage.Gc.IBlobPins>().PinAsync(digest, default);

            var run = await clientB.RunAsync();

            run.Report().GetProperty("skippedInUse").GetInt32().Should().Be(1);
            Gc.Stored(storage, digest.ToString()).Should().BeTrue();
        }
        finally
        {
            Directory.Delete(storage, recursive: true);
        }
    }

    [Fact]
    public async Task A_run_asked_of_a_second_replica_while_the_first_runs_one_is_429_pointing_at_the_running_one()
    {
        var settings = await PostgresAsync();
        var storage = Directory.CreateTempSubdirectory("pg-gc-").FullName;
        var gate = new TaskCompletionSource();
        try
        {
            await using var a = await HeldReplicaAsync(settings, storage, gate.Task);
            await using var b = await RegistryServer.StartAsync(settings, storage);
            using var clientA = a.CreateClient();
            using var clientB = b.CreateClient();
            var first = await clientA.PostAsync("v2/_registry/gc/runs", null);

            var second = await clientB.PostAsync("v2/_registry/gc/runs", null);
            gate.SetResult();

            second.StatusCode.Should().Be(HttpStatusCode.TooManyRequests);
            (await second.ErrorCodeAsync()).Should().Be("TOOMANYREQUESTS");
            second.Headers.Location.Should().Be(first.Headers.Location);
            await clientB.WaitForRunAsync(first.Headers.Location!.ToString());
        }
        finally
        {
            gate.TrySetResult();
            Directory.Delete(storage, recursive: true);
        }
    }

    [Fact]
    public async Task A_replica_that_starts_leaves_the_run_another_replica_is_running_alone()
    {
        var settings = await PostgresAsync();
        var storage = Directory.CreateTempSubdirectory("pg-gc-").FullName;
        var gate = new TaskCompletionSource();
        try
        {
            await using var a = await HeldReplicaAsync(settings, storage, gate.Task);
            using var clientA = a.CreateClient();
            var run = await clientA.PostAsync("v2/_registry/gc/runs", null);

            await using var b = await RegistryServer.StartAsync(settings, storage);
            using var clientB = b.CreateClient();
            var statusAfterStart = (await clientB.GetJsonAsync(run.Headers.Location!.ToString().TrimStart('/')))
                .GetProperty("status").GetString();
            gate.SetResult();

            statusAfterStart.Should().Be("running");
            (await clientB.WaitForRunAsync(run.Headers.Location!.ToString())).GetProperty("status").GetString()
                .Should().Be("succeeded");
        }
        finally
        {
            gate.TrySetResult();
            Directory.Delete(storage, recursive: true);
        }
    }

    [Fact]
    public async Task Scheduled_runs_on_two_replicas_never_overlap()
    {
        // A grace period so that the runs leave the pushes' blobs alone between their upload and their manifest.
        var settings = await PostgresAsync(("Registry:Gc:Interval", "00:00:00.200"), ("Registry:Uploads:PurgeInterval", "00:00:00.200"),
            ("Registry:Gc:GracePeriod", "01:00:00"));
        var storage = Directory.CreateTempSubdirectory("pg-gc-").FullName;
        try
        {
            // Each run lasts longer than the interval, so each replica's schedule comes due while the other's run goes on.
            await using var a = await SlowReplicaAsync(settings, storage);
            await using var b = await SlowReplicaAsync(settings, storage);
            using var clientA = a.CreateClient();
            using var clientB = b.CreateClient();
            for (var i = 0; i < 20; i++)
            {
                await clientA.PushImageAsync("pg/scheduled", $"v{i}");
                await clientB.DeleteAsync($"v2/pg/scheduled/manifests/v{i}");
            }
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while ((await RunsAsync(clientA)).Count(r => r.GetProperty("status").GetString() == "succeeded") < 4
                   && DateTime.UtcNow < deadline)
                await Task.Delay(100);
            await a.StopAsync();
            await b.StopAsync();

            await using var reader = await RegistryServer.StartAsync(new Dictionary<string, string?>(settings)
                { ["Registry:Gc:Interval"] = "00:00:00" }, storage);
            using var client = reader.CreateClient();
            var runs = (await RunsAsync(client)).Where(r => r.GetProperty("status").GetString() == "succeeded")
                .Select(r => (Start: r.GetProperty("startedAt").GetDateTimeOffset(), End: r.GetProperty("finishedAt").GetDateTimeOffset()))
                .OrderBy(r => r.Start).ToList();

            runs.Should().HaveCountGreaterThanOrEqualTo(4);
            runs.Zip(runs.Skip(1)).Should().OnlyContain(pair => pair.First.End <= pair.Second.Start,
                "a scheduled run starts only after the one before it (on either replica) has finished");
        }
        finally
        {
            Directory.Delete(storage, recursive: true);
        }
    }

    [Fact]
    public async Task A_policy_dry_run_lists_exactly_what_the_real_run_on_the_same_data_then_deletes_in_postgres()
    {
        var repo = RegistryFixture.NewRepo("pgpolicy");
        await using var server = await RegistryServer.StartAsync(await PostgresAsync(
            ("Registry:Gc:UntaggedAfter", "00:00:00"),
            ("Registry:Gc:Policies:0:Repositories:0", repo),
            ("Registry:Gc:Policies:0:Tags:0", "pr-*"),
            ("Registry:Gc:Policies:0:KeepLast", "2"),
            ("Registry:Gc:Policies:0:Protect:0", "latest")));
        using var client = server.CreateClient();
        foreach (var tag in new[] { "latest", "pr-1", "pr-2", "pr-3", "pr-4" })
        {
            await client.PushImageAsync(repo, tag);
            await Task.Delay(5);
        }

        var dry = await client.RunAsync(dryRun: true);
        var tagsAfterDryRun = await client.TagsAsync(repo);
        var real = await client.RunAsync();

        tagsAfterDryRun.Should().Equal("latest", "pr-1", "pr-2", "pr-3", "pr-4");
        dry.Deleted().Should().Contain([$"tag {repo}:pr-1", $"tag {repo}:pr-2"]).And.NotContain($"tag {repo}:pr-3");
        dry.Deleted().Should().Contain(d => d.StartsWith("manifest ")).And.Contain(d => d.StartsWith("blob "));
        real.Deleted().Should().BeEquivalentTo(dry.Deleted());
        real.BytesReclaimed().Should().Be(dry.BytesReclaimed());
        (await client.TagsAsync(repo)).Should().Equal("latest", "pr-3", "pr-4");
    }

    [Fact]
    public async Task The_gc_command_runs_beside_a_replica_when_the_metadata_is_in_postgres()
    {
        var settings = await PostgresAsync();
        var storage = Directory.CreateTempSubdirectory("pg-gc-").FullName;
        try
        {
            await using var server = await RegistryServer.StartAsync(settings, storage);
            using var client = server.CreateClient();
            var layer = RandomNumberGenerator.GetBytes(2000);
            var image = await client.PushImageAsync("pg/command", "v1", layer);
            await client.DeleteAsync($"v2/pg/command/manifests/{image.Digest}");

            var (exitCode, output) = await GcCommandTests.GcAsync(storage, "--Registry:Metadata:Kind=postgres",
                $"--Registry:Metadata:ConnectionString={settings["Registry:Metadata:ConnectionString"]}");

            exitCode.Should().Be(0, output);
            output.Should().Contain($"blob {Http.Sha256(layer)}");
            Gc.Stored(storage, Http.Sha256(layer)).Should().BeFalse();
        }
        finally
        {
            Directory.Delete(storage, recursive: true);
        }
    }
}
