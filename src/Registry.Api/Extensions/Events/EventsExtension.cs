using System.Text;
using Microsoft.Extensions.Options;
using Registry.Api.Extensions.Framework;
using Registry.Api.Http;
using Registry.Storage.Metadata;
using Registry.Storage.Model;

namespace Registry.Api.Extensions.Events;

/// <summary>
/// Change events from the outbox that the metadata store writes in the same transaction as each change: streamed with
/// Server-Sent Events (<c>GET /v2/_registry/events/stream</c>, resumable with <c>Last-Event-ID</c>) and delivered to
/// configured webhooks, at least once, in order, by <see cref="WebhookDispatcher"/>. Doc: docs/extensions/_registry/events.md.
/// </summary>
internal sealed class EventsExtension : RegistryExtension
{
    private const int BatchSize = 500;
    private static readonly TimeSpan KeepAlive = TimeSpan.FromSeconds(15);

    public override string Key => "Events";
    public override ExtensionNamespace Namespace => ExtensionNamespace.Registry;
    public override string Document => "_registry/events.md";

    public override void ConfigureServices(IServiceCollection services, IConfigurationSection options)
    {
        services.AddOptions<EventsOptions>().Bind(options).ValidateOnStart();
        services.AddSingleton<IValidateOptions<EventsOptions>, EventsOptionsValidator>();
        services.AddSingleton<WebhookDispatcher>();
        services.AddHostedService(provider => provider.GetRequiredService<WebhookDispatcher>());
    }

    public override IEnumerable<ExtensionEndpoint> Endpoints =>
    [
        new(ExtensionScope.Registry, "events", "stream", HttpMethods.Get, RequiredAccess.RegistryAdmin, StreamAsync),
    ];

    /// <summary>
    /// Streams events after <c>Last-Event-ID</c> (or <c>?since=</c>; neither: from now on) until the client leaves.
    /// Each event is <c>id:</c>, <c>event: &lt;action&gt;</c> and <c>data: &lt;json&gt;</c>; a comment line every 15 s keeps
    /// idle connections open.
    /// </summary>
    private static async Task<IResult> StreamAsync(ExtensionRequest request)
    {
        var http = request.Http;
        var store = request.RequestServices.GetRequiredService<IEventOutbox>();
        var resume = http.Request.Headers["Last-Event-ID"].FirstOrDefault() ?? http.Request.Query["since"].FirstOrDefault();
        long cursor;
        if (resume is null) cursor = await store.LatestEventIdAsync(request.Aborted);
        else if (!long.TryParse(resume, out cursor) || cursor < 0)
            return new RegistryError(ErrorCode.InvalidParameters, $"invalid event id '{resume}'");
        var filter = new EventFilter(
            http.Request.Query["repository"].Where(p => !string.IsNullOrEmpty(p)).Select(p => p!).ToList(),
            http.Request.Query["action"].SelectMany(a => (a ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries)).ToList());

        // Only events of repositories the caller may pull, whatever the filter asks.
        var pullable = await http.RequestServices.GetRequiredService<IAccessPolicy>().PullableAsync(http);

        var response = http.Response;
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        response.Headers["X-Accel-Buffering"] = "no";
        if (HttpMethods.IsHead(http.Request.Method)) return Results.Empty;
        await response.Body.FlushAsync(request.Aborted);

        try
        {
            while (!request.Aborted.IsCancellationRequested)
            {
                var changed = store.WaitForChangeAsync(request.Aborted);
                var events = await store.ReadEventsAsync(cursor, BatchSize, request.Aborted);
                foreach (var e in events)
                {
                    cursor = e.Id;
                    if (!filter.Matches(e)) continue;
                    if (pullable is not null
                        && (!RepositoryName.TryParse(e.Repository, out var repository) || !pullable(repository))) continue;
                    await response.WriteAsync($"id: {e.Id}\nevent: {e.Action}\ndata: ", request.Aborted);
                    await response.Body.WriteAsync(EventJson.Serialize(e), request.Aborted);
                    await response.WriteAsync("\n\n", request.Aborted);
                }
                await response.Body.FlushAsync(request.Aborted);
                if (events.Count == BatchSize) continue;
                if (await Task.WhenAny(changed, Task.Delay(KeepAlive, request.Aborted)) != changed)
                    await response.Body.WriteAsync(": keep-alive\n\n"u8.ToArray(), request.Aborted);
            }
        }
        catch (OperationCanceledException)
        {
            // The client left.
        }
        return Results.Empty;
    }
}
