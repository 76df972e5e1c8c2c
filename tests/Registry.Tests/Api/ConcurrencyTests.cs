using System.Net;
using System.Security.Cryptography;
using System.Text;
using Registry.Tests.Infrastructure;

namespace Registry.Tests.Api;

/// <summary>Concurrent pushes and pulls against one in-process server; the storage checks look at its folder.</summary>
public sealed class ConcurrencyTests(RegistryFixture fixture) : ConcurrencyTestsBase(fixture), IClassFixture<RegistryFixture>
{
    protected override Task ShouldBeStoredOnceAsync(string digest)
    {
        Directory.EnumerateFiles(Path.Combine(fixture.Server.StoragePath!, "blobs"), digest["sha256:".Length..], SearchOption.AllDirectories)
            .Should().HaveCount(1);
        return Task.CompletedTask;
    }

    protected override Task ShouldHoldNothingOfAsync(IReadOnlyList<Uri> sessions)
    {
        Directory.EnumerateFiles(Path.Combine(fixture.Server.StoragePath!, "uploads")).Should().BeEmpty();
        return Task.CompletedTask;
    }
}

/// <summary>
/// Concurrent pushes and pulls: what any registry target must survive (one server, and the scale-out stack, where the
/// concurrent requests are spread over both replicas: <c>Stack.ScaleOutConcurrencyTests</c>).
/// </summary>
public abstract class ConcurrencyTestsBase(IRegistryTarget registry)
{
    private HttpClient Client => registry.Client;

    /// <summary>The blob's bytes are stored once, however many repositories link it.</summary>
    protected abstract Task ShouldBeStoredOnceAsync(string digest);

    /// <summary>Nothing of these committed upload sessions is left in storage.</summary>
    protected abstract Task ShouldHoldNothingOfAsync(IReadOnlyList<Uri> sessions);

    [Fact]
    public async Task The_same_blob_pushed_to_20_repositories_at_once_is_stored_once()
    {
        var data = RandomNumberGenerator.GetBytes(2_000_000);
        var repos = Enumerable.Range(0, 20).Select(i => $"fanout{Guid.NewGuid():N}/r{i}").ToArray();

        await Task.WhenAll(repos.Select(repo => Client.PushBlobAsync(repo, data)));

        foreach (var repo in repos)
            (await Client.GetByteArrayAsync($"v2/{repo}/blobs/{Http.Sha256(data)}")).Should().Equal(data);
        await ShouldBeStoredOnceAsync(Http.Sha256(data));
    }

    [Fact]
    public async Task The_same_tag_pushed_by_10_clients_points_at_one_of_their_manifests()
    {
        var repo = RegistryFixture.NewRepo("race");
        var pushed = await Task.WhenAll(Enumerable.Range(0, 10).Select(_ => Client.PushImageAsync(repo, "latest")));

        var response = await Client.GetAsync($"v2/{repo}/manifests/latest");

        response.StatusCode.Should().Be(HttpStatusCode.OK);
        var digest = response.Headers.GetValues("Docker-Content-Digest").Single();
        pushed.Select(p => p.Digest).Should().Contain(digest);
        (await response.Content.ReadAsByteArrayAsync()).Should().Equal(pushed.Single(p => p.Digest == digest).Bytes);
    }

    [Fact]
    public async Task Parallel_chunked_uploads_all_complete_with_the_right_bytes()
    {
        var repo = RegistryFixture.NewRepo("parallel");
        var blobs = Enumerable.Range(0, 16).Select(_ => RandomNumberGenerator.GetBytes(700_000)).ToArray();

        var sessions = new System.Collections.Concurrent.ConcurrentBag<Uri>();

        await Task.WhenAll(blobs.Select(async data =>
        {
            var location = await Client.StartUploadAsync(repo);
            sessions.Add(location);
            for (var offset = 0; offset < data.Length; offset += 100_000)
            {
                var patch = await Client.PatchAsync(location, Http.Chunk(data[offset..Math.Min(data.Length, offset + 100_000)], offset));
                patch.StatusCode.Should().Be(HttpStatusCode.Accepted);
                location = patch.Headers.Location!;
            }
            (await Client.PutAsync($"{location}?digest={Http.Sha256(data)}", null)).StatusCode.Should().Be(HttpStatusCode.Created);
        }));

        foreach (var data in blobs)
            (await Client.GetByteArrayAsync($"v2/{repo}/blobs/{Http.Sha256(data)}")).Should().Equal(data);
        await ShouldHoldNothingOfAsync([.. sessions]);
    }

    [Fact]
    public async Task A_manifest_deleted_while_being_pulled_is_either_served_whole_or_unknown()
    {
        var repo = RegistryFixture.NewRepo("pulldelete");
        var (bytes, digest) = await Client.PushImageAsync(repo, "v1");

        var pulls = Enumerable.Range(0, 50).Select(_ => Client.GetAsync($"v2/{repo}/manifests/{digest}")).ToList();
        var delete = Client.DeleteAsync($"v2/{repo}/manifests/{digest}");
        var responses = await Task.WhenAll(pulls);

        (await delete).StatusCode.Should().Be(HttpStatusCode.Accepted);
        foreach (var response in responses)
        {
            response.StatusCode.Should().BeOneOf(HttpStatusCode.OK, HttpStatusCode.NotFound);
            if (response.StatusCode == HttpStatusCode.OK)
                (await response.Content.ReadAsByteArrayAsync()).Should().Equal(bytes);
        }
    }
}
