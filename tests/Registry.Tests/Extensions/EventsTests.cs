using System.Net;
using System.Text.Json;
using Registry.Tests.Infrastructure;

namespace Registry.Tests.Extensions;

public class EventsTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    internal static async Task Eventually(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"not within {Patience}: {what}");
            await Task.Delay(50);
        }
    }

    internal static Dictionary<string, string?> WebhookSettings(WebhookReceiver receiver, string? repositories = null) => new()
    {
        ["Registry:Extensions:Events:Webhooks:0:Name"] = "test",
        ["Registry:Extensions:Events:Webhooks:0:Url"] = receiver.Url,
        ["Registry:Extensions:Events:Webhooks:0:Headers:Authorization"] = "Bearer secret",
        ["Registry:Extensions:Events:Webhooks:0:Repositories:0"] = repositories ?? "*",
        ["Registry:Extensions:Events:Webhooks:0:RetryDelay"] = "00:00:00.05",
        ["Registry:Extensions:Events:Webhooks:0:MaxRetryDelay"] = "00:00:00.5",
        ["Registry:Extensions:Events:Webhooks:0:BreakDuration"] = "00:00:00.5",
        ["Registry:Extensions:Events:Webhooks:0:Timeout"] = "00:00:02",
    };

    [Fact]
    public async Task Every_kind_of_change_becomes_an_event_in_order()
    {
        await using var server = await RegistryServer.StartAsync(new Dictionary<string, string?>());
        using var client = server.CreateClient();
        using var stream = await OpenStreamAsync(client, "?since=0");

        var (bytes, digest) = await client.PushImageAsync("ev/app", "v1");
        await client.PutManifestAsync("ev/app", "v2", bytes);
        var (_, other) = await client.PushImageAsync("ev/app", "v2");
        await client.DeleteAsync("v2/ev/app/manifests/v1");
        await client.DeleteAsync($"v2/ev/app/manifests/{other}");
        var blob = await client.PushBlobAsync("ev/app", [1]);
        await client.DeleteAsync($"v2/ev/app/blobs/{blob}");
        var events = await stream.ReadAsync(11);

        events.Select(e => e.Action).Should().Equal(
            "repository.create", "manifest.push", "tag.create",
            "manifest.push", "tag.create",
            "manifest.push", "tag.update",
            "tag.delete",
            "tag.delete", "manifest.delete",
            "blob.delete");
        events.Select(e => e.Id).Should().BeInAscendingOrder();
        events[1].Data.GetProperty("digest").GetString().Should().Be(digest);
        events[7].Data.GetProperty("tag").GetString().Should().Be("v1");
    }

    [Fact]
    public async Task An_sse_client_that_disconnects_resumes_from_last_event_id()
    {
        await using var server = await RegistryServer.StartAsync(new Dictionary<string, string?>());
        using var client = server.CreateClient();
        long lastSeen;
        using (var stream = await OpenStreamAsync(client, ""))
        {
            await client.PushImageAsync("sse/one", "v1");
            lastSeen = (await stream.ReadAsync(3)).Last().Id;
        }

        await client.PushImageAsync("sse/two", "v1");
        await client.PushImageAsync("sse/three", "v1");
        using var resumed = await OpenStreamAsync(client, "", lastEventId: lastSeen);
        var missed = await resumed.ReadAsync(6);

        missed.Select(e => e.Data.GetProperty("repository").GetString()).Distinct().Should().Equal("sse/two", "sse/three");
        missed[0].Id.Should().Be(lastSeen + 1);
    }

    [Fact]
    public async Task The_stream_filters_by_repository_pattern_and_action()
    {
        await using var server = await RegistryServer.StartAsync(new Dictionary<string, string?>());
        using var client = server.CreateClient();
        using var stream = await OpenStreamAsync(client, "?repository=keep/*&action=tag.create");

        await client.PushImageAsync("drop/app", "v1");
        await client.PushImageAsync("keep/app", "v1");
        await client.PushImageAsync("keep/app", "v2");
        var events = await stream.ReadAsync(2);

        events.Select(e => $"{e.Data.GetProperty("repository").GetString()}:{e.Data.GetProperty("tag").GetString()}")
            .Should().Equal("keep/app:v1", "keep/app:v2");
    }

    [Fact]
    public async Task An_invalid_last_event_id_is_rejected()
    {
        await using var server = await RegistryServer.StartAsync(new Dictionary<string, string?>());
        using var client = server.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, "v2/_registry/events/stream");
        request.Headers.Add("Last-Event-ID", "abc");

        var response = await client.SendAsync(request);

        response.StatusCode.Should().Be(HttpStatusCode.BadRequest);
    }

    [Fact]
    public async Task Webhooks_are_retried_until_the_receiver_accepts_them()
    {
        await using var receiver = new WebhookReceiver(WebhookReceiver.FreePort()) { FailFirst = 4 };
        await receiver.StartAsync();
        await using var server = await RegistryServer.StartAsync(WebhookSettings(receiver, "hook/*"));
        using var client = server.CreateClient();

        await client.PushImageAsync("hook/app", "v1");
        await client.PushImageAsync("ignored/app", "v1");
        await Eventually(() => receiver.Received.Count >= 3, "three events delivered");

        receiver.Received.Select(r => r.Action).Should().Equal("repository.create", "manifest.push", "tag.create");
        receiver.Received.Should().OnlyContain(r => r.Repository == "hook/app" && r.Authorization == "Bearer secret");
        receiver.Attempts.Should().BeGreaterThanOrEqualTo(7);
    }

    [Fact]
    public async Task No_event_is_lost_when_the_receiver_is_down_across_a_registry_restart()
    {
        var storage = Directory.CreateTempSubdirectory("registry-events-").FullName;
        try
        {
            await using var receiver = new WebhookReceiver(WebhookReceiver.FreePort());
            await receiver.StartAsync();
            var settings = WebhookSettings(receiver);
            await using (var first = await RegistryServer.StartAsync(settings, storage))
            {
                using var client = first.CreateClient();
                await client.PushImageAsync("restart/a", "v1");
                await Eventually(() => receiver.Received.Count >= 3, "first events delivered");
                await receiver.StopAsync();
                await client.PushImageAsync("restart/b", "v1");
                await client.DeleteAsync("v2/restart/a/manifests/v1");
                await first.StopAsync();
            }

            await receiver.StartAsync();
            await using var second = await RegistryServer.StartAsync(settings, storage);
            using var client2 = second.CreateClient();
            await client2.PushImageAsync("restart/c", "v1");
            await Eventually(() => receiver.Received.Select(r => r.Id).Distinct().Count() >= 10, "all events delivered");

            var ids = receiver.Received.Select(r => r.Id).Distinct().Order().ToList();
            ids.Should().Equal(Enumerable.Range((int)ids[0], 10).Select(i => (long)i), "no event may be missing");
            receiver.Received.Select(r => r.Repository).Distinct().Should().BeEquivalentTo("restart/a", "restart/b", "restart/c");
        }
        finally
        {
            Directory.Delete(storage, recursive: true);
        }
    }

    internal sealed record ServerEvent(long Id, string Action, JsonElement Data);

    internal sealed class EventStream(HttpResponseMessage response, StreamReader reader) : IDisposable
    {
        public async Task<List<ServerEvent>> ReadAsync(int count)
        {
            using var timeout = new CancellationTokenSource(Patience);
            var events = new List<ServerEvent>();
            long id = 0;
            string? action = null;
            while (events.Count < count)
            {
                var line = await reader.ReadLineAsync(timeout.Token) ?? throw new EndOfStreamException();
                if (line.StartsWith("id: ")) id = long.Parse(line[4..]);
                else if (line.StartsWith("event: ")) action = line[7..];
                else if (line.StartsWith("data: "))
                    events.Add(new ServerEvent(id, action!, JsonDocument.Parse(line[6..]).RootElement.Clone()));
            }
            return events;
        }

        public void Dispose()
        {
            reader.Dispose();
            response.Dispose();
        }
    }

    internal static async Task<EventStream> OpenStreamAsync(HttpClient client, string query, long? lastEventId = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, $"v2/_registry/events/stream{query}");
        if (lastEventId is { } id) request.Headers.Add("Last-Event-ID", id.ToString());
        var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        response.StatusCode.Should().Be(HttpStatusCode.OK);
        response.Content.Headers.ContentType!.MediaType.Should().Be("text/event-stream");
        return new EventStream(response, new StreamReader(await response.Content.ReadAsStreamAsync()));
    }
}
