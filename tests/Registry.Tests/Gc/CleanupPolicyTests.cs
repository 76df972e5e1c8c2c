using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using Registry.Tests.Conformance;
using Registry.Tests.Infrastructure;

namespace Registry.Tests.Gc;

/// <summary>Cleanup policies (<c>Registry:Gc:Policies</c>) feed garbage collection; a dry run lists what a run deletes.</summary>
public sealed class CleanupPolicyTests
{
    private static Dictionary<string, string?> KeepTwoPullRequestTags(string repo) => Gc.Aggressive(
        ("Registry:Gc:UntaggedAfter", "00:00:00"),
        ("Registry:Gc:Policies:0:Repositories:0", repo),
        ("Registry:Gc:Policies:0:Tags:0", "pr-*"),
        ("Registry:Gc:Policies:0:KeepLast", "2"),
        ("Registry:Gc:Policies:0:Protect:0", "latest"));

    private static async Task PushTagsAsync(HttpClient client, string repo, params string[] tags)
    {
        // One after another: each tag's push time is later than the one before.
        foreach (var tag in tags)
        {
            await client.PushImageAsync(repo, tag);
            await Task.Delay(5);
        }
    }

    [Fact]
    public async Task KeepLast_keeps_the_most_recently_pushed_matching_tags_and_deletes_the_others()
    {
        var repo = RegistryFixture.NewRepo("policy");
        await using var server = await RegistryServer.StartAsync(KeepTwoPullRequestTags(repo));
        using var client = server.CreateClient();
        await PushTagsAsync(client, repo, "pr-1", "pr-2", "pr-3", "main", "pr-4");

        await client.RunAsync();

        (await client.TagsAsync(repo)).Should().Equal("main", "pr-3", "pr-4");
    }

    [Fact]
    public async Task Protected_tags_are_never_deleted()
    {
        var repo = RegistryFixture.NewRepo("policy");
        await using var server = await RegistryServer.StartAsync(Gc.Aggressive(
            ("Registry:Gc:Policies:0:Repositories:0", "policy/*"),
            ("Registry:Gc:Policies:0:KeepLast", "0"),
            ("Registry:Gc:Policies:0:Protect:0", "latest"),
            ("Registry:Gc:Policies:0:Protect:1", "v*")));
        using var client = server.CreateClient();
        await PushTagsAsync(client, repo, "latest", "v1.0", "v2.0", "build-7", "build-8");

        await client.RunAsync();

        (await client.TagsAsync(repo)).Should().Equal("latest", "v1.0", "v2.0");
    }

    [Fact]
    public async Task A_policy_leaves_repositories_it_does_not_name_alone()
    {
        var repo = RegistryFixture.NewRepo("policy");
        var other = RegistryFixture.NewRepo("elsewhere");
        await using var server = await RegistryServer.StartAsync(KeepTwoPullRequestTags(repo));
        using var client = server.CreateClient();
        await PushTagsAsync(client, other, "pr-1", "pr-2", "pr-3");

        await client.RunAsync();

        (await client.TagsAsync(other)).Should().Equal("pr-1", "pr-2", "pr-3");
    }

    [Fact]
    public async Task OlderThan_deletes_only_matching_tags_last_pushed_longer_ago()
    {
        var repo = RegistryFixture.NewRepo("policy");
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var server = await RegistryServer.StartAsync(Gc.Aggressive(
            ("Registry:Gc:Policies:0:Repositories:0", "policy/*"),
            ("Registry:Gc:Policies:0:Tags:0", "nightly-*"),
            ("Registry:Gc:Policies:0:OlderThan", "7.00:00:00")), services: s => s.AddSingleton<TimeProvider>(clock));
        using var client = server.CreateClient();
        await PushTagsAsync(client, repo, "nightly-old", "release-old");
        clock.Advance(TimeSpan.FromDays(8));
        await PushTagsAsync(client, repo, "nightly-new");

        await client.RunAsync();

        (await client.TagsAsync(repo)).Should().Equal("nightly-new", "release-old");
    }

    [Fact]
    public async Task A_dry_run_lists_exactly_what_the_real_run_on_the_same_data_then_deletes()
    {
        var repo = RegistryFixture.NewRepo("policy");
        await using var server = await RegistryServer.StartAsync(KeepTwoPullRequestTags(repo));
        using var client = server.CreateClient();
        await PushTagsAsync(client, repo, "latest", "pr-1", "pr-2", "pr-3", "pr-4");

        var dry = await client.RunAsync(dryRun: true);
        var tagsAfterDryRun = await client.TagsAsync(repo);
        var real = await client.RunAsync();

        tagsAfterDryRun.Should().Equal("latest", "pr-1", "pr-2", "pr-3", "pr-4");
        dry.Deleted().Should().Contain([$"tag {repo}:pr-1", $"tag {repo}:pr-2"]).And.NotContain($"tag {repo}:pr-3");
        dry.Deleted().Should().Contain(d => d.StartsWith("manifest ")).And.Contain(d => d.StartsWith("blob "));
        real.Deleted().Should().BeEquivalentTo(dry.Deleted());
        real.BytesReclaimed().Should().Be(dry.BytesReclaimed());
        real.InlineBytesReclaimed().Should().BeGreaterThan(0, "configs and manifests are small").And.Be(dry.InlineBytesReclaimed());
        (await client.TagsAsync(repo)).Should().Equal("latest", "pr-3", "pr-4");
    }

    [Fact]
    public async Task A_policy_with_neither_KeepLast_nor_OlderThan_stops_the_registry_at_start_up()
    {
        var start = () => RegistryServer.StartAsync(new Dictionary<string, string?>
        {
            ["Registry:Gc:Policies:0:Repositories:0"] = "team/*",
            ["Registry:Gc:Policies:0:Tags:0"] = "pr-*",
        });

        (await start.Should().ThrowAsync<OptionsValidationException>())
            .Which.Message.Should().Contain("Registry:Gc:Policies:0 needs KeepLast, OlderThan or both");
    }
}
