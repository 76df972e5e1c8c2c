using System.Net;
using System.Security.Cryptography;
using Registry.Tests.Infrastructure;

namespace Registry.Tests.Gc;

/// <summary>What a garbage collection run keeps and what it reclaims (docs/storage.md, "Garbage collection").</summary>
public sealed class GarbageCollectionTests
{
    private static string NewRepo() => RegistryFixture.NewRepo("gc");

    [Fact]
    public async Task The_blobs_of_a_deleted_image_are_reclaimed_from_disk()
    {
        await using var server = await RegistryServer.StartAsync(Gc.Aggressive());
        using var client = server.CreateClient();
        var repo = NewRepo();
        var layer = RandomNumberGenerator.GetBytes(5000);
        var image = await client.PushImageAsync(repo, "v1", layer);
        (await client.DeleteAsync($"v2/{repo}/manifests/{image.Digest}")).StatusCode.Should().Be(HttpStatusCode.Accepted);

        await client.RunAsync();

        Gc.Stored(server.StoragePath!, Http.Sha256(layer)).Should().BeFalse();
        Gc.Stored(server.StoragePath!, image.Digest).Should().BeFalse();
    }

    [Fact]
    public async Task The_report_counts_the_bytes_that_du_of_the_blob_store_loses()
    {
        await using var server = await RegistryServer.StartAsync(Gc.Aggressive());
        using var client = server.CreateClient();
        var repo = NewRepo();
        var image = await client.PushImageAsync(repo, "v1", RandomNumberGenerator.GetBytes(70_000));
        await client.PushImageAsync(repo, "kept", RandomNumberGenerator.GetBytes(3000));
        await client.DeleteAsync($"v2/{repo}/manifests/{image.Digest}");
        var before = Gc.DiskUsage(Path.Combine(server.StoragePath!, "blobs"));
        var inlineBefore = Gc.InlineBytes(server.StoragePath!);

        var run = await client.RunAsync();

        var after = Gc.DiskUsage(Path.Combine(server.StoragePath!, "blobs"));
        run.BytesReclaimed().Should().BeGreaterThanOrEqualTo(70_000).And.Be(before - after);
        // The config and the manifest are small: they were inline, and the report counts them apart.
        run.InlineBytesReclaimed().Should().BeGreaterThan(0).And.Be(inlineBefore - Gc.InlineBytes(server.StoragePath!));
    }

    [Fact]
    public async Task A_tagged_image_keeps_its_manifest_config_and_layers()
    {
        await using var server = await RegistryServer.StartAsync(Gc.Aggressive());
        using var client = server.CreateClient();
        var repo = NewRepo();
        var layer = RandomNumberGenerator.GetBytes(1000);
        var image = await client.PushImageAsync(repo, "v1", layer);

        await client.RunAsync();

        (await client.GetAsync($"v2/{repo}/manifests/v1")).StatusCode.Should().Be(HttpStatusCode.OK);
        (await client.GetByteArrayAsync($"v2/{repo}/blobs/{Http.Sha256(layer)}")).Should().Equal(layer);
        (await client.GetAsync($"v2/{repo}/manifests/{image.Digest}")).StatusCode.Should().Be(HttpStatusCode.OK);
    }

    [Fact]
    public async Task A_blob_pushed_within_the_grace_period_and_not_yet_referenced_is_kept()
    {
        await using var server = await RegistryServer.StartAsync(new Dictionary<string, string?> { ["Registry:Gc:Interval"] = "0" });
        using var client = server.CreateClient();
        var repo = NewRepo();
        var blob = RandomNumberGenerator.GetBytes(300);
        var digest = await client.PushBlobAsync(repo, blob);

        await client.RunAsync();

        (await client.GetByteArrayAsync($"v2/{repo}/blobs/{digest}")).Should().Equal(blob);
    }

