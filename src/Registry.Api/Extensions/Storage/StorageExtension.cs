using System.Text.Json;
using Registry.Api.Extensions.Framework;
using Registry.Api.Http;
using Registry.Api.Storage;
using Registry.Storage.Metadata;

namespace Registry.Api.Extensions.Storage;

/// <summary>
/// Storage administration: garbage collection runs (<c>POST /v2/_registry/gc/runs</c> starts one, <c>GET</c> gives their
/// status and reports) and dedup-aware storage usage (<c>GET /v2/_registry/storage/usage</c>). Registry admin access.
/// Doc: docs/extensions/_registry/storage.md.
/// </summary>
internal sealed class StorageExtension : RegistryExtension
{
    public const string RunMediaType = "application/vnd.registry.gc.run.v1+json";
    public const string RunsMediaType = "application/vnd.registry.gc.runs.v1+json";
    public const string UsageMediaType = "application/vnd.registry.storage.usage.v1+json";
    private const string RunsPath = "/v2/_registry/gc/runs";

    public override string Key => "Storage";
    public override ExtensionNamespace Namespace => ExtensionNamespace.Registry;
    public override string Document => "_registry/storage.md";

    public override IEnumerable<ExtensionEndpoint> Endpoints =>
    [
        new(ExtensionScope.Registry, "gc", "runs", HttpMethods.Post, RequiredAccess.RegistryAdmin, StartRunAsync),
        new(ExtensionScope.Registry, "gc", "runs", HttpMethods.Get, RequiredAccess.RegistryAdmin, GetRunsAsync),
        new(ExtensionScope.Registry, "storage", "usage", HttpMethods.Get, RequiredAccess.RegistryAdmin, UsageAsync),
    ];

    private static string RunLocation(long id) => $"{RunsPath}?id={id}";

    // POST ?dryRun=true|false: 202 with the new run, or 429 TOOMANYREQUESTS naming the run in progress (on any replica).
    private static async Task<IResult> StartRunAsync(ExtensionRequest request)
    {
        var raw = request.Http.Request.Query["dryRun"].FirstOrDefault();
        var dryRun = false;
        if (raw is not null && !bool.TryParse(raw, out dryRun))
            return new RegistryError(ErrorCode.InvalidParameters, $"dryRun must be true or false, not '{raw}'");
        var runner = request.RequestServices.GetRequiredService<GcRunner>();
        var (id, started) = await runner.StartAsync(dryRun, "api");
        if (!started)
            return new RegistryError(ErrorCode.TooManyRequests, id is { } running
                    ? $"garbage collection run {running} is in progress; one run at a time"
                    : "a garbage collection run is starting on another replica; one run at a time",
                response =>
                {
                    if (id is { } running) response.Headers.Location = RunLocation(running);
                    response.Headers.RetryAfter = "5";
                });
        var store = request.RequestServices.GetRequiredService<IGarbageCollectionStore>();
        var run = await store.GetGcRunAsync(id!.Value, request.Aborted);
        return Responses.Json(writer => WriteRun(writer, run!), RunMediaType, response =>
        {
            response.StatusCode = StatusCodes.Status202Accepted;
            response.Headers.Location = RunLocation(id.Value);
        });
    }

    // GET ?id=N: one run; without id: the most recent runs first (n of them, default 20).
    private static async Task<IResult> GetRunsAsync(ExtensionRequest request)
    {
        var query = request.Http.Request.Query;
        var store = request.RequestServices.GetRequiredService<IGarbageCollectionStore>();
        if (query["id"].FirstOrDefault() is { } rawId)
        {
            if (!long.TryParse(rawId, System.Globalization.NumberStyles.None, null, out var id))
                return new RegistryError(ErrorCode.InvalidParameters, $"invalid run id '{rawId}'");
            if (await store.GetGcRunAsync(id, request.Aborted) is not { } run)
                return new RegistryError(ErrorCode.NameUnknown, $"no garbage collection run {id}");
            return Responses.Json(writer => WriteRun(writer, run), RunMediaType);
        }
        var n = 20;
        if (query["n"].FirstOrDefault() is { } rawN
            && (!int.TryParse(rawN, System.Globalization.NumberStyles.None, null, out n) || n > 1000))
            return new RegistryError(ErrorCode.InvalidParameters, "n must be between 0 and 1000");
        var runs = await store.ListGcRunsAsync(n, request.Aborted);
        return Responses.Json(writer =>
        {
            writer.WriteStartObject();
            writer.WriteStartArray("runs");
            foreach (var run in runs) WriteRun(writer, run);
            writer.WriteEndArray();
            writer.WriteEndObject();
        }, RunsMediaType);
    }

    private static void WriteRun(Utf8JsonWriter writer, GcRunRecord run)
    {
        writer.WriteStartObject();
        writer.WriteNumber("id", run.Id);
        writer.WriteString("status", run.Status);
        writer.WriteBoolean("dryRun", run.DryRun);
        writer.WriteString("trigger", run.Trigger);
        writer.WriteString("startedAt", run.StartedAt);
        if (run.FinishedAt is { } finished) writer.WriteString("finishedAt", finished);
        else writer.WriteNull("finishedAt");
        writer.WritePropertyName("report");
        if (run.ReportJson is { } report) writer.WriteRawValue(report, skipInputValidation: true);
        else writer.WriteNullValue();
        writer.WriteEndObject();
    }

    // GET: bytes in the content store, and per repository the bytes only it holds and the bytes it shares.
    private static async Task<IResult> UsageAsync(ExtensionRequest request)
    {
        var http = request.Http.Request;
        if (!Responses.TryReadPagination(http, request.Services.Options.Pagination.MaxPageSize, out var n, out var last))
            return new RegistryError(ErrorCode.InvalidParameters, "n must be a non-negative integer");
        var usage = request.RequestServices.GetRequiredService<IStorageUsage>();
        var total = await usage.GetTotalUsageAsync(request.Aborted);
        var page = await usage.ListRepositoryUsageAsync(n, last, request.Aborted);
        return Responses.Json(writer =>
        {
            writer.WriteStartObject();
            writer.WriteStartObject("total");
            writer.WriteNumber("blobs", total.Blobs);
            writer.WriteNumber("bytes", total.Bytes);
            writer.WriteEndObject();
            writer.WriteStartArray("repositories");
            foreach (var repository in page.Items) WriteUsage(writer, repository);
            writer.WriteEndArray();
            writer.WriteEndObject();
        }, UsageMediaType, response =>
        {
            if (page.HasMore) Responses.NextLink(response, "/v2/_registry/storage/usage", n, page.Items[^1].Repository);
        });
    }

    private static void WriteUsage(Utf8JsonWriter writer, RepositoryUsage usage)
    {
        writer.WriteStartObject();
        writer.WriteString("name", usage.Repository);
        writer.WriteNumber("uniqueBytes", usage.UniqueBytes);
        writer.WriteNumber("sharedBytes", usage.SharedBytes);
        writer.WriteEndObject();
    }
}
