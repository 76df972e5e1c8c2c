using System.Text.Encodings.Web;
using System.Text.Json;

namespace Registry.Api.Http;

/// <summary>Small results the endpoints share: JSON written straight to the response pipe, and empty answers.</summary>
internal static class Responses
{
    public const string DigestHeader = "Docker-Content-Digest";
    public const string UploadUuidHeader = "Docker-Upload-UUID";

    /// <summary>Readable output: the body is JSON served as JSON, so HTML-sensitive characters need no escaping.</summary>
    public static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static IResult Json(Action<Utf8JsonWriter> write, string contentType = "application/json",
        Action<HttpResponse>? headers = null, int status = StatusCodes.Status200OK) =>
        new JsonBodyResult(write, contentType, headers, status);

    public static IResult Empty(int status, Action<HttpResponse> headers) => new EmptyResult(status, headers);

    private sealed class JsonBodyResult(Action<Utf8JsonWriter> write, string contentType, Action<HttpResponse>? headers,
        int status) : IResult
    {
        public async Task ExecuteAsync(HttpContext context)
        {
            var response = context.Response;
            response.StatusCode = status;
            response.ContentType = contentType;
            headers?.Invoke(response);
            if (HttpMethods.IsHead(context.Request.Method)) return;
            await using var writer = new Utf8JsonWriter(response.BodyWriter, Responses.WriterOptions);
            write(writer);
            await writer.FlushAsync(context.RequestAborted);
        }
    }

    private sealed class EmptyResult(int status, Action<HttpResponse> headers) : IResult
    {
        public Task ExecuteAsync(HttpContext context)
        {
            context.Response.StatusCode = status;
            headers(context.Response);
            if (context.Response.ContentLength is null) context.Response.ContentLength = 0;
            return Task.CompletedTask;
        }
    }

    /// <summary>
    /// Writes a <c>Link: &lt;url&gt;; rel="next"</c> header for the page after <paramref name="last"/>, keeping the
    /// request's other parameters (<paramref name="keep"/>, those with a value) so filters apply to every page.
    /// </summary>
    public static void NextLink(HttpResponse response, string path, int n, string last,
        params (string Name, string? Value)[] keep)
    {
        var query = QueryString.Create(keep.Where(p => p.Value is not null)
            .Select(p => new KeyValuePair<string, string?>(p.Name, p.Value))
            .Append(new("n", n.ToString(System.Globalization.CultureInfo.InvariantCulture)))
            .Append(new("last", last)));
        response.Headers.Link = $"<{path}{query}>; rel=\"next\"";
    }

    /// <summary>
    /// Reads <c>n</c> and <c>last</c>. Without <c>n</c> a page is the configured maximum; a larger <c>n</c> is
    /// clamped to it (the Link header then points at the rest).
    /// </summary>
    public static bool TryReadPagination(HttpRequest request, int maxPageSize, out int n, out string? last)
    {
        last = request.Query["last"].FirstOrDefault();
        n = maxPageSize;
        var raw = request.Query["n"].FirstOrDefault();
        if (raw is null) return true;
        if (!int.TryParse(raw, System.Globalization.NumberStyles.None, null, out n) || n < 0)
            return false;
        n = Math.Min(n, maxPageSize);
        return true;
    }
}
