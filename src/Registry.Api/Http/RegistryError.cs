using System.Text.Json;

namespace Registry.Api.Http;

/// <summary>An error code of the spec (spec.md#error-codes) with the HTTP status it is answered with.</summary>
internal sealed record ErrorCode(string Code, int Status, string Message)
{
    public static readonly ErrorCode BlobUnknown = new("BLOB_UNKNOWN", 404, "blob unknown to registry");
    public static readonly ErrorCode BlobUploadInvalid = new("BLOB_UPLOAD_INVALID", 400, "blob upload invalid");
    public static readonly ErrorCode BlobUploadUnknown = new("BLOB_UPLOAD_UNKNOWN", 404, "blob upload unknown to registry");
    public static readonly ErrorCode DigestInvalid = new("DIGEST_INVALID", 400, "provided digest did not match uploaded content");
    public static readonly ErrorCode ManifestBlobUnknown = new("MANIFEST_BLOB_UNKNOWN", 400, "manifest references a manifest or blob unknown to registry");
    public static readonly ErrorCode ManifestInvalid = new("MANIFEST_INVALID", 400, "manifest invalid");
    public static readonly ErrorCode ManifestUnknown = new("MANIFEST_UNKNOWN", 404, "manifest unknown to registry");
    public static readonly ErrorCode ManifestTooLarge = new("MANIFEST_INVALID", 413, "manifest too large");
    public static readonly ErrorCode NameInvalid = new("NAME_INVALID", 400, "invalid repository name");
    public static readonly ErrorCode NameUnknown = new("NAME_UNKNOWN", 404, "repository name not known to registry");
    public static readonly ErrorCode SizeInvalid = new("SIZE_INVALID", 400, "provided length did not match content length");
    public static readonly ErrorCode Unsupported = new("UNSUPPORTED", 405, "the operation is unsupported");
    public static readonly ErrorCode TooManyRequests = new("TOOMANYREQUESTS", 429, "too many requests");
    public static readonly ErrorCode RangeInvalid = new("BLOB_UPLOAD_INVALID", 416, "requested range not satisfiable");
    public static readonly ErrorCode NotFound = new("NOT_FOUND", 404, "no such endpoint");
    public static readonly ErrorCode StorageFull = new("INSUFFICIENT_STORAGE", 507, "the registry's storage is full");
    public static readonly ErrorCode PaginationInvalid = new("PAGINATION_NUMBER_INVALID", 400, "invalid number of results requested");
    public static readonly ErrorCode Denied = new("DENIED", 403, "requested access to the resource is denied");
    public static readonly ErrorCode Unauthorized = new("UNAUTHORIZED", 401, "authentication required");
    /// <summary>extensions/_oci.md: UNSUPPORTED also covers an invalid set of parameters.</summary>
    public static readonly ErrorCode InvalidParameters = new("UNSUPPORTED", 400, "invalid parameters");
    public static readonly ErrorCode ExtensionUnknown = new("EXTENSION_UNKNOWN", 404, "extension unknown to registry");
}

/// <summary>
/// The one writer of error bodies: <c>{"errors":[{"code":…,"message":…,"detail":…}]}</c> with the code's status.
/// </summary>
internal sealed class RegistryError(ErrorCode error, string? detail = null, Action<HttpResponse>? headers = null) : IResult
{
    public ErrorCode Error { get; } = error;

    public async Task ExecuteAsync(HttpContext context)
    {
        var response = context.Response;
        response.StatusCode = Error.Status;
        response.ContentType = "application/json; charset=utf-8";
        headers?.Invoke(response);
        if (HttpMethods.IsHead(context.Request.Method)) return;
        await using var writer = new Utf8JsonWriter(response.BodyWriter, Responses.WriterOptions);
        writer.WriteStartObject();
        writer.WriteStartArray("errors");
        writer.WriteStartObject();
        writer.WriteString("code", Error.Code);
        writer.WriteString("message", Error.Message);
        if (detail is not null) writer.WriteString("detail", detail);
        writer.WriteEndObject();
        writer.WriteEndArray();
        writer.WriteEndObject();
        await writer.FlushAsync(context.RequestAborted);
    }
}
