using System.Text.Json;
using Microsoft.Data.Sqlite;
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

    private sealed record Hit(string Name, long TagCount, long Size, DateTimeOffset? LastPushed);

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

        var store = request.RequestServices.GetRequiredService<SqliteMetadataStore>();
        var hits = new List<Hit>();
        if (n > 0)
        {
            using var connection = store.OpenConnection();
            using var command = connection.CreateCommand();
            command.CommandText = """
                SELECT r.name,
                  (SELECT count(*) FROM tags t WHERE t.repository_id = r.id),
                  (SELECT coalesce(sum(b.size), 0) FROM repository_blobs rb JOIN blobs b ON b.digest = rb.digest
                     WHERE rb.repository_id = r.id)
                  + (SELECT coalesce(sum(m.size), 0) FROM manifests m WHERE m.repository_id = r.id),
                  (SELECT max(m.pushed_at) FROM manifests m WHERE m.repository_id = r.id)
                FROM repositories r
                WHERE r.name > $last
                  AND ($q IS NULL OR instr(r.name, $q) > 0)
                  AND ($prefix IS NULL OR substr(r.name, 1, length($prefix)) = $prefix)
                  AND ($artifactType IS NULL OR EXISTS (SELECT 1 FROM manifests m
                        WHERE m.repository_id = r.id AND m.artifact_type = $artifactType))
                  AND ($mediaType IS NULL OR EXISTS (SELECT 1 FROM manifests m
                        WHERE m.repository_id = r.id AND m.media_type = $mediaType))
                ORDER BY r.name LIMIT $limit
                """;
            Add(command, "$last", last ?? "");
            Add(command, "$q", q);
            Add(command, "$prefix", prefix);
            Add(command, "$artifactType", artifactType);
            Add(command, "$mediaType", mediaType);
            var batch = pullable is null ? n + 1 : Math.Max(n + 1, 500);
            command.Parameters.AddWithValue("$limit", batch);
            var after = command.Parameters["$last"];
            while (hits.Count <= n)
            {
                var read = 0;
                using (var reader = command.ExecuteReader())
                    while (reader.Read() && hits.Count <= n)
                    {
                        read++;
                        var name = reader.GetString(0);
                        after.Value = name;
                        if (pullable is not null && (!RepositoryName.TryParse(name, out var repository) || !pullable(repository)))
                            continue;
                        hits.Add(new Hit(name, reader.GetInt64(1), reader.GetInt64(2),
                            reader.IsDBNull(3) ? null : DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(3))));
                    }
                if (read < batch) break;
            }
        }
        var more = hits.Count > n;
        if (more) hits.RemoveAt(hits.Count - 1);
        var usage = await request.RequestServices.GetRequiredService<IStorageUsage>()
            .GetRepositoryUsageAsync(hits.Select(h => h.Name).ToList(), request.Aborted);

        return Responses.Json(writer =>
        {
            writer.WriteStartObject();
            writer.WriteStartArray("repositories");
            foreach (var hit in hits)
            {
                writer.WriteStartObject();
                writer.WriteString("name", hit.Name);
                writer.WriteNumber("tagCount", hit.TagCount);
                writer.WriteNumber("size", hit.Size);
                var bytes = usage.GetValueOrDefault(hit.Name);
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
                Responses.NextLink(response, "/v2/_registry/search/repositories", n, hits[^1].Name, ("q", q),
                    ("prefix", prefix), ("artifactType", artifactType), ("mediaType", mediaType));
        });
    }

    private static void Add(SqliteCommand command, string name, string? value) =>
        command.Parameters.AddWithValue(name, (object?)value ?? DBNull.Value);
}
