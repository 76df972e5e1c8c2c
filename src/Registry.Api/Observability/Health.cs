using System.Text.Json;
using Registry.Api.Http;
using Registry.Storage;
using Registry.Storage.Metadata;

namespace Registry.Api.Observability;

/// <summary>
/// Readiness: the storage root takes a write (a probe file created, flushed and deleted in its tmp/ folder) and the
/// metadata store answers a query. The answer is kept for <see cref="CacheFor"/>, and concurrent probes share one
/// check, so polling every second from several load balancers costs one small write a second.
/// </summary>
internal sealed class ReadinessCheck(StorageLayout layout, IEventOutbox metadata, TimeProvider time)
{
    public static readonly TimeSpan CacheFor = TimeSpan.FromSeconds(1);

    private readonly Lock _lock = new();
    private (Task<Readiness> Check, DateTimeOffset At)? _last;

    public Task<Readiness> CheckAsync()
    {
        lock (_lock)
        {
            var now = time.GetUtcNow();
            if (_last is { } last && (!last.Check.IsCompleted || now - last.At < CacheFor)) return last.Check;
            var check = Task.Run(RunChecksAsync);
            _last = (check, now);
            return check;
        }
    }

    private async Task<Readiness> RunChecksAsync()
    {
        var problems = new List<string>();
        try
        {
            Directory.CreateDirectory(layout.TempRoot);
            var probe = Path.Combine(layout.TempRoot, $"ready-{Guid.NewGuid():N}");
            await using (var file = new FileStream(probe, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1,
                             FileOptions.DeleteOnClose))
            {
                file.WriteByte(0);
                file.Flush(flushToDisk: false);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            problems.Add($"storage is not writable: {e.Message}");
        }
        try
        {
            await metadata.LatestEventIdAsync(CancellationToken.None);
        }
        catch (Exception e)
        {
            problems.Add($"metadata store does not answer: {e.Message}");
        }
        return new Readiness(problems);
    }
}

internal sealed record Readiness(IReadOnlyList<string> Problems)
{
    public bool Ready => Problems.Count == 0;
}

internal static class HealthEndpoints
{
    /// <summary>
    /// <c>GET /healthz</c>: the process is alive and serving. <c>GET /readyz</c>: it can take traffic (see
    /// <see cref="ReadinessCheck"/>), else 503 with the reasons. Outside <c>/v2</c>, so no access policy applies.
    /// </summary>
    public static IEndpointRouteBuilder MapHealth(this IEndpointRouteBuilder routes)
    {
        routes.MapMethods("/healthz", [HttpMethods.Get, HttpMethods.Head],
                () => Responses.Json(writer => Status(writer, "ok", []), headers: NoStore))
            .WithMetadata(new OperationMetadata(RequestOperations.Health));
        routes.MapMethods("/readyz", [HttpMethods.Get, HttpMethods.Head], async (ReadinessCheck readiness) =>
            {
                var result = await readiness.CheckAsync();
                return Responses.Json(writer => Status(writer, result.Ready ? "ready" : "not ready", result.Problems),
                    headers: NoStore,
                    status: result.Ready ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable);
            })
            .WithMetadata(new OperationMetadata(RequestOperations.Ready));
        return routes;
    }

    private static void NoStore(HttpResponse response) => response.Headers.CacheControl = "no-store";

    private static void Status(Utf8JsonWriter writer, string status, IReadOnlyList<string> problems)
    {
        writer.WriteStartObject();
        writer.WriteString("status", status);
        if (problems.Count > 0)
        {
            writer.WriteStartArray("problems");
            foreach (var problem in problems) writer.WriteStringValue(problem);
            writer.WriteEndArray();
        }
        writer.WriteEndObject();
    }
}
