using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Registry.Storage.Blobs;
using Registry.Storage.Blobs.S3;
using Registry.Storage.Metadata;
using Registry.Storage.Metadata.Postgres;
using Registry.Tests.Clients;
using Registry.Tests.Conformance;

namespace Registry.Tests.Stack;

// The conformance-modelled HTTP tests and the real-client tests, unchanged, through nginx round-robin in front of two
// replicas on one bucket and one PostgreSQL database: any request of a push or pull may reach either replica.
// Beside them the HTTP-only classes of Api/ and Extensions/ that share one server (blob ranges, pagination, search,
// tag details, concurrency). Left single-server only: AuthClientTests and TlsClientTests (they need a server started
// with htpasswd or TLS settings of their own), and the tests that start servers with settings of their own or look at
// one server's internals (a recording blob store, its folders, restarts).

[Collection(ScaleOutCollection.Name)]
public sealed class ScaleOutPushTests(ScaleOutStack stack) : PushTestsBase(stack);

[Collection(ScaleOutCollection.Name)]
public sealed class ScaleOutPullTests(ScaleOutStack stack) : PullTestsBase(stack);

[Collection(ScaleOutCollection.Name)]
public sealed class ScaleOutManagementTests(ScaleOutStack stack) : ManagementTestsBase(stack);

[Collection(ScaleOutCollection.Name)]
public sealed class ScaleOutDiscoveryTests(ScaleOutStack stack) : DiscoveryTestsBase(stack);

[Collection(ScaleOutCollection.Name)]
public sealed class ScaleOutErrorTests(ScaleOutStack stack) : ErrorTestsBase(stack);

[Collection(ScaleOutCollection.Name)]
public sealed class ScaleOutBlobRangeTests(ScaleOutStack stack) : Api.BlobRangeTests
{
    protected override HttpClient Client => stack.Client;
}

[Collection(ScaleOutCollection.Name)]
public sealed class ScaleOutPaginationPropertyTests(ScaleOutStack stack) : Api.PaginationPropertyTestsBase(stack);

[Collection(ScaleOutCollection.Name)]
public sealed class ScaleOutSearchTests(ScaleOutStack stack) : Extensions.SearchTestsBase(stack);

[Collection(ScaleOutCollection.Name)]
public sealed class ScaleOutTagDetailsTests(ScaleOutStack stack) : Extensions.TagDetailsTestsBase(stack);

/// <summary>Concurrent pushes spread over both replicas; the storage checks look at the shared bucket.</summary>
[Collection(ScaleOutCollection.Name)]
public sealed class ScaleOutConcurrencyTests(ScaleOutStack stack) : Api.ConcurrencyTestsBase(stack)
{
    private S3Bucket Bucket => ((S3BlobStore)stack.Replicas[0].Services.GetRequiredService<IBlobStore>()).Bucket;

    protected override async Task ShouldBeStoredOnceAsync(string digest)
    {
        var keys = new List<string>();
        await foreach (var item in Bucket.ListAsync(Bucket.BlobKey(Registry.Storage.Model.Digest.Parse(digest)))) keys.Add(item.Key);
        keys.Should().ContainSingle();
    }

    protected override async Task ShouldHoldNothingOfAsync(IReadOnlyList<Uri> sessions)
    {
        var ids = sessions.Select(s => s.OriginalString.TrimEnd('/').Split('/')[^1].Split('?')[0]).ToList();
        ids.Should().HaveCount(sessions.Count).And.OnlyHaveUniqueItems();
        foreach (var id in ids)
        {
            var left = new List<string>();
            await foreach (var item in Bucket.ListAsync($"{Bucket.UploadsPrefix}{id}/")) left.Add(item.Key);
            left.Should().BeEmpty($"session {id} was committed");
        }
        var open = new List<string>();
        await foreach (var upload in Bucket.ListMultipartUploadsAsync(Bucket.UploadsPrefix)) open.Add(upload.Key);
        open.Should().NotContain(key => ids.Any(id => key.Contains(id, StringComparison.Ordinal)));
    }
}

[Collection(ScaleOutCollection.Name)]
public sealed class ScaleOutSkopeoTests(ScaleOutStack stack) : SkopeoTestsBase(stack);

[Collection(ScaleOutCollection.Name)]
public sealed class ScaleOutPodmanTests(ScaleOutStack stack) : PodmanTestsBase(stack);

[Collection(ScaleOutCollection.Name)]
public sealed class ScaleOutUmociTests(ScaleOutStack stack) : UmociTestsBase(stack);

