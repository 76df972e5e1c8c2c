using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Registry.Storage.Metadata;
using Registry.Tests.Conformance;
using Registry.Tests.Infrastructure;

namespace Registry.Tests.Protocol;

/// <summary>Limits and decisions that keep one client or one request from costing the registry too much, and that keep the answers honest.</summary>
public class HygieneTests
{
    // ---- upload sessions per client ----

    [Fact]
    public async Task A_client_at_its_session_cap_gets_429_TOOMANYREQUESTS()
    {
        await using var server = await RegistryServer.StartAsync(new Dictionary<string, string?>
        {
            ["Registry:Uploads:MaxSessionsPerClient"] = "2",
        });
        using var client = server.CreateClient();
        var repo = RegistryFixture.NewRepo("cap");
        await Oci.StartUploadAsync(client, repo);
        await Oci.StartUploadAsync(client, repo);

        var third = await client.PostAsync($"v2/{repo}/blobs/uploads/", null);

        await third.ShouldBeErrorAsync(HttpStatusCode.TooManyRequests, "TOOMANYREQUESTS");
    }

    [Fact]
    public async Task Another_client_can_open_sessions_while_one_client_holds_its_cap()
    {
        await using var server = await RegistryServer.StartAsync(new Dictionary<string, string?>
        {
            ["Registry:Uploads:MaxSessionsPerClient"] = "1",
        });
        using var first = server.CreateClient();
        using var second = ClientFrom(server, IPAddress.Parse("127.0.0.2"));
        var repo = RegistryFixture.NewRepo("cap");
        await Oci.StartUploadAsync(first, repo);
        (await first.PostAsync($"v2/{repo}/blobs/uploads/", null)).StatusCode.Should().Be(HttpStatusCode.TooManyRequests);

        var other = await second.PostAsync($"v2/{repo}/blobs/uploads/", null);

        other.StatusCode.Should().Be(HttpStatusCode.Accepted, await other.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_finished_session_frees_its_slot_for_the_client()
    {
        await using var server = await RegistryServer.StartAsync(new Dictionary<string, string?>
        {
            ["Registry:Uploads:MaxSessionsPerClient"] = "1",
        });
        using var client = server.CreateClient();
        var repo = RegistryFixture.NewRepo("cap");
        var location = await Oci.StartUploadAsync(client, repo);
        (await client.DeleteAsync(location)).StatusCode.Should().Be(HttpStatusCode.NoContent);

        var next = await client.PostAsync($"v2/{repo}/blobs/uploads/", null);

        next.StatusCode.Should().Be(HttpStatusCode.Accepted);
    }

    /// <summary>A client whose connections come from another loopback address (Linux routes all of 127/8 to lo).</summary>
    private static HttpClient ClientFrom(RegistryServer server, IPAddress local) =>
        new(new SocketsHttpHandler
        {
            ConnectCallback = async (context, ct) =>
            {
                var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
                try
                {
                    socket.Bind(new IPEndPoint(local, 0));
                    await socket.ConnectAsync(context.DnsEndPoint, ct);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        })
        { BaseAddress = server.BaseAddress };

    // ---- tag details ----

    [Fact]
    public async Task Tag_details_pages_are_capped_whatever_n_asks()
    {
        await using var server = await RegistryServer.StartAsync(new Dictionary<string, string?>
        {
            ["Registry:Extensions:TagDetails:MaxPageSize"] = "2",
        });
        using var client = server.CreateClient();
        var repo = RegistryFixture.NewRepo("details");
        foreach (var tag in new[] { "a", "b", "c" }) await Infrastructure.Http.PushImageAsync(client, repo, tag);

        var response = await client.GetAsync($"v2/{repo}/_registry/tags/details?n=1000");

        var tags = (await response.JsonAsync()).GetProperty("tags").EnumerateArray().Select(t => t.GetProperty("name").GetString());
        tags.Should().Equal("a", "b");
        response.NextLink().Should().Contain("last=b");
    }

    [Fact]
    public async Task Tag_details_ends_a_page_early_when_its_parse_budget_is_spent_and_links_to_the_rest()
    {
        await using var server = await RegistryServer.StartAsync(new Dictionary<string, string?>
        {
            ["Registry:Extensions:TagDetails:MaxBytesPerRequest"] = "1",
        });
        using var client = server.CreateClient();
        var repo = RegistryFixture.NewRepo("details");
        foreach (var tag in new[] { "a", "b", "c" }) await Infrastructure.Http.PushImageAsync(client, repo, tag);

        var seen = new List<string>();
        var pages = 0;
        string? next = $"v2/{repo}/_registry/tags/details";
        while (next is not null)
        {
            var response = await client.GetAsync(next.TrimStart('/'));
            response.StatusCode.Should().Be(HttpStatusCode.OK);
            seen.AddRange((await response.JsonAsync()).GetProperty("tags").EnumerateArray().Select(t => t.GetProperty("name").GetString()!));
            next = response.NextLink();
            pages++;
        }

        seen.Should().Equal("a", "b", "c");
        pages.Should().Be(3, "each page stops after the first tag once the budget is spent");
    }

    // ---- discovery URLs ----

    [Fact]
    public async Task Discovery_urls_come_from_the_configured_public_url()
    {
        await using var server = await RegistryServer.StartAsync(new Dictionary<string, string?>
        {
            ["Registry:Http:PublicUrl"] = "https://registry.example.com/",
        });
        using var client = server.CreateClient();

        var document = await Infrastructure.Http.GetJsonAsync(client, "v2/_oci/ext/discover");

        document.GetProperty("extensions").EnumerateArray().Select(e => e.GetProperty("url").GetString())
            .Should().NotBeEmpty().And.OnlyContain(url => url!.StartsWith("https://registry.example.com/docs/extensions/"));
    }

    [Fact]
    public async Task Discovery_urls_follow_the_host_header_without_a_public_url()
    {
        await using var server = await RegistryServer.StartAsync(new Dictionary<string, string?>());
        using var client = server.CreateClient();

        var document = await Infrastructure.Http.GetJsonAsync(client, "v2/_oci/ext/discover");

        document.GetProperty("extensions").EnumerateArray().Select(e => e.GetProperty("url").GetString())
            .Should().OnlyContain(url => url!.StartsWith($"http://{server.HostPort}/docs/extensions/"));
    }

    [Fact]
    public async Task A_public_url_that_is_not_an_absolute_http_url_stops_start_up()
    {
        var start = () => RegistryServer.StartAsync(new Dictionary<string, string?> { ["Registry:Http:PublicUrl"] = "registry.example.com" });

        await start.Should().ThrowAsync<Microsoft.Extensions.Options.OptionsValidationException>()
            .WithMessage("*Registry:Http:PublicUrl*");
    }

    // ---- 507 only for a full disk ----

    [Fact]
    public async Task An_io_error_that_is_not_a_full_disk_answers_500_not_507_and_keeps_nothing()
    {
        await using var server = await RegistryServer.StartAsync(new Dictionary<string, string?>());
        using var client = server.CreateClient();
        var repo = RegistryFixture.NewRepo("io");
        // Bigger than Registry:Storage:InlineBytes, so that it is published as a file.
        var blob = Oci.RandomBlob(20_000);
        var hex = blob.Digest["sha256:".Length..];
        // A file where the blob's fan-out folder belongs: publishing fails with EEXIST/ENOTDIR, not ENOSPC.
        var fanOut = Path.Combine(server.StoragePath!, "blobs", "sha256", hex[..2]);
        if (Directory.Exists(fanOut)) Directory.Delete(fanOut, recursive: true);
        Directory.CreateDirectory(Path.GetDirectoryName(fanOut)!);
        await File.WriteAllTextAsync(fanOut, "in the way");

        var response = await client.PostAsync($"v2/{repo}/blobs/uploads/?digest={blob.Digest}", Oci.Octets(blob.Bytes));

        await response.ShouldBeErrorAsync(HttpStatusCode.InternalServerError, "UNKNOWN");
        (await client.SendAsync(HttpMethod.Head, $"v2/{repo}/blobs/{blob.Digest}")).StatusCode.Should().Be(HttpStatusCode.NotFound);
        Directory.EnumerateFiles(Path.Combine(server.StoragePath!, "tmp")).Should().BeEmpty();
    }

    // ---- webhook cursors ----

    [Fact]
    public async Task Webhook_cursors_live_in_the_schema_of_a_new_database()
    {
        await using var server = await RegistryServer.StartAsync(new Dictionary<string, string?>());
        await server.StopAsync();

        await using var connection = new SqliteConnection($"Data Source={Path.Combine(server.StoragePath!, "metadata.db")};Mode=ReadOnly;Pooling=false");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'webhook_cursors'";

        ((long)(await command.ExecuteScalarAsync())!).Should().Be(1);
    }

    [Fact]
    public async Task A_webhook_cursor_is_written_through_the_store_and_read_back_after_a_restart()
    {
        var storage = Directory.CreateTempSubdirectory("registry-cursor-").FullName;
        try
        {
            await using var receiver = new WebhookReceiver(WebhookReceiver.FreePort());
            await receiver.StartAsync();
            var settings = new Dictionary<string, string?>
            {
                ["Registry:Extensions:Events:Webhooks:0:Url"] = receiver.Url,
                ["Registry:Extensions:Events:Webhooks:0:Name"] = "audit",
            };
            long acknowledged;
            await using (var first = await RegistryServer.StartAsync(settings, storage))
            {
                using var client = first.CreateClient();
                await Infrastructure.Http.PushImageAsync(client, "cursor/app", "v1");
                await Eventually(() => receiver.Received.Count >= 3);
                acknowledged = receiver.Received.Max(r => r.Id);
                var cursors = first.Services.GetRequiredService<IDeliveryCursors>();
                await Eventually(async () => await cursors.GetCursorAsync("audit", CancellationToken.None) == acknowledged);
            }

            await using var second = await RegistryServer.StartAsync(settings, storage);

            (await second.Services.GetRequiredService<IDeliveryCursors>().GetCursorAsync("audit", CancellationToken.None))
                .Should().Be(acknowledged);
        }
        finally
        {
            Directory.Delete(storage, recursive: true);
        }
    }

    private static Task Eventually(Func<bool> condition) => Eventually(() => Task.FromResult(condition()));

    private static async Task Eventually(Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline) throw new Xunit.Sdk.XunitException("condition not met within 30 s");
            await Task.Delay(50);
        }
    }
}
