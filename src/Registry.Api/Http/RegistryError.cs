using System.Text.Json;

namespace Registry.Api.Http;

/// <summary>
/// The one error table: a code of the spec (spec.md#error-codes, or <c>EXTENSION_UNKNOWN</c> from
/// extensions/README.md) with the HTTP status it is answered with. spec.md: "The code field MUST be one of the
/// following", so no other code is ever written in a 4xx body; a code appears once per status. The spec has no
/// server-side codes: a 5xx answers distribution's <c>UNKNOWN</c>, or <c>INSUFFICIENT_STORAGE</c> for a full disk.
/// </summary>
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
    /// <summary>Also a path that names no endpoint: the spec has no code for an unknown route, and such a path
    /// names no repository the registry knows (distribution answers 404 too).</summary>
    public static readonly ErrorCode NameUnknown = new("NAME_UNKNOWN", 404, "repository name not known to registry");
    public static readonly ErrorCode SizeInvalid = new("SIZE_INVALID", 400, "provided length did not match content length");
    /// <summary>A request body larger than the server accepts (Kestrel's limit).</summary>
    public static readonly ErrorCode BodyTooLarge = new("SIZE_INVALID", 413, "request body too large");
    public static readonly ErrorCode Unauthorized = new("UNAUTHORIZED", 401, "authentication required");
    public static readonly ErrorCode Denied = new("DENIED", 403, "requested access to the resource is denied");
    public static readonly ErrorCode Unsupported = new("UNSUPPORTED", 405, "the operation is unsupported");
    /// <summary>extensions/_oci.md: UNSUPPORTED also covers an invalid set of parameters (a bad <c>n</c>, a
    /// malformed request).</summary>
    public static readonly ErrorCode InvalidParameters = new("UNSUPPORTED", 400, "invalid parameters");
    /// <summary>A request whose body stopped arriving (Kestrel's minimum data rate).</summary>
    public static readonly ErrorCode RequestTimeout = new("UNSUPPORTED", 408, "request body arrived too slowly");
    public static readonly ErrorCode TooManyRequests = new("TOOMANYREQUESTS", 429, "too many requests");
    public static readonly ErrorCode RangeInvalid = new("BLOB_UPLOAD_INVALID", 416, "requested range not satisfiable");
    public static readonly ErrorCode ExtensionUnknown = new("EXTENSION_UNKNOWN", 404, "extension unknown to registry");
    public static readonly ErrorCode Unknown = new("UNKNOWN", 500, "unknown error");
    public static readonly ErrorCode StorageFull = new("INSUFFICIENT_STORAGE", 507, "the registry's storage is full");

    /// <summary>The table's entry for a request Kestrel rejected while the endpoint read it.</summary>
    public static ErrorCode ForBadRequest(int status) => status switch
    {
        StatusCodes.Status408RequestTimeout => RequestTimeout,
        StatusCodes.Status413PayloadTooLarge => BodyTooLarge,
        _ => InvalidParameters,
    };
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
