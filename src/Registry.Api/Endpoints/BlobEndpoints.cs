using Microsoft.Net.Http.Headers;
using Registry.Api.Http;
using Registry.Storage.Model;

namespace Registry.Api.Endpoints;

internal static class BlobEndpoints
{
    // spec: spec.md#pulling-blobs. Only blobs linked to this repository are visible through it. The file is sent
    // with SendFile; Range requests get 206 or 416 from the framework's range processing.
    public static async Task<IResult> Get(HttpContext context, RepositoryName name, string argument,
        RegistryServices services)
    {
        var ct = context.RequestAborted;
        if (!Digest.TryParse(argument, out var digest))
            return new RegistryError(ErrorCode.DigestInvalid, $"invalid digest '{argument}'");
        if (await services.Links.GetLinkedBlobSizeAsync(name, digest, ct) is null
            || await services.Blobs.OpenAsync(digest, ct) is not { } content)
            return new RegistryError(ErrorCode.BlobUnknown, digest.ToString());

        var headers = context.Response.Headers;
        headers[Responses.DigestHeader] = digest.ToString();
        headers.CacheControl = "max-age=31536000";
        var etag = $"\"{digest}\"";
        if (content.LocalPath is { } path)
            return new FileRangeResult(path, content.Length, "application/octet-stream", etag);
        return TypedResults.Stream(content.OpenStream(), "application/octet-stream",
            entityTag: EntityTagHeaderValue.Parse(etag), enableRangeProcessing: true);
    }

    // spec: spec.md#deleting-blobs. Removes the link from this repository; other repositories keep the content.
    public static async Task<IResult> Delete(HttpContext context, RepositoryName name, string argument,
        RegistryServices services)
    {
        var ct = context.RequestAborted;
        if (!services.Options.Deletion.Enabled) return RegistryApi.Unsupported();
        if (!Digest.TryParse(argument, out var digest))
            return new RegistryError(ErrorCode.DigestInvalid, $"invalid digest '{argument}'");
        if (!await services.Links.UnlinkBlobAsync(name, digest, services.Time.GetUtcNow(), ct))
            return new RegistryError(ErrorCode.BlobUnknown, digest.ToString());
        return Responses.Empty(StatusCodes.Status202Accepted, _ => { });
    }
}
