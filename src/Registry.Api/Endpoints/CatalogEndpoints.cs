using Registry.Api.Http;
using Registry.Storage.Model;

namespace Registry.Api.Endpoints;

internal static class CatalogEndpoints
{
    // distribution's /v2/_catalog: {"repositories":[…]}, paginated with n, last and Link like the tags list. Only the
    // repositories the caller may pull (filtered in the store, so every page is full while more exist).
    public static async Task<IResult> List(HttpContext context, RegistryServices services,
        Func<RepositoryName, bool>? pullable)
    {
        if (!Responses.TryReadPagination(context.Request, services.Options.Pagination.MaxPageSize, out var n, out var last))
            return new RegistryError(ErrorCode.InvalidParameters, "n must be a non-negative integer");
        var page = await services.ManifestStore.ListRepositoriesAsync(n, last, context.RequestAborted, pullable);
        return Responses.Json(writer =>
        {
            writer.WriteStartObject();
            writer.WriteStartArray("repositories");
            foreach (var name in page.Items) writer.WriteStringValue(name);
            writer.WriteEndArray();
            writer.WriteEndObject();
        }, headers: response =>
        {
            if (page.HasMore) Responses.NextLink(response, "/v2/_catalog", n, page.Items[^1]);
        });
    }
}
