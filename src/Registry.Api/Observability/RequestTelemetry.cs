using System.Diagnostics;
using Registry.Api.Http;
using Registry.Storage.Model;

namespace Registry.Api.Observability;

/// <summary>
/// What a request was, for the access log and the metrics: its operation (<see cref="RequestOperations"/>) and
/// repository. Whoever parses the route fills it in (<see cref="RequestTelemetryExtensions.Describe"/>); a fixed
/// route has its operation in its endpoint metadata instead.
/// </summary>
internal sealed class RequestDescription
{
    public string? Operation { get; set; }
    public RepositoryName? Repository { get; set; }
}

internal static class RequestTelemetryExtensions
{
    public static void Describe(this HttpContext context, string operation, RepositoryName? repository)
    {
        if (context.Features.Get<RequestDescription>() is not { } description) return;
        description.Operation = operation;
        description.Repository = repository;
    }
}

/// <summary>
/// The outermost middleware: gives each request an id (the client's <c>X-Request-Id</c> when it is a sane token,
/// else a new one; returned in the response header and kept as the request's trace identifier), counts its body bytes, times it, then writes one access-log line and records the request metrics.
/// The line holds no header and no query string, so no credential or token can reach the log.
/// </summary>
internal sealed partial class RequestTelemetry(RegistryMetrics metrics, ILoggerFactory loggers)
{
    public const string RequestIdHeader = "X-Request-Id";
    public const string LogCategory = "Registry.Access";
    private const int MaxRequestIdLength = 128;

    private readonly ILogger _log = loggers.CreateLogger(LogCategory);

    public async Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        var started = Stopwatch.GetTimestamp();
        var requestId = RequestId(context.Request.Headers[RequestIdHeader].ToString());
        context.TraceIdentifier = requestId;
        context.Response.Headers[RequestIdHeader] = requestId;
        var counters = new BodyCounters();
        counters.Install(context);
        var description = new RequestDescription();
        context.Features.Set(description);
        var status = 0;
        try
        {
            await next(context);
            status = context.Response.StatusCode;
        }
        catch
        {
            // Whatever escaped the error middleware ends the connection; the server answers 500 if it still can.
            status = StatusCodes.Status500InternalServerError;
            throw;
        }
        finally
        {
            var operation = description.Operation
                            ?? context.GetEndpoint()?.Metadata.GetMetadata<OperationMetadata>()?.Name
                            ?? RequestOperations.Unknown;
            if (context.RequestAborted.IsCancellationRequested && !context.Response.HasStarted)
                status = ClientClosedRequest;
            var elapsed = Stopwatch.GetElapsedTime(started);
            metrics.RequestCompleted(operation, context.Request.Method, status, elapsed, counters.Received, counters.Sent);
            var identity = context.User.Identity?.Name;
            AccessLine(_log, IsProbe(operation) ? LogLevel.Debug : LogLevel.Information, context.Request.Method,
                operation, description.Repository?.Value ?? "-", status, counters.Received, counters.Sent,
                Math.Round(elapsed.TotalMilliseconds, 1), string.IsNullOrEmpty(identity) ? "-" : identity, requestId);
        }
    }

    /// <summary>nginx's code for a client that went away before its answer began; never sent, only logged and counted.</summary>
    private const int ClientClosedRequest = 499;

    // Health probes and scrapes arrive every few seconds: logged only when debug logging is on.
    private static bool IsProbe(string operation) =>
        operation is RequestOperations.Health or RequestOperations.Ready or RequestOperations.Metrics;

    [LoggerMessage(EventId = 1, EventName = "Request",
        Message = "{Method} {Operation} {Repository} {Status} received={BytesReceived} sent={BytesSent} " +
                  "duration={DurationMs}ms identity={Identity} request_id={RequestId}")]
    private static partial void AccessLine(ILogger logger, LogLevel level, string method, string operation,
        string repository, int status, long bytesReceived, long bytesSent, double durationMs, string identity,
        string requestId);

    /// <summary>The client's id when it is 1–128 visible ASCII characters (no spaces, so a log line cannot be forged), else a new one.</summary>
    internal static string RequestId(string offered)
    {
        if (offered.Length is > 0 and <= MaxRequestIdLength && offered.All(c => c is > ' ' and < '\x7f')) return offered;
        // Unique, not secret: Random.Shared, since the cryptographic generator loads OpenSSL (measured: 3 MiB of RSS).
        Span<byte> random = stackalloc byte[12];
        Random.Shared.NextBytes(random);
        return Convert.ToHexStringLower(random);
    }
}
