using System.Text.Json;
using Registry.Api.Extensions.Framework;
using Registry.Api.Http;
using Registry.Storage.Metadata;
using Registry.Storage.Model;

namespace Registry.Api.Extensions.Search;

/// <summary>
/// <c>GET /v2/_registry/search/repositories</c>: repositories by name substring (<c>q</c>) or prefix (<c>prefix</c>),
/// optionally only those holding a manifest of an <c>artifactType</c> or <c>mediaType</c>; each hit with its tag
/// count, deduplicated size (and of it the bytes no other repository holds, and the bytes shared) and last push time. Paginated like the tags list. Doc: docs/extensions/_registry/search.md.
/// </summary>
internal sealed class SearchExtension : RegistryExtension
{
    public override string Key => "Search";
    public override ExtensionNamespace Namespace => ExtensionNamespace.Registry;
    public override string Document => "_registry/search.md";

    public const string MediaType = "application/vnd.registry.search.v1+json";

    public override IEnumerable<ExtensionEndpoint> Endpoints =>
    [
        new(ExtensionScope.Registry, "search", "repositories", HttpMethods.Get, RequiredAccess.RegistryRead, SearchAsync),
    ];

    private static async Task<IResult> SearchAsync(ExtensionRequest request)
    {
        // Only repositories the caller may pull; pages stay full while more hits exist.
        var pullable = await request.RequestServices.GetRequiredService<IAccessPolicy>().PullableAsync(request.Http);
        var http = request.Http.Request;
        if (!Responses.TryReadPagination(http, request.Services.Options.Pagination.MaxPageSize, out var n, out var last))
            return new RegistryError(ErrorCode.InvalidParameters, "n must be a non-negative integer");
        var q = http.Query["q"].FirstOrDefault()?.ToLowerInvariant();
        var prefix = http.Query["prefix"].FirstOrDefault()?.ToLowerInvariant();
        var artifactType = http.Query["artifactType"].FirstOrDefault();
        var mediaType = http.Query["mediaType"].FirstOrDefault();

        var page = await request.RequestServices.GetRequiredService<ISearchReadModel>().SearchRepositoriesAsync(
            new RepositorySearch(q, prefix, artifactType, mediaType), n, last, pullable, request.Aborted);
        var hits = page.Items;
        var more = page.HasMore;
        var usage = await request.RequestServices.GetRequiredService<IStorageUsage>()
            .GetRepositoryUsageAsync(hits.Select(h => h.Name.Value).ToList(), request.Aborted);

        return Responses.Json(writer =>
        {
            writer.WriteStartObject();
            writer.WriteStartArray("repositories");
            foreach (var hit in hits)
            {
                writer.WriteStartObject();
                writer.WriteString("name", hit.Name.Value);
                writer.WriteNumber("tagCount", hit.TagCount);
                writer.WriteNumber("size", hit.Size);
                var bytes = usage.GetValueOrDefault(hit.Name.Value);
                writer.WriteNumber("uniqueSize", bytes?.UniqueBytes ?? 0);
                writer.WriteNumber("sharedSize", bytes?.SharedBytes ?? 0);
                if (hit.LastPushed is { } pushed) writer.WriteString("lastPushed", pushed);
                else writer.WriteNull("lastPushed");
                writer.WriteEndObject();
            }
            writer.WriteEndArray();
            writer.WriteEndObject();
        }, MediaType, response =>
        {
            if (more)
                Responses.NextLink(response, "/v2/_registry/search/repositories", n, hits[^1].Name.Value, ("q", q),
                    ("prefix", prefix), ("artifactType", artifactType), ("mediaType", mediaType));
        });
    }
}
