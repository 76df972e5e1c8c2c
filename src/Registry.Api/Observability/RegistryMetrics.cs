using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Registry.Api.Observability;

/// <summary>
/// Every instrument of the registry, on one <see cref="Meter"/> named <see cref="MeterName"/>, exported at
/// <c>/metrics</c>. Names follow OpenTelemetry's conventions (dotted, with a UCUM unit); the Prometheus exporter
/// turns <c>registry.http.requests</c> into <c>registry_http_requests_total</c>, a duration in <c>s</c> into
/// <c>…_seconds</c> and a size in <c>By</c> into <c>…_bytes</c>. Every label has a bounded set of values:
/// operations, methods, status classes, webhook names from the configuration, reasons chosen by the caller. Never a
/// repository name or a path, which are unbounded.
/// </summary>
public sealed class RegistryMetrics
{
    public const string MeterName = "Registry";

    internal const string RequestsInstrument = "registry.http.requests";
    internal const string DurationInstrument = "registry.http.request.duration";

    // Registry requests range from sub-millisecond HEADs to multi-minute blob uploads.
    internal static readonly double[] DurationBuckets =
        [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

    private readonly Counter<long> _requests;
    private readonly Histogram<double> _duration;
    private readonly Counter<long> _received;
    private readonly Counter<long> _sent;
    private readonly Counter<long> _sentFromFile;
    private readonly Counter<long> _webhookDeliveries;
    private readonly Counter<long> _webhookRetries;
    private readonly Counter<long> _webhookFailures;
    private readonly Counter<long> _authFailures;
    private readonly Counter<long> _gcRuns;
    private readonly Counter<long> _gcReclaimed;
    private readonly Counter<long> _gcBlobsRemoved;

    public RegistryMetrics(IMeterFactory meters, StorageStatistics statistics)
    {
        var meter = meters.Create(MeterName);
        _requests = meter.CreateCounter<long>(RequestsInstrument, "{request}",
            "Requests answered, by operation, method and status class");
        _duration = meter.CreateHistogram(DurationInstrument, "s",
            "Time from the request's arrival to the end of its answer, by operation, method and status class",
            tags: null, advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = DurationBuckets });
        _received = meter.CreateCounter<long>("registry.http.received", "By", "Request body bytes read, by operation");
        _sent = meter.CreateCounter<long>("registry.http.sent", "By", "Response body bytes written, by operation");
        _sentFromFile = meter.CreateCounter<long>("registry.http.sent.sendfile", "By",
            "The part of the response body bytes the kernel sent straight from blob files (sendfile)");

        meter.CreateObservableGauge("registry.uploads.active", () => Observe(statistics, s => s.Uploads), "{upload}",
            "Upload sessions started and not yet finished, cancelled or expired");
        meter.CreateObservableGauge("registry.repositories", () => Observe(statistics, s => s.Repositories),
            "{repository}", "Repositories");
        meter.CreateObservableGauge("registry.manifests", () => Observe(statistics, s => s.Manifests), "{manifest}",
            "Manifests, counted once per repository that holds them");
        meter.CreateObservableGauge("registry.blobs", () => Observe(statistics, s => s.Blobs), "{blob}",
            "Blobs in the content store (manifests included), each stored once");
        meter.CreateObservableGauge("registry.storage.size", () => Observe(statistics, s => s.BlobBytes), "By",
            "Bytes of content stored (the sum of the sizes of all blobs)");

        _webhookDeliveries = meter.CreateCounter<long>("registry.webhook.deliveries", "{delivery}",
            "Events a webhook answered, by webhook and outcome (delivered: 2xx/3xx; refused: other 4xx, skipped)");
        _webhookRetries = meter.CreateCounter<long>("registry.webhook.retries", "{retry}",
            "Deliveries tried again after a transient failure, by webhook");
        _webhookFailures = meter.CreateCounter<long>("registry.webhook.failures", "{failure}",
            "Delivery attempts that failed transiently (network error, timeout, 408, 429, 5xx, open circuit), by webhook");
        _authFailures = meter.CreateCounter<long>("registry.auth.failures", "{failure}",
            "Requests refused by authentication or authorization, by reason");
        _gcRuns = meter.CreateCounter<long>("registry.gc.runs", "{run}", "Garbage collection runs, by outcome");
        _gcReclaimed = meter.CreateCounter<long>("registry.gc.reclaimed", "By", "Bytes of content garbage collection removed");
        _gcBlobsRemoved = meter.CreateCounter<long>("registry.gc.blobs.removed", "{blob}", "Blobs garbage collection removed");

        // Series that exist from the start read 0 rather than nothing, so rate() and alerts work before the first event.
        _gcRuns.Add(0, new KeyValuePair<string, object?>("outcome", "completed"));
        _gcRuns.Add(0, new KeyValuePair<string, object?>("outcome", "failed"));
        _gcReclaimed.Add(0);
        _sentFromFile.Add(0);
        _gcBlobsRemoved.Add(0);
    }

