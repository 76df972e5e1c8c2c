using Registry.Api.Http;
using Registry.Storage.Model;

namespace Registry.Api.Endpoints;

internal static class BlobEndpoints
{
    // spec: spec.md#pulling-blobs. Only blobs linked to this repository are visible through it. A local file is sent
    // with zero-copy reads, other stores' content as a stream of the range asked for; Range gets 206 or 416.
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
        return new BlobRangeResult(services.Blobs, digest, content, "application/octet-stream", etag);
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
