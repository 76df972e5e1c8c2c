using System.Net.Http.Headers;
using Microsoft.Extensions.Options;
using Polly;
using Polly.CircuitBreaker;
using Polly.Retry;
using Polly.Timeout;
using Registry.Api.Observability;
using Registry.Storage.Metadata;
using Registry.Storage.Model;

namespace Registry.Api.Extensions.Events;

/// <summary>
/// Delivers outbox events to each webhook, in order and at least once, off the request path (a push never waits for
/// it). Each webhook has a durable cursor, the id of the last event it acknowledged, so a restart resends at most the
/// event that was in flight. Transient failures (network errors, timeouts, 408, 429, 5xx) are retried with
/// exponential backoff and jitter behind a circuit breaker per webhook (Polly); any other 4xx is a permanent refusal,
/// logged and skipped so one bad event cannot block the stream.
/// <para>
/// With several replicas sharing the metadata, one replica at a time delivers each webhook: the one holding its lease
/// (<see cref="ILeaseStore"/>), renewed as it delivers. The others wait; when the holder stops or dies, one of them
/// takes the lease over and resumes from the durable cursor, so delivery stays at least once (the event in flight
/// at a takeover may come twice).
/// </para>
/// </summary>
internal sealed class WebhookDispatcher(IEventOutbox store, IDeliveryCursors cursors, IOptions<EventsOptions> options,
    TimeProvider time, ILogger<WebhookDispatcher> logger, RegistryMetrics metrics, ILeaseStore leases) : BackgroundService
{
    private const int BatchSize = 100;
    private static readonly TimeSpan Poll = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan LeaseTtl = TimeSpan.FromSeconds(30);
    /// <summary>This process, as a lease holder.</summary>
    private readonly string _holder = $"{Environment.MachineName}/{Environment.ProcessId}/{Guid.NewGuid():N}";
    private readonly HttpClient _http = new(new SocketsHttpHandler { UseProxy = false, PooledConnectionLifetime = TimeSpan.FromMinutes(5) })
    {
        Timeout = Timeout.InfiniteTimeSpan,
    };

    private sealed class TransientDeliveryException(string message) : Exception(message);

    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        // Before the server takes requests: a new webhook starts from the current end of the outbox. Without webhooks
        // the database is left alone, which keeps start-up short.
        if (options.Value.Webhooks.Count > 0)
        {
            var latest = await store.LatestEventIdAsync(cancellationToken);
            foreach (var webhook in options.Value.Webhooks)
            {
                if (await cursors.GetCursorAsync(webhook.CursorName, cancellationToken) is null)
                    await cursors.SetCursorAsync(webhook.CursorName, latest, cancellationToken);
                metrics.WebhookConfigured(webhook.MetricName);
            }
        }
        await base.StartAsync(cancellationToken);
    }

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        Task.WhenAll(options.Value.Webhooks.Select(webhook => DeliverLoopAsync(webhook, stoppingToken)));

    public override void Dispose()
    {
        _http.Dispose();
        base.Dispose();
    }

    private async Task DeliverLoopAsync(WebhookOptions webhook, CancellationToken stoppingToken)
    {
        var pipeline = BuildPipeline(webhook, stoppingToken);
        var filter = new EventFilter(webhook.Repositories, webhook.Actions);
        long cursor;
        try
        {
            cursor = await cursors.GetCursorAsync(webhook.CursorName, stoppingToken) ?? 0;
        }
        catch (OperationCanceledException)
        {
            return;
        }
        var lease = "webhook:" + webhook.CursorName;
        var held = false;
        var renewedAt = DateTimeOffset.MinValue;
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                try
                {
                    var changed = store.WaitForChangeAsync(stoppingToken);
                    if (!await leases.TryAcquireLeaseAsync(lease, _holder, LeaseTtl, stoppingToken))
                    {
                        // Another replica delivers this webhook; look again in a while (it may stop).
                        held = false;
                        await Task.Delay(Poll, time, stoppingToken);
                        continue;
                    }
                    renewedAt = time.GetUtcNow();
                    if (!held)
                    {
                        // Taken over (or first taken): the previous holder advanced the cursor meanwhile.
                        cursor = await cursors.GetCursorAsync(webhook.CursorName, stoppingToken) ?? cursor;
                        held = true;
                    }
                    var events = await store.ReadEventsAsync(cursor, BatchSize, stoppingToken);
                    foreach (var e in events)
                    {
                        if (time.GetUtcNow() - renewedAt > LeaseTtl / 3)
                        {
                            if (!await leases.TryAcquireLeaseAsync(lease, _holder, LeaseTtl, stoppingToken))
                            {
                                held = false;
                                break;
                            }
                            renewedAt = time.GetUtcNow();
                        }
                        if (filter.Matches(e))
                            await pipeline.ExecuteAsync(static (state, ct) => state.Self.SendAsync(state.Webhook, state.Event, ct),
                                (Self: this, Webhook: webhook, Event: e), stoppingToken);
                        cursor = e.Id;
                        await cursors.SetCursorAsync(webhook.CursorName, cursor, stoppingToken);
                    }
                    if (held && events.Count < BatchSize)
                        await Task.WhenAny(changed, Task.Delay(Poll, time, stoppingToken));
                }
                catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
                {
                    return;
                }
                catch (Exception e)
                {
                    logger.LogError(e, "Webhook {Webhook}: delivery loop failed; retrying", webhook.CursorName);
                    try
                    {
                        await Task.Delay(webhook.RetryDelay, time, stoppingToken);
                    }
                    catch (OperationCanceledException)
                    {
                        return;
                    }
                }
            }
        }
        finally
        {
            // Stopping: let another replica take over now rather than when the lease expires.
            if (held)
                try
                {
                    await leases.ReleaseLeaseAsync(lease, _holder, CancellationToken.None);
                }
                catch (Exception e)
                {
                    logger.LogWarning("Webhook {Webhook}: could not release its lease: {Error}", webhook.CursorName, e.Message);
                }
        }
    }

    private ResiliencePipeline BuildPipeline(WebhookOptions webhook, CancellationToken stoppingToken)
    {
        var transient = new PredicateBuilder()
            .Handle<HttpRequestException>()
            .Handle<TransientDeliveryException>()
            .Handle<TimeoutRejectedException>()
            .Handle<BrokenCircuitException>()
            .Handle<OperationCanceledException>(_ => !stoppingToken.IsCancellationRequested);
        return new ResiliencePipelineBuilder { TimeProvider = time }
            .AddRetry(new RetryStrategyOptions
            {
                ShouldHandle = transient,
                MaxRetryAttempts = int.MaxValue,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = webhook.RetryDelay,
                MaxDelay = webhook.MaxRetryDelay,
                OnRetry = args =>
                {
                    metrics.WebhookRetried(webhook.MetricName);
                    if (args.AttemptNumber % 10 == 0)
                        logger.LogWarning("Webhook {Webhook}: attempt {Attempt} failed: {Error}", webhook.CursorName,
                            args.AttemptNumber + 1, args.Outcome.Exception?.Message);
                    return ValueTask.CompletedTask;
                },
            })
            .AddCircuitBreaker(new CircuitBreakerStrategyOptions
            {
                ShouldHandle = new PredicateBuilder().Handle<HttpRequestException>().Handle<TransientDeliveryException>()
                    .Handle<TimeoutRejectedException>(),
                FailureRatio = 0.5,
                MinimumThroughput = 3,
                SamplingDuration = TimeSpan.FromSeconds(Math.Max(30, webhook.BreakDuration.TotalSeconds * 2)),
                BreakDuration = webhook.BreakDuration,
            })
            .AddTimeout(webhook.Timeout)
            .Build();
    }

    private async ValueTask SendAsync(WebhookOptions webhook, RegistryEvent e, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, webhook.Url);
        request.Content = new ByteArrayContent(EventJson.Serialize(e));
        request.Content.Headers.ContentType = new MediaTypeHeaderValue(EventJson.MediaType);
        request.Headers.TryAddWithoutValidation("Registry-Event-Id", e.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));
        request.Headers.TryAddWithoutValidation("Registry-Event-Action", e.Action);
        foreach (var (name, value) in webhook.Headers) request.Headers.TryAddWithoutValidation(name, value);

        int status;
        try
        {
            using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
            status = (int)response.StatusCode;
        }
        catch
        {
            // Network errors and timeouts (a shutdown in between counts too: the attempt did fail).
            metrics.WebhookFailed(webhook.MetricName);
            throw;
        }
        if (status is 408 or 429 or >= 500)
        {
            metrics.WebhookFailed(webhook.MetricName);
            // Not the URL: it may carry a token, and this message is logged.
            throw new TransientDeliveryException($"{webhook.MetricName} answered {status}");
        }
        metrics.WebhookDelivered(webhook.MetricName, refused: status >= 400);
        if (status >= 400)
            logger.LogWarning("Webhook {Webhook} refused event {Id} with {Status}; skipping it", webhook.CursorName, e.Id, status);
    }
}
