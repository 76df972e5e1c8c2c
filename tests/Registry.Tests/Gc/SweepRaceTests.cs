using System.Net;
using System.Reflection;
using System.Security.Cryptography;
using Microsoft.Extensions.DependencyInjection;
using Registry.Api.Storage;
using Registry.Storage.Blobs;
using Registry.Storage.Gc;
using Registry.Storage.Metadata;
using Registry.Storage.Model;
using Registry.Tests.Infrastructure;

namespace Registry.Tests.Gc;

/// <summary>
/// The race distribution loses (distribution#2881): a push that finds the content already stored while the sweeper
/// deletes it. These tests hold a sweep open by hand, exactly where the collector holds it, and push into it.
/// </summary>
public sealed class SweepRaceTests
{
    private static string NewRepo() => RegistryFixture.NewRepo("gcrace");

    /// <summary>A blob recorded in the metadata that nothing links or references: what the sweeper takes.</summary>
    private static async Task<(byte[] Data, Digest Digest)> UnreferencedBlobAsync(HttpClient client)
    {
        var repo = NewRepo();
        var data = RandomNumberGenerator.GetBytes(4000);
        var digest = await client.PushBlobAsync(repo, data);
        (await client.DeleteAsync($"v2/{repo}/blobs/{digest}")).StatusCode.Should().Be(HttpStatusCode.Accepted);
        return (data, Digest.Parse(digest));
    }

    /// <summary>Does what the collector does with a taken digest: tombstone, delete the file, clear, let go.</summary>
    private static async Task SweepAsync(IServiceProvider services, Digest digest)
    {
        var store = services.GetRequiredService<IGarbageCollectionStore>();
        (await store.TombstoneBlobsAsync([digest], DateTimeOffset.UtcNow, default)).Should().ContainSingle();
        await services.GetRequiredService<IBlobStore>().DeleteAsync(digest, default);
        await store.ClearTombstonesAsync([digest], default);
        await services.GetRequiredService<IBlobPins>().EndSweepAsync([digest], default);
    }

    [Fact]
    public async Task A_push_of_content_being_swept_waits_for_the_sweep_and_stores_the_content_again()
    {
        await using var server = await RegistryServer.StartAsync(Gc.Aggressive());
        using var client = server.CreateClient();
        var (data, digest) = await UnreferencedBlobAsync(client);
        (await server.Services.GetRequiredService<IBlobPins>().BeginSweepAsync([digest], default)).Should().ContainSingle();
        var repo = NewRepo();

        var push = client.PostAsync($"v2/{repo}/blobs/uploads/?digest={digest}", new ByteArrayContent(data));
        await Task.Delay(200);
        await SweepAsync(server.Services, digest);

        (await push).StatusCode.Should().Be(HttpStatusCode.Created);
        (await client.GetByteArrayAsync($"v2/{repo}/blobs/{digest}")).Should().Equal(data);
    }

    [Fact]
    public async Task A_mount_of_content_being_swept_becomes_an_upload_session()
    {
        await using var server = await RegistryServer.StartAsync(Gc.Aggressive());
        using var client = server.CreateClient();
        var (_, digest) = await UnreferencedBlobAsync(client);
        (await server.Services.GetRequiredService<IBlobPins>().BeginSweepAsync([digest], default)).Should().ContainSingle();

        var mount = client.PostAsync($"v2/{NewRepo()}/blobs/uploads/?mount={digest}", null);
        await Task.Delay(200);
        await SweepAsync(server.Services, digest);

        (await mount).StatusCode.Should().Be(HttpStatusCode.Accepted);
    }

    [Fact]
    public async Task The_sweeper_leaves_alone_content_a_push_is_using()
    {
        await using var server = await RegistryServer.StartAsync(Gc.Aggressive());
        using var client = server.CreateClient();
        var (_, digest) = await UnreferencedBlobAsync(client);
        var pins = server.Services.GetRequiredService<IBlobPins>();
        await using var push = await pins.PinAsync(digest, default);

        var run = await client.RunAsync();

        run.Report().GetProperty("skippedInUse").GetInt32().Should().Be(1);
        Gc.Stored(server.StoragePath!, digest.ToString()).Should().BeTrue();
    }

    [Fact]
    public async Task A_second_run_asked_for_while_one_runs_is_429_TOOMANYREQUESTS_pointing_at_the_running_one()
    {
        var gate = new TaskCompletionSource();
        await using var server = await RegistryServer.StartAsync(Gc.Aggressive(), services: s =>
        {
            s.AddSingleton<IGarbageCollectionStore>(provider =>
                HeldStore.Wrap(provider.GetRequiredService<MetadataBackend>().Store, gate.Task));
        });
        using var client = server.CreateClient();
        var first = await client.PostAsync("v2/_registry/gc/runs", null);

        var second = await client.PostAsync("v2/_registry/gc/runs", null);
        gate.SetResult();

        second.StatusCode.Should().Be(HttpStatusCode.TooManyRequests);
        (await second.ErrorCodeAsync()).Should().Be("TOOMANYREQUESTS");
        second.Headers.Location.Should().Be(first.Headers.Location);
        await client.WaitForRunAsync(first.Headers.Location!.ToString());
    }

    /// <summary>A store whose repository listing (the first step of a run) waits for a gate: a run that stays running.</summary>
    public class HeldStore : DispatchProxy
    {
        private IGarbageCollectionStore _inner = null!;
        private Task _gate = Task.CompletedTask;

        public static IGarbageCollectionStore Wrap(IGarbageCollectionStore inner, Task gate)
        {
            var proxy = Create<IGarbageCollectionStore, HeldStore>();
            var held = (HeldStore)(object)proxy;
            held._inner = inner;
            held._gate = gate;
            return proxy;
        }

        protected override object? Invoke(MethodInfo? method, object?[]? args)
        {
            if (method!.Name == nameof(IGarbageCollectionStore.ListAllRepositoriesAsync))
                return ListAfterGateAsync((CancellationToken)args![0]!);
            return method.Invoke(_inner, args);
        }

        private async ValueTask<IReadOnlyList<RepositoryName>> ListAfterGateAsync(CancellationToken ct)
        {
            await _gate;
            return await _inner.ListAllRepositoriesAsync(ct);
        }
    }
}
