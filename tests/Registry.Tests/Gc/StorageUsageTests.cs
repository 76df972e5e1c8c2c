using System.Security.Cryptography;
using System.Text.Json;
using Registry.Tests.Infrastructure;

namespace Registry.Tests.Gc;

/// <summary><c>GET /v2/_registry/storage/usage</c> and the search results: bytes per repository, unique and shared.</summary>
public sealed class StorageUsageTests
{
    private static JsonElement Find(JsonElement list, string name) =>
        list.EnumerateArray().Single(r => r.GetProperty("name").GetString() == name);

    [Fact]
    public async Task A_layer_two_repositories_hold_is_shared_bytes_for_both_and_counted_once_in_the_total()
    {
        await using var server = await RegistryServer.StartAsync(Gc.Aggressive());
        using var client = server.CreateClient();
        var (first, second) = ("usage/a", "usage/b");
        var layer = RandomNumberGenerator.GetBytes(50_000);
        var a = await client.PushImageAsync(first, "v1", layer);
        await client.PushImageAsync(second, "v1", layer);

        var usage = await client.GetJsonAsync("v2/_registry/storage/usage");

        var one = Find(usage.GetProperty("repositories"), first);
        one.GetProperty("sharedBytes").GetInt64().Should().Be(layer.Length);
        // Its own config and manifest.
        one.GetProperty("uniqueBytes").GetInt64().Should().BeInRange(a.Bytes.Length + 50, a.Bytes.Length + 200);
        var total = usage.GetProperty("total").GetProperty("bytes").GetInt64();
        total.Should().Be(layer.Length + one.GetProperty("uniqueBytes").GetInt64()
                          + Find(usage.GetProperty("repositories"), second).GetProperty("uniqueBytes").GetInt64());
    }

    [Fact]
    public async Task Search_results_carry_the_unique_and_shared_bytes()
    {
        await using var server = await RegistryServer.StartAsync(Gc.Aggressive());
        using var client = server.CreateClient();
        var layer = RandomNumberGenerator.GetBytes(10_000);
        await client.PushImageAsync("usage/x", "v1", layer);
        await client.PushImageAsync("usage/y", "v1", layer);

        var hits = await client.GetJsonAsync("v2/_registry/search/repositories?prefix=usage/");

        var x = Find(hits.GetProperty("repositories"), "usage/x");
        x.GetProperty("sharedSize").GetInt64().Should().Be(layer.Length);
        x.GetProperty("uniqueSize").GetInt64().Should().Be(x.GetProperty("size").GetInt64() - layer.Length);
    }
}