/// <summary>The scale-out stack is what the tests above claim it is: two s3 + postgres replicas, both serving.</summary>
[Collection(ScaleOutCollection.Name)]
public sealed class ScaleOutStackTests(ScaleOutStack stack)
{
    [Fact]
    public void Both_replicas_keep_blobs_in_s3_and_metadata_in_postgres()
    {
        stack.Replicas.Should().HaveCount(2);
        foreach (var replica in stack.Replicas)
        {
            replica.Services.GetRequiredService<IBlobStore>().Should().BeOfType<S3BlobStore>();
            replica.Services.GetRequiredService<IMetadataStore>().Should().BeOfType<PostgresMetadataStore>();
        }
    }

    [Fact]
    public async Task Consecutive_requests_through_the_proxy_alternate_between_the_replicas()
    {
        var marker = $"probe-{Guid.NewGuid():N}";
        for (var i = 0; i < 4; i++)
            (await stack.Client.GetAsync($"v2/?{marker}={i}")).StatusCode.Should().Be(HttpStatusCode.OK);

        var upstreams = await stack.UpstreamsOfAsync(marker, 4);

        upstreams.Should().HaveCount(4);
        upstreams.Distinct().Should().BeEquivalentTo(stack.Replicas.Select(r => r.HostPort));
        upstreams.Zip(upstreams.Skip(1)).Should().OnlyContain(pair => pair.First != pair.Second);
    }
}

/// <summary>Issue #12's "a chunked upload whose PATCHes alternate between replicas completes", through the proxy.</summary>
[Collection(ScaleOutCollection.Name)]
public sealed class ScaleOutUploadTests(ScaleOutStack stack)
{
    private const int MiB = 1 << 20;

    [Fact]
    public async Task A_chunked_upload_whose_patches_alternate_between_the_replicas_completes_and_pulls_back()
    {
        // 6 MiB chunks over 8 MiB parts: most PATCHes end mid-part, so the next replica resumes a stored tail and hash.
        var repo = Infrastructure.RegistryFixture.NewRepo("chunks");
        var data = System.Security.Cryptography.RandomNumberGenerator.GetBytes(20 * MiB + 77);
        var location = await Infrastructure.Http.StartUploadAsync(stack.Client, repo);
        var session = location.OriginalString.Split('?')[0].TrimEnd('/').Split('/')[^1];
        var patches = 0;
        for (var start = 0; start < data.Length; start += 6 * MiB, patches++)
        {
            var piece = data[start..Math.Min(data.Length, start + 6 * MiB)];
            var patch = await stack.Client.PatchAsync(location, Infrastructure.Http.Chunk(piece, start));
            patch.StatusCode.Should().Be(HttpStatusCode.Accepted, await patch.Content.ReadAsStringAsync());
            location = patch.Headers.Location!;
        }
        var digest = Infrastructure.Http.Sha256(data);
        var separator = location.OriginalString.Contains('?') ? '&' : '?';

        var put = await stack.Client.PutAsync($"{location.OriginalString}{separator}digest={digest}", null);

        put.StatusCode.Should().Be(HttpStatusCode.Created, await put.Content.ReadAsStringAsync());
        var served = await stack.UpstreamsOfAsync(session, patches + 1);
        served.Should().HaveCount(patches + 1);
        served.Zip(served.Skip(1)).Should().OnlyContain(pair => pair.First != pair.Second, "each request of the session went to the other replica");
        (await stack.Client.GetByteArrayAsync($"v2/{repo}/blobs/{digest}")).Should().Equal(data);
    }
}

/// <summary>What the replicas know about a client that reaches them through the proxy.</summary>
[Collection(ScaleOutCollection.Name)]
public sealed class ScaleOutClientTests
{
    [Fact]
    public async Task Anonymous_clients_behind_the_proxy_each_have_their_own_upload_session_allowance()
    {
        // nginx connects to the replicas from 127.0.0.1 whoever the client is; it names the client in X-Forwarded-For.
        var stack = new ScaleOutStack(
            new Dictionary<string, string?> { ["Registry:Uploads:MaxSessionsPerClient"] = "1" }, $"scale-out-{Guid.NewGuid():N}");
        try
        {
            await stack.InitializeAsync();
            await EachClientHasItsOwnAllowanceAsync(stack);
        }
        finally
        {
            await stack.DisposeAsync();
        }
    }

