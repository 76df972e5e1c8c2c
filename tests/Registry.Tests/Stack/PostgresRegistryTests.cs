using System.Net;
using System.Text.Json;
using Registry.Tests.Infrastructure;

namespace Registry.Tests.Stack;

/// <summary>
/// The registry with its metadata in PostgreSQL (<c>Registry:Metadata:Kind=postgres</c>) over HTTP: alone, and as two
/// replicas (two hosts, each with its own store, connection pool and LISTEN connection) sharing one database and one
/// storage folder.
/// </summary>
public sealed class PostgresRegistryTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    private static Dictionary<string, string?> Postgres(string connectionString) => new()
    {
        ["Registry:Metadata:Kind"] = "postgres",
        ["Registry:Metadata:ConnectionString"] = connectionString,
    };

    private static async Task Eventually(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"not within {Patience}: {what}");
            await Task.Delay(50);
        }
    }

    [Fact]
    public async Task Garbage_collection_with_the_metadata_in_postgres_deletes_an_unreferenced_blob_and_records_the_run()
    {
        // Pins are rows in the shared database and a run holds the gc lease, so collection runs with PostgreSQL too.
        await using var server = await RegistryServer.StartAsync(new Dictionary<string, string?>(
            Postgres(await PostgresStack.CreateDatabaseAsync())) { ["Registry:Gc:GracePeriod"] = "00:00:00" });
        using var client = server.CreateClient();
        var layer = System.Security.Cryptography.RandomNumberGenerator.GetBytes(3000);
        var image = await client.PushImageAsync("pg/gc", "v1", layer);
        (await client.DeleteAsync($"v2/pg/gc/manifests/{image.Digest}")).StatusCode.Should().Be(HttpStatusCode.Accepted);

        var response = await client.PostAsync("v2/_registry/gc/runs", null);
        var run = await Registry.Tests.Gc.Gc.WaitForRunAsync(client, response.Headers.Location!.ToString());

        response.StatusCode.Should().Be(HttpStatusCode.Accepted);
        run.GetProperty("report").GetProperty("deleted").EnumerateArray().Select(e => e.GetString())
            .Should().Contain($"blob {Http.Sha256(layer)}");
        File.Exists(Registry.Tests.Gc.Gc.BlobFile(server.StoragePath!, Http.Sha256(layer))).Should().BeFalse();
        using var runs = JsonDocument.Parse(await client.GetStringAsync("v2/_registry/gc/runs"));
        runs.RootElement.GetProperty("runs").GetArrayLength().Should().Be(1);
    }

    [Fact]
    public async Task Push_pull_tag_list_referrers_and_delete_work_with_the_metadata_in_postgres()
    {
        await using var server = await RegistryServer.StartAsync(Postgres(await PostgresStack.CreateDatabaseAsync()));
        using var client = server.CreateClient();

        var (bytes, digest) = await client.PushImageAsync("pg/app", "v1");
        await client.PushImageAsync("pg/app", "v2");
        var (_, signature) = await client.PushArtifactAsync("pg/app", digest, "application/vnd.example.sig");

        var pulled = await client.GetAsync("v2/pg/app/manifests/v1");
        pulled.StatusCode.Should().Be(HttpStatusCode.OK);
        (await pulled.Content.ReadAsByteArrayAsync()).Should().Equal(bytes);
        (await client.GetJsonAsync("v2/pg/app/tags/list")).GetProperty("tags").EnumerateArray().Select(t => t.GetString())
            .Should().Equal("v1", "v2");
        (await client.GetJsonAsync($"v2/pg/app/referrers/{digest}")).GetProperty("manifests").EnumerateArray()
            .Select(m => m.GetProperty("digest").GetString()).Should().Equal(signature);
        (await client.DeleteAsync($"v2/pg/app/manifests/{digest}")).StatusCode.Should().Be(HttpStatusCode.Accepted);
        (await client.GetAsync("v2/pg/app/manifests/v1")).StatusCode.Should().Be(HttpStatusCode.NotFound);
        (await client.GetJsonAsync("v2/pg/app/tags/list")).GetProperty("tags").EnumerateArray().Select(t => t.GetString())
            .Should().Equal("v2");
    }

    [Fact]
    public async Task Repository_search_finds_filters_and_sizes_repositories_with_the_metadata_in_postgres()
    {
        await using var server = await RegistryServer.StartAsync(Postgres(await PostgresStack.CreateDatabaseAsync()));
        using var client = server.CreateClient();
        var layer = new byte[5000];
        var first = await client.PushImageAsync("team/frontend", "v1", layer);
        var second = await client.PushImageAsync("team/frontend", "v2", layer);
        var (_, backend) = await client.PushImageAsync("team/backend", "v1");
        await client.PushArtifactAsync("team/backend", backend, "application/vnd.example.sbom");
        await client.PushImageAsync("other/tools", "v1");

        var response = await client.GetAsync("v2/_registry/search/repositories?prefix=team/");
        var byPrefix = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("repositories");
        var bySubstring = (await client.GetJsonAsync("v2/_registry/search/repositories?q=front")).GetProperty("repositories");
        var byArtifactType = (await client.GetJsonAsync(
            "v2/_registry/search/repositories?artifactType=application/vnd.example.sbom")).GetProperty("repositories");

        response.StatusCode.Should().Be(HttpStatusCode.OK);
        byPrefix.EnumerateArray().Select(r => r.GetProperty("name").GetString()).Should().Equal("team/backend", "team/frontend");
        byArtifactType.EnumerateArray().Select(r => r.GetProperty("name").GetString()).Should().Equal("team/backend");
        var hit = bySubstring.EnumerateArray().Should().ContainSingle().Subject;
        hit.GetProperty("name").GetString().Should().Be("team/frontend");
        hit.GetProperty("tagCount").GetInt32().Should().Be(2);
        // The shared layer counts once: two configs, one layer, two manifests.
        var configs = await Task.WhenAll(new[] { first, second }.Select(async m =>
            (await client.GetJsonAsync($"v2/team/frontend/manifests/{m.Digest}")).GetProperty("config").GetProperty("size").GetInt64()));
        hit.GetProperty("size").GetInt64().Should().Be(configs.Sum() + layer.Length + first.Bytes.Length + second.Bytes.Length);
        hit.GetProperty("lastPushed").GetDateTimeOffset().Should().BeCloseTo(DateTimeOffset.UtcNow, TimeSpan.FromMinutes(1));
    }

    [Fact]
    public async Task Tag_details_list_each_tag_with_its_manifest_with_the_metadata_in_postgres()
    {
        await using var server = await RegistryServer.StartAsync(Postgres(await PostgresStack.CreateDatabaseAsync()));
        using var client = server.CreateClient();
        var layer = new byte[4096];
        var (bytes, digest) = await client.PushImageAsync("pg/details", "v1", layer);
        await client.PushIndexAsync("pg/details", "multi");
        var configSize = (await client.GetJsonAsync("v2/pg/details/manifests/v1")).GetProperty("config").GetProperty("size").GetInt64();

        var response = await client.GetAsync("v2/pg/details/_registry/tags/details?n=2");
        var page = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;

        response.StatusCode.Should().Be(HttpStatusCode.OK);
        page.GetProperty("tags").EnumerateArray().Select(t => t.GetProperty("name").GetString())
            .Should().Equal("amd64-multi", "arm64-multi");
        var rest = (await client.GetJsonAsync("v2/pg/details/_registry/tags/details?last=arm64-multi")).GetProperty("tags");
        rest.EnumerateArray().Select(t => t.GetProperty("name").GetString()).Should().Equal("multi", "v1");
        var v1 = rest[1];
        v1.GetProperty("digest").GetString().Should().Be(digest);
        v1.GetProperty("mediaType").GetString().Should().Be("application/vnd.oci.image.manifest.v1+json");
        v1.GetProperty("size").GetInt64().Should().Be(bytes.Length + configSize + layer.Length);
        rest[0].GetProperty("mediaType").GetString().Should().Be("application/vnd.oci.image.index.v1+json");
    }

    [Fact]
    public async Task A_manifest_refused_for_a_missing_blob_leaves_no_repository_in_postgres()
    {
        await using var server = await RegistryServer.StartAsync(Postgres(await PostgresStack.CreateDatabaseAsync()));
        using var client = server.CreateClient();
        var manifest = """
            {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
             "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":2},
             "layers":[]}
            """u8.ToArray();

        var response = await client.PutManifestAsync("pg/refused", "v1", manifest);

        response.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        (await response.ErrorCodeAsync()).Should().Be("MANIFEST_BLOB_UNKNOWN");
        (await client.GetJsonAsync("v2/_catalog")).GetProperty("repositories").EnumerateArray().Should().BeEmpty();
    }

    [Fact]
    public async Task Two_replicas_sharing_one_database_and_storage_see_each_other_s_pushes()
    {
        var database = await PostgresStack.CreateDatabaseAsync();
        var storage = Directory.CreateTempSubdirectory("pg-replicas-").FullName;
        try
        {
            await using var a = await RegistryServer.StartAsync(Postgres(database), storage);
            await using var b = await RegistryServer.StartAsync(Postgres(database), storage);
            using var clientA = a.CreateClient();
            using var clientB = b.CreateClient();

            var (bytes, _) = await clientA.PushImageAsync("shared/one", "v1");
            await clientB.PushImageAsync("shared/two", "v1");
            await clientB.PushImageAsync("shared/one", "v2");

            (await clientB.GetJsonAsync("v2/shared/one/tags/list")).GetProperty("tags").EnumerateArray()
                .Select(t => t.GetString()).Should().Equal("v1", "v2");
            (await clientA.GetJsonAsync("v2/shared/one/tags/list")).GetProperty("tags").EnumerateArray()
                .Select(t => t.GetString()).Should().Equal("v1", "v2");
            (await clientA.GetJsonAsync("v2/_catalog")).GetProperty("repositories").EnumerateArray()
                .Select(r => r.GetString()).Should().Equal("shared/one", "shared/two");
            (await (await clientB.GetAsync("v2/shared/one/manifests/v1")).Content.ReadAsByteArrayAsync()).Should().Equal(bytes);
        }
        finally
        {
            Directory.Delete(storage, recursive: true);
        }
    }

    [Fact]
    public async Task A_push_to_one_replica_reaches_the_event_stream_of_the_other()
    {
        var database = await PostgresStack.CreateDatabaseAsync();
        var storage = Directory.CreateTempSubdirectory("pg-sse-").FullName;
        try
        {
            await using var a = await RegistryServer.StartAsync(Postgres(database), storage);
            await using var b = await RegistryServer.StartAsync(Postgres(database), storage);
            using var clientA = a.CreateClient();
            using var clientB = b.CreateClient();
            using var request = new HttpRequestMessage(HttpMethod.Get, "v2/_registry/events/stream?since=0");
            using var response = await clientB.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            response.StatusCode.Should().Be(HttpStatusCode.OK);
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());

            var (_, digest) = await clientA.PushImageAsync("sse/across", "v1");

            using var timeout = new CancellationTokenSource(Patience);
            var pushed = new List<JsonElement>();
            while (pushed.Count < 1)
            {
                var line = await reader.ReadLineAsync(timeout.Token) ?? throw new EndOfStreamException();
                if (!line.StartsWith("data: ", StringComparison.Ordinal)) continue;
                var data = JsonDocument.Parse(line[6..]).RootElement.Clone();
                if (data.GetProperty("action").GetString() == "manifest.push") pushed.Add(data);
            }
            pushed[0].GetProperty("digest").GetString().Should().Be(digest);
            pushed[0].GetProperty("repository").GetString().Should().Be("sse/across");
        }
        finally
        {
            Directory.Delete(storage, recursive: true);
        }
    }

    [Fact]
    public async Task A_push_to_one_replica_is_delivered_by_the_webhook_of_the_other()
    {
        var database = await PostgresStack.CreateDatabaseAsync();
        var storage = Directory.CreateTempSubdirectory("pg-hook-").FullName;
        await using var receiver = new WebhookReceiver(WebhookReceiver.FreePort());
        await receiver.StartAsync();
        try
        {
            await using var a = await RegistryServer.StartAsync(Postgres(database), storage);
            var hooked = Postgres(database);
            hooked["Registry:Extensions:Events:Webhooks:0:Name"] = "across";
            hooked["Registry:Extensions:Events:Webhooks:0:Url"] = receiver.Url;
            hooked["Registry:Extensions:Events:Webhooks:0:Repositories:0"] = "*";
            await using var b = await RegistryServer.StartAsync(hooked, storage);
            using var clientA = a.CreateClient();

            await clientA.PushImageAsync("hook/across", "v1");

            await Eventually(() => Task.FromResult(receiver.Received.Any(r => r.Action == "tag.create")), "the tag event delivered");
            receiver.Received.Should().OnlyContain(r => r.Repository == "hook/across");
        }
        finally
        {
            Directory.Delete(storage, recursive: true);
        }
    }

    private static Dictionary<string, string?> Hooked(string database, WebhookReceiver receiver)
    {
        var settings = Postgres(database);
        settings["Registry:Extensions:Events:Webhooks:0:Name"] = "both";
        settings["Registry:Extensions:Events:Webhooks:0:Url"] = receiver.Url;
        settings["Registry:Extensions:Events:Webhooks:0:Repositories:0"] = "*";
        return settings;
    }

    [Fact]
    public async Task Replicas_with_the_same_webhook_deliver_each_event_once_and_the_survivor_takes_over()
    {
        var database = await PostgresStack.CreateDatabaseAsync();
        var storage = Directory.CreateTempSubdirectory("pg-hooks-").FullName;
        await using var receiver = new WebhookReceiver(WebhookReceiver.FreePort());
        await receiver.StartAsync();
        try
        {
            var a = await RegistryServer.StartAsync(Hooked(database, receiver), storage);
            using (var clientA = a.CreateClient())
            {
                // A alone takes the webhook's lease and delivers.
                await clientA.PushImageAsync("hooks/one", "v1");
                await Eventually(() => Task.FromResult(receiver.Received.Any(r => r.Repository == "hooks/one" && r.Action == "tag.create")),
                    "the first push delivered");
            }
            await using var b = await RegistryServer.StartAsync(Hooked(database, receiver), storage);
            using var clientB = b.CreateClient();
            await clientB.PushImageAsync("hooks/two", "v1");
            await Eventually(() => Task.FromResult(receiver.Received.Any(r => r.Repository == "hooks/two" && r.Action == "tag.create")),
                "the push to the replica without the lease delivered by the one with it");

            await a.DisposeAsync();
            await clientB.PushImageAsync("hooks/three", "v1");
            await Eventually(() => Task.FromResult(receiver.Received.Any(r => r.Repository == "hooks/three" && r.Action == "tag.create")),
                "the push after the holder stopped delivered by the survivor");

            var ids = receiver.Received.Select(r => r.Id).ToList();
            ids.Should().OnlyHaveUniqueItems("one replica at a time delivers the webhook").And.BeInAscendingOrder();
            receiver.Received.Select(r => r.Repository).Distinct().Should().Equal("hooks/one", "hooks/two", "hooks/three");
        }
        finally
        {
            Directory.Delete(storage, recursive: true);
        }
    }

    [Theory]
    [InlineData("postgres", null, "Registry:Metadata:ConnectionString must be set")]
    [InlineData("mysql", null, "Registry:Metadata:Kind must be 'sqlite' or 'postgres'")]
    [InlineData("postgres", "Host=127.0.0.1;Nonsense=1", "Registry:Metadata:ConnectionString is not a valid PostgreSQL connection string")]
    public async Task Invalid_metadata_settings_stop_the_start_with_a_clear_error(string kind, string? connectionString, string error)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Registry:Metadata:Kind"] = kind,
            ["Registry:Metadata:ConnectionString"] = connectionString,
        };

        var start = () => RegistryServer.StartAsync(settings);

        (await start.Should().ThrowAsync<Exception>()).Which.ToString().Should().Contain(error);
    }

    [Fact]
    public async Task An_unreachable_database_stops_the_start_naming_it()
    {
        var settings = Postgres($"Host=127.0.0.1;Port={WebhookReceiver.FreePort()};Database=absent;Username=nobody;Password=x;Timeout=3");

        var start = () => RegistryServer.StartAsync(settings);

        (await start.Should().ThrowAsync<Exception>()).Which.ToString().Should()
            .Contain("could not open the PostgreSQL database 'absent' on 127.0.0.1").And.NotContain("Password=x");
    }
}