    [Fact]
    public async Task A_blob_not_referenced_after_the_grace_period_is_unlinked_and_reclaimed()
    {
        await using var server = await RegistryServer.StartAsync(Gc.Aggressive());
        using var client = server.CreateClient();
        var repo = NewRepo();
        var digest = await client.PushBlobAsync(repo, RandomNumberGenerator.GetBytes(300));

        var run = await client.RunAsync();

        (await client.GetAsync($"v2/{repo}/blobs/{digest}")).StatusCode.Should().Be(HttpStatusCode.NotFound);
        run.Deleted().Should().Contain([$"link {repo}@{digest}", $"blob {digest}"]);
    }

    [Fact]
    public async Task A_blob_shared_with_a_live_image_in_another_repository_is_kept()
    {
        await using var server = await RegistryServer.StartAsync(Gc.Aggressive());
        using var client = server.CreateClient();
        var (first, second) = (NewRepo(), NewRepo());
        var layer = RandomNumberGenerator.GetBytes(2000);
        var gone = await client.PushImageAsync(first, "v1", layer);
        await client.PushImageAsync(second, "v1", layer);
        await client.DeleteAsync($"v2/{first}/manifests/{gone.Digest}");

        await client.RunAsync();

        (await client.GetAsync($"v2/{first}/blobs/{Http.Sha256(layer)}")).StatusCode.Should().Be(HttpStatusCode.NotFound);
        (await client.GetByteArrayAsync($"v2/{second}/blobs/{Http.Sha256(layer)}")).Should().Equal(layer);
    }

    [Fact]
    public async Task Untagged_manifests_are_kept_unless_UntaggedAfter_is_set()
    {
        await using var server = await RegistryServer.StartAsync(Gc.Aggressive());
        using var client = server.CreateClient();
        var repo = NewRepo();
        var image = await client.PushImageAsync(repo, "v1");
        await client.DeleteAsync($"v2/{repo}/manifests/v1");

        await client.RunAsync();

        (await client.GetAsync($"v2/{repo}/manifests/{image.Digest}")).StatusCode.Should().Be(HttpStatusCode.OK);
    }

    [Fact]
    public async Task Untagged_manifests_older_than_UntaggedAfter_are_deleted()
    {
        await using var server = await RegistryServer.StartAsync(Gc.Aggressive(("Registry:Gc:UntaggedAfter", "00:00:00")));
        using var client = server.CreateClient();
        var repo = NewRepo();
        var image = await client.PushImageAsync(repo, "v1");
        await client.DeleteAsync($"v2/{repo}/manifests/v1");

        var run = await client.RunAsync();

        (await client.GetAsync($"v2/{repo}/manifests/{image.Digest}")).StatusCode.Should().Be(HttpStatusCode.NotFound);
        run.Deleted().Should().Contain($"manifest {repo}@{image.Digest}");
    }

    [Fact]
    public async Task Untagged_children_of_a_tagged_index_are_kept_with_UntaggedAfter()
    {
        await using var server = await RegistryServer.StartAsync(Gc.Aggressive(("Registry:Gc:UntaggedAfter", "00:00:00")));
        using var client = server.CreateClient();
        var repo = NewRepo();
        var index = await client.PushIndexAsync(repo, "multi");
        await client.DeleteAsync($"v2/{repo}/manifests/amd64-multi");
        await client.DeleteAsync($"v2/{repo}/manifests/arm64-multi");

        await client.RunAsync();

        foreach (var child in index.Children)
            (await client.GetByteArrayAsync($"v2/{repo}/manifests/{child.Digest}")).Should().Equal(child.Bytes);
    }

    [Fact]
    public async Task Untagged_referrers_of_a_tagged_manifest_are_kept_with_UntaggedAfter()
    {
        await using var server = await RegistryServer.StartAsync(Gc.Aggressive(("Registry:Gc:UntaggedAfter", "00:00:00")));
        using var client = server.CreateClient();
        var repo = NewRepo();
        var image = await client.PushImageAsync(repo, "v1");
        var sbom = await client.PushArtifactAsync(repo, image.Digest, "application/spdx+json");

        await client.RunAsync();

        (await client.GetByteArrayAsync($"v2/{repo}/manifests/{sbom.Digest}")).Should().Equal(sbom.Bytes);
        var referrers = await client.GetJsonAsync($"v2/{repo}/referrers/{image.Digest}");
        referrers.GetProperty("manifests").EnumerateArray().Select(m => m.GetProperty("digest").GetString())
            .Should().Equal(sbom.Digest);
    }

