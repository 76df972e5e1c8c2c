using Registry.Api.Http;
using Registry.Storage.Model;

namespace Registry.Api.Endpoints;

internal static class TagEndpoints
{
    // spec: spec.md#listing-tags
    public static async Task<IResult> List(HttpContext context, RepositoryName name, string argument,
        RegistryServices services)
    {
        var ct = context.RequestAborted;
        if (!Responses.TryReadPagination(context.Request, services.Options.Pagination.MaxPageSize, out var n, out var last))
            return new RegistryError(ErrorCode.InvalidParameters, "n must be a non-negative integer");
        if (!await services.ManifestStore.RepositoryExistsAsync(name, ct))
            return new RegistryError(ErrorCode.NameUnknown);
        var page = await services.ManifestStore.ListTagsAsync(name, n, last, ct);
        return Responses.Json(writer =>
        {
            writer.WriteStartObject();
            writer.WriteString("name", name.Value);
            writer.WriteStartArray("tags");
            foreach (var tag in page.Items) writer.WriteStringValue(tag);
            writer.WriteEndArray();
            writer.WriteEndObject();
        }, headers: response =>
        {
            if (page.HasMore) Responses.NextLink(response, $"/v2/{name}/tags/list", n, page.Items[^1]);
        });
    }
}