    /// <summary>One answered request. <paramref name="operation"/> is one of <see cref="Http.RequestOperations"/>.</summary>
    public void RequestCompleted(string operation, string method, int status, TimeSpan duration, long received, long sent)
    {
        var tags = new TagList
        {
            { "operation", operation },
            { "method", MethodLabel(method) },
            { "status_class", StatusClass(status) },
        };
        _requests.Add(1, tags);
        _duration.Record(duration.TotalSeconds, tags);
        var byOperation = new KeyValuePair<string, object?>("operation", operation);
        if (received > 0) _received.Add(received, byOperation);
        if (sent > 0) _sent.Add(sent, byOperation);
    }

    /// <summary>A blob range the kernel sent from its file, without passing through the process.</summary>
    public void SentFromFile(long bytes) => _sentFromFile.Add(bytes);

    /// <summary>Makes the webhook's series exist (at 0) before its first delivery.</summary>
    public void WebhookConfigured(string webhook)
    {
        var name = new KeyValuePair<string, object?>("webhook", webhook);
        _webhookDeliveries.Add(0, name, new("outcome", "delivered"));
        _webhookDeliveries.Add(0, name, new("outcome", "refused"));
        _webhookRetries.Add(0, name);
        _webhookFailures.Add(0, name);
    }

    /// <summary>A webhook answered an event: delivered (2xx/3xx) or refused for good (another 4xx; the event is skipped).</summary>
    public void WebhookDelivered(string webhook, bool refused) =>
        _webhookDeliveries.Add(1, new("webhook", webhook), new("outcome", refused ? "refused" : "delivered"));

    /// <summary>A delivery attempt failed transiently; it will be retried.</summary>
    public void WebhookFailed(string webhook) => _webhookFailures.Add(1, new KeyValuePair<string, object?>("webhook", webhook));

    /// <summary>A delivery is tried again.</summary>
    public void WebhookRetried(string webhook) => _webhookRetries.Add(1, new KeyValuePair<string, object?>("webhook", webhook));

    /// <summary>
    /// A request was refused by authentication or authorization. <paramref name="reason"/> MUST come from a small
    /// fixed set (e.g. <c>missing_credentials</c>, <c>invalid_credentials</c>, <c>invalid_token</c>,
    /// <c>insufficient_scope</c>), never a user name or anything a client sent.
    /// </summary>
    public void AuthFailed(string reason) => _authFailures.Add(1, new KeyValuePair<string, object?>("reason", reason));

    /// <summary>A garbage collection run ended; what it removed is counted even when it failed part-way.</summary>
    public void GcRunCompleted(bool succeeded, long blobsRemoved, long bytesReclaimed)
    {
        _gcRuns.Add(1, new KeyValuePair<string, object?>("outcome", succeeded ? "completed" : "failed"));
        if (blobsRemoved > 0) _gcBlobsRemoved.Add(blobsRemoved);
        if (bytesReclaimed > 0) _gcReclaimed.Add(bytesReclaimed);
    }

    /// <summary>
    /// How many label sets an instrument can have: requests by operation (25 names), method and status class (in
    /// practice one or two methods and a few classes per operation); bytes by operation; webhooks by configuration.
    /// </summary>
    internal static int MaxSeries(string instrument) => instrument switch
    {
        RequestsInstrument or DurationInstrument => 400,
        _ => 100,
    };

    internal static string StatusClass(int status) => status switch
    {
        >= 100 and < 200 => "1xx",
        >= 200 and < 300 => "2xx",
        >= 300 and < 400 => "3xx",
        >= 400 and < 500 => "4xx",
        _ => "5xx",
    };

    /// <summary>The methods a registry serves keep their name; anything else is one label, so a client cannot create series.</summary>
    internal static string MethodLabel(string method) => method switch
    {
        _ when HttpMethods.IsGet(method) => HttpMethods.Get,
        _ when HttpMethods.IsHead(method) => HttpMethods.Head,
        _ when HttpMethods.IsPut(method) => HttpMethods.Put,
        _ when HttpMethods.IsPost(method) => HttpMethods.Post,
        _ when HttpMethods.IsPatch(method) => HttpMethods.Patch,
        _ when HttpMethods.IsDelete(method) => HttpMethods.Delete,
        _ when HttpMethods.IsOptions(method) => HttpMethods.Options,
        _ => "_OTHER",
    };

    private static IEnumerable<Measurement<long>> Observe(StorageStatistics statistics, Func<Registry.Storage.Model.StoreStatistics, long> value) =>
        statistics.Current is { } current ? [new Measurement<long>(value(current))] : [];
}