    private static async Task EachClientHasItsOwnAllowanceAsync(ScaleOutStack stack)
    {
        using var first = stack.CreateClient(IPAddress.Parse("127.0.0.2"));
        using var second = stack.CreateClient(IPAddress.Parse("127.0.0.3"));
        var repo = Infrastructure.RegistryFixture.NewRepo("clients");
        (await first.PostAsync($"v2/{repo}/blobs/uploads/", null)).StatusCode.Should().Be(HttpStatusCode.Accepted);

        var again = await first.PostAsync($"v2/{repo}/blobs/uploads/", null);
        var other = await second.PostAsync($"v2/{repo}/blobs/uploads/", null);

        again.StatusCode.Should().Be(HttpStatusCode.TooManyRequests, "the first client holds its one session");
        other.StatusCode.Should().Be(HttpStatusCode.Accepted, "another client is not the first one: " + await other.Content.ReadAsStringAsync());
    }
}

/// <summary>The events extension across replicas: a stream served by one replica carries what any replica wrote.</summary>
[Collection(ScaleOutCollection.Name)]
public sealed class ScaleOutEventsTests(ScaleOutStack stack)
{
    [Fact]
    public async Task An_event_stream_through_the_proxy_carries_the_pushes_that_each_replica_served()
    {
        var first = Infrastructure.RegistryFixture.NewRepo("events");
        var second = Infrastructure.RegistryFixture.NewRepo("events");
        var prefix = first[..first.IndexOf('/')];
        using var stream = await Extensions.EventsTests.OpenStreamAsync(stack.Client, $"?repository={prefix}/*&action=tag.create");
        using var one = stack.Replicas[0].CreateClient();
        using var other = stack.Replicas[1].CreateClient();

        await one.PushImageAsync(first, "v1");
        await other.PushImageAsync(second, "v1");
        var events = await stream.ReadAsync(2);

        events.Select(e => e.Data.GetProperty("repository").GetString()).Should().Equal(first, second);
    }

    [Fact]
    public async Task An_event_stream_resumed_with_last_event_id_on_the_other_replica_misses_nothing()
    {
        var prefix = $"resume{Guid.NewGuid():N}"[..16];
        var query = $"?repository={prefix}/*";
        long lastSeen;
        using (var stream = await Extensions.EventsTests.OpenStreamAsync(stack.Client, query))
        {
            await stack.Client.PushImageAsync($"{prefix}/one", "v1");
            lastSeen = (await stream.ReadAsync(3)).Last().Id;
        }
        await stack.Client.PushImageAsync($"{prefix}/two", "v1");
        await stack.Client.PushImageAsync($"{prefix}/three", "v1");
        // nginx logs the stream once it has ended: the reconnect goes to the replica that did not serve it.
        var first = (await stack.UpstreamsOfAsync($"repository={prefix}", 1)).Should().ContainSingle().Which;
        using var other = stack.Replicas.Single(r => r.HostPort != first).CreateClient();

        using var resumed = await Extensions.EventsTests.OpenStreamAsync(other, query, lastEventId: lastSeen);
        var missed = await resumed.ReadAsync(6);

        missed.Select(e => e.Data.GetProperty("repository").GetString()).Distinct().Should().Equal($"{prefix}/two", $"{prefix}/three");
        missed.Select(e => e.Id).Should().OnlyContain(id => id > lastSeen).And.BeInAscendingOrder();
    }

    [Fact]
    public async Task Webhooks_for_pushes_to_both_replicas_are_delivered_once_each_in_order()
    {
        // Each replica runs a dispatcher; one holds the lease and delivers what either replica wrote.
        await using var receiver = new Infrastructure.WebhookReceiver(Infrastructure.WebhookReceiver.FreePort());
        await receiver.StartAsync();
        var hooked = new ScaleOutStack(Extensions.EventsTests.WebhookSettings(receiver), $"scale-out-{Guid.NewGuid():N}");
        try
        {
            await hooked.InitializeAsync();
            var repos = Enumerable.Range(0, 4).Select(_ => Infrastructure.RegistryFixture.NewRepo("hooks")).ToList();

            foreach (var repo in repos) await hooked.Client.PushImageAsync(repo, "v1");
            await Extensions.EventsTests.Eventually(() => receiver.Received.Count >= 12, "twelve events delivered");

            var received = receiver.Received.ToList();
            received.Select(r => r.Id).Should().OnlyHaveUniqueItems().And.BeInAscendingOrder();
            received.Should().HaveCount(12);
            received.Select(r => r.Repository).Distinct().Should().Equal(repos);
        }
        finally
        {
            await hooked.DisposeAsync();
        }
    }
}
