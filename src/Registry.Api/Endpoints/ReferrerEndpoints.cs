using Registry.Api.Http;
using Registry.Api.Manifests;
using Registry.Storage.Model;

namespace Registry.Api.Endpoints;

internal static class ReferrerEndpoints
{
    // spec: spec.md#listing-referrers. Always an image index, empty when nothing refers to the subject: a 404 here
    // would make clients believe the API is missing and fall back to the tag schema.
    public static async Task<IResult> List(HttpContext context, RepositoryName name, string argument,
        RegistryServices services)
    {
        if (!Digest.TryParse(argument, out var subject))
            return new RegistryError(ErrorCode.DigestInvalid, $"invalid digest '{argument}'");
        if (!Responses.TryReadPagination(context.Request, services.Options.Pagination.MaxPageSize, out var n, out var last))
            return new RegistryError(ErrorCode.InvalidParameters, "n must be a non-negative integer");
        var artifactType = context.Request.Query["artifactType"].FirstOrDefault();
        var page = await services.ManifestStore.ListReferrersAsync(name, subject, artifactType, n, last, context.RequestAborted);
        return Responses.Json(writer =>
        {
            writer.WriteStartObject();
            writer.WriteNumber("schemaVersion", 2);
            writer.WriteString("mediaType", MediaTypes.OciIndex);
            writer.WriteStartArray("manifests");
            foreach (var manifest in page.Items)
            {
                writer.WriteStartObject();
                writer.WriteString("mediaType", manifest.MediaType);
                writer.WriteString("digest", manifest.Digest.ToString());
                writer.WriteNumber("size", manifest.Size);
                if (manifest.ArtifactType is not null) writer.WriteString("artifactType", manifest.ArtifactType);
                if (manifest.AnnotationsJson is not null)
                {
                    writer.WritePropertyName("annotations");
                    writer.WriteRawValue(manifest.AnnotationsJson, skipInputValidation: true);
                }
                writer.WriteEndObject();
            }
            writer.WriteEndArray();
            writer.WriteEndObject();
        }, MediaTypes.OciIndex, response =>
        {
            if (artifactType is not null) response.Headers["OCI-Filters-Applied"] = "artifactType";
            if (page.HasMore)
                Responses.NextLink(response, $"/v2/{name}/referrers/{subject}", n, page.Items[^1].Digest.ToString(),
                    ("artifactType", artifactType));
        });
    }
}
