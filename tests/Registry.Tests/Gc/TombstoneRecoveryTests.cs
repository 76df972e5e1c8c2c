using System.Net;
using System.Security.Cryptography;
using Microsoft.Extensions.DependencyInjection;
using Registry.Storage;
using Registry.Storage.Blobs;
using Registry.Storage.Metadata;
using Registry.Storage.Model;
using Registry.Tests.Infrastructure;

namespace Registry.Tests.Gc;

/// <summary>A process stopped between a sweep's tombstone commit and its file deletions: the next start finishes it.</summary>
public sealed class TombstoneRecoveryTests
{
    /// <summary>A blob nothing links, tombstoned as a sweep does, its file left in place (the process "died" there).</summary>
    private static async Task<(byte[] Data, Digest Digest)> TombstonedAsync(RegistryServer server, HttpClient client)
    {
        var data = RandomNumberGenerator.GetBytes(2000);
        var digest = await client.PushBlobAsync("gc/tomb", data);
        await client.DeleteAsync($"v2/gc/tomb/blobs/{digest}");
        var store = server.Services.GetRequiredService<IGarbageCollectionStore>();
        (await store.TombstoneBlobsAsync([Digest.Parse(digest)], DateTimeOffset.UtcNow, default)).Should().ContainSingle();
        return (data, Digest.Parse(digest));
    }

    [Fact]
    public async Task The_next_start_deletes_the_file_of_a_tombstoned_blob_and_the_storage_verifies()
    {
        var storage = Directory.CreateTempSubdirectory("gc-tomb-").FullName;
        try
        {
            Digest digest;
            await using (var first = await RegistryServer.StartAsync(Gc.Aggressive(), storagePath: storage))
            {
                using var client = first.CreateClient();
                (_, digest) = await TombstonedAsync(first, client);
            }

            await using var second = await RegistryServer.StartAsync(Gc.Aggressive(), storagePath: storage);

            Gc.Stored(storage, digest.ToString()).Should().BeFalse();
            var report = await new StorageVerifier(second.Services.GetRequiredService<IBlobStore>(),
                second.Services.GetRequiredService<IMetadataStore>()).VerifyAsync(default);
            report.Problems.Should().BeEmpty();
            (await second.Services.GetRequiredService<IGarbageCollectionStore>().ListTombstonesAsync(default)).Should().BeEmpty();
        }
        finally
        {
            Directory.Delete(storage, recursive: true);
        }
    }

    [Fact]
    public async Task A_tombstoned_blob_pushed_again_before_the_restart_is_kept()
    {
        var storage = Directory.CreateTempSubdirectory("gc-tomb-").FullName;
        try
        {
            byte[] data;
            Digest digest;
            await using (var first = await RegistryServer.StartAsync(Gc.Aggressive(), storagePath: storage))
            {
                using var client = first.CreateClient();
                (data, digest) = await TombstonedAsync(first, client);
                await client.PushBlobAsync("gc/again", data);
            }

            await using var second = await RegistryServer.StartAsync(Gc.Aggressive(), storagePath: storage);
            using var again = second.CreateClient();

            (await again.GetByteArrayAsync($"v2/gc/again/blobs/{digest}")).Should().Equal(data);
        }
        finally
        {
            Directory.Delete(storage, recursive: true);
        }
    }
}