    [Fact]
    public async Task A_tagged_referrer_keeps_its_untagged_subject()
    {
        await using var server = await RegistryServer.StartAsync(Gc.Aggressive(("Registry:Gc:UntaggedAfter", "00:00:00")));
        using var client = server.CreateClient();
        var repo = NewRepo();
        var image = await client.PushImageAsync(repo, "v1");
        await client.PushArtifactAsync(repo, image.Digest, "application/spdx+json", tag: "sbom");
        await client.DeleteAsync($"v2/{repo}/manifests/v1");

        await client.RunAsync();

        (await client.GetByteArrayAsync($"v2/{repo}/manifests/{image.Digest}")).Should().Equal(image.Bytes);
    }

    [Fact]
    public async Task A_dry_run_deletes_nothing_and_lists_what_a_run_would_delete()
    {
        await using var server = await RegistryServer.StartAsync(Gc.Aggressive(("Registry:Gc:UntaggedAfter", "00:00:00")));
        using var client = server.CreateClient();
        var repo = NewRepo();
        var image = await client.PushImageAsync(repo, "v1");
        await client.DeleteAsync($"v2/{repo}/manifests/v1");

        var dry = await client.RunAsync(dryRun: true);

        (await client.GetAsync($"v2/{repo}/manifests/{image.Digest}")).StatusCode.Should().Be(HttpStatusCode.OK);
        dry.Deleted().Should().Contain($"manifest {repo}@{image.Digest}");
        var real = await client.RunAsync();
        real.Deleted().Should().Contain($"manifest {repo}@{image.Digest}");
    }

    [Fact]
    public async Task Runs_are_listed_most_recent_first_with_their_reports()
    {
        await using var server = await RegistryServer.StartAsync(Gc.Aggressive());
        using var client = server.CreateClient();
        var first = await client.RunAsync(dryRun: true);
        var second = await client.RunAsync();

        var runs = await client.GetJsonAsync("v2/_registry/gc/runs");

        runs.GetProperty("runs").EnumerateArray().Select(r => r.GetProperty("id").GetInt64()).Take(2)
            .Should().Equal(second.GetProperty("id").GetInt64(), first.GetProperty("id").GetInt64());
        runs.GetProperty("runs")[0].Report().GetProperty("durationMs").GetInt64().Should().BeGreaterThanOrEqualTo(0);
    }

    [Fact]
    public async Task An_expired_upload_session_is_purged_by_a_run()
    {
        await using var server = await RegistryServer.StartAsync(Gc.Aggressive(("Registry:Uploads:Expiry", "00:00:00.001")));
        using var client = server.CreateClient();
        var session = await client.StartUploadAsync(NewRepo());
        await Task.Delay(10);

        var run = await client.RunAsync();

        run.Swept("expiredUploads").Should().Be(1);
        (await client.GetAsync(session)).StatusCode.Should().Be(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task An_unknown_run_is_404()
    {
        await using var server = await RegistryServer.StartAsync(Gc.Aggressive());
        using var client = server.CreateClient();

        var response = await client.GetAsync("v2/_registry/gc/runs?id=999");

        response.StatusCode.Should().Be(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task A_dryRun_that_is_not_a_boolean_is_400_UNSUPPORTED()
    {
        await using var server = await RegistryServer.StartAsync(Gc.Aggressive());
        using var client = server.CreateClient();

        var response = await client.PostAsync("v2/_registry/gc/runs?dryRun=maybe", null);

        response.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        (await response.ErrorCodeAsync()).Should().Be("UNSUPPORTED");
    }
}
