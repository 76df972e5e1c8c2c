using System.Net;
using System.Security.Cryptography;
using System.Text;
using Registry.Tests.Infrastructure;

namespace Registry.Tests.Auth;

/// <summary>
/// The three leaks of issue #9, as a new user found them on the running server, kept as regression tests: content
/// reachable through a mount, and a refused push that changed the registry.
/// </summary>
public sealed class LeakTests
{
    [Fact]
    public async Task A_blob_deleted_from_its_only_repository_cannot_be_mounted_anywhere()
    {
        await using var server = await RegistryServer.StartAsync(new Dictionary<string, string?>());
        using var client = server.CreateClient();
        var secret = RandomNumberGenerator.GetBytes(500);
        var digest = await client.PushBlobAsync("private/app", secret);
        (await client.DeleteAsync($"v2/private/app/blobs/{digest}")).StatusCode.Should().Be(HttpStatusCode.Accepted);

        var mount = await client.PostAsync($"v2/attacker/x/blobs/uploads/?mount={digest}", null);
        var read = await client.GetAsync($"v2/attacker/x/blobs/{digest}");

        mount.StatusCode.Should().Be(HttpStatusCode.Accepted, "an unmountable blob gets a plain upload session");
        mount.Headers.Location!.ToString().Should().Contain("/v2/attacker/x/blobs/uploads/");
        read.StatusCode.Should().Be(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task A_manifest_digest_cannot_be_mounted_as_a_blob()
    {
        await using var server = await RegistryServer.StartAsync(new Dictionary<string, string?>());
        using var client = server.CreateClient();
        var (_, manifest) = await client.PushImageAsync("private/app", "v1");

        var mount = await client.PostAsync($"v2/attacker/x/blobs/uploads/?mount={manifest}", null);
        var read = await client.GetAsync($"v2/attacker/x/blobs/{manifest}");

        mount.StatusCode.Should().Be(HttpStatusCode.Accepted);
        read.StatusCode.Should().Be(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task A_blob_still_linked_somewhere_is_mounted_automatically()
    {
        await using var server = await RegistryServer.StartAsync(new Dictionary<string, string?>());
        using var client = server.CreateClient();
        var digest = await client.PushBlobAsync("shared/base", RandomNumberGenerator.GetBytes(300));

        var mount = await client.PostAsync($"v2/other/app/blobs/uploads/?mount={digest}", null);

        mount.StatusCode.Should().Be(HttpStatusCode.Created);
        (await client.GetAsync($"v2/other/app/blobs/{digest}")).StatusCode.Should().Be(HttpStatusCode.OK);
    }

    [Fact]
    public async Task A_mount_from_a_repository_the_caller_may_not_pull_starts_a_session_and_reveals_nothing()
    {
        await using var auth = await AuthServer.StartAsync("htpasswd",
            new Dictionary<string, string> { ["alice"] = "alice-pw", ["mallory"] = "mallory-pw" },
            new Dictionary<string, string?>
            {
                ["Registry:Auth:Rules:0:Repositories:0"] = "alice/**",
                ["Registry:Auth:Rules:0:Users:0"] = "alice",
                ["Registry:Auth:Rules:0:Actions:0"] = "*",
                ["Registry:Auth:Rules:1:Repositories:0"] = "mallory/**",
                ["Registry:Auth:Rules:1:Users:0"] = "mallory",
                ["Registry:Auth:Rules:1:Actions:0"] = "*",
            });
        using var alice = auth.As("alice", "alice-pw");
        using var mallory = auth.As("mallory", "mallory-pw");
        var digest = await alice.PushBlobAsync("alice/secret", RandomNumberGenerator.GetBytes(400));

        var withFrom = await mallory.PostAsync($"v2/mallory/x/blobs/uploads/?mount={digest}&from=alice/secret", null);
        var automatic = await mallory.PostAsync($"v2/mallory/y/blobs/uploads/?mount={digest}", null);

        withFrom.StatusCode.Should().Be(HttpStatusCode.Accepted);
        automatic.StatusCode.Should().Be(HttpStatusCode.Accepted);
        (await mallory.GetAsync($"v2/mallory/x/blobs/{digest}")).StatusCode.Should().Be(HttpStatusCode.NotFound);
        (await mallory.GetAsync($"v2/mallory/y/blobs/{digest}")).StatusCode.Should().Be(HttpStatusCode.NotFound);
        (await alice.PostAsync($"v2/alice/copy/blobs/uploads/?mount={digest}&from=alice/secret", null))
            .StatusCode.Should().Be(HttpStatusCode.Created, "the owner may mount her own blob");
    }

    [Fact]
    public async Task A_refused_manifest_push_leaves_no_repository_no_event_and_no_file()
    {
        await using var server = await RegistryServer.StartAsync(new Dictionary<string, string?>());
        using var client = server.CreateClient();
        var latestBefore = await LatestEventAsync(client);
        var filesBefore = Files(server.StoragePath!);
        // An artifact (empty config, which the registry supplies) whose layer was never pushed.
        var manifest = Encoding.UTF8.GetBytes($$"""
            {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/x.test",
             "config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},
             "layers":[{"mediaType":"application/octet-stream","digest":"{{Http.Sha256(RandomNumberGenerator.GetBytes(8))}}","size":8}]}
            """);

        var push = await client.PutManifestAsync("refused/app", "v1", manifest);

        push.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        (await push.ErrorCodeAsync()).Should().Be("MANIFEST_BLOB_UNKNOWN");
        var catalog = await client.GetJsonAsync("v2/_catalog");
        catalog.GetProperty("repositories").EnumerateArray().Select(r => r.GetString()).Should().NotContain("refused/app");
        var tags = await client.GetAsync("v2/refused/app/tags/list");
        tags.StatusCode.Should().Be(HttpStatusCode.NotFound);
        (await tags.ErrorCodeAsync()).Should().Be("NAME_UNKNOWN");
        (await LatestEventAsync(client)).Should().Be(latestBefore, "no event is written for a refused push");
        Files(server.StoragePath!).Should().BeEquivalentTo(filesBefore, "no blob or manifest file is left behind");
    }

    [Fact]
    public async Task An_artifact_with_the_empty_config_is_accepted_without_pushing_the_config()
    {
        await using var server = await RegistryServer.StartAsync(new Dictionary<string, string?>());
        using var client = server.CreateClient();
        var (image, _) = await client.PushImageAsync("art/app", "v1");

        var (_, artifact) = await client.PushArtifactAsync("art/app", Http.Sha256(image), "application/x.sbom");

        (await client.GetAsync("v2/art/app/blobs/sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"))
            .StatusCode.Should().Be(HttpStatusCode.OK);
        (await client.GetAsync($"v2/art/app/manifests/{artifact}")).StatusCode.Should().Be(HttpStatusCode.OK);
    }

    private static async Task<long> LatestEventAsync(HttpClient client)
    {
        // The newest event id in the outbox, read from the event stream replayed from the start.
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        long latest = 0;
        try
        {
            using var response = await client.GetAsync("v2/_registry/events/stream?since=0",
                HttpCompletionOption.ResponseHeadersRead, cancel.Token);
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancel.Token));
            while (await reader.ReadLineAsync(cancel.Token) is { } line)
                if (line.StartsWith("id: ", StringComparison.Ordinal)) latest = long.Parse(line[4..]);
        }
        catch (OperationCanceledException)
        {
            // The stream stays open; everything up to now was read.
        }
        return latest;
    }

    private static string[] Files(string root) =>
        Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories)
            .Where(f => !Path.GetFileName(f).StartsWith("metadata.db", StringComparison.Ordinal))
            .Select(f => Path.GetRelativePath(root, f)).Order().ToArray();
}
