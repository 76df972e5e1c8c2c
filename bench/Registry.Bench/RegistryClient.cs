using System.Buffers;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;

namespace Registry.Bench;

/// <summary>
/// The OCI distribution calls the benchmark makes. Every call checks the status it expects; anything else is
/// recorded as an error of the current phase (method, path, status and the start of the body) and returns false.
/// </summary>
internal sealed class RegistryClient(HttpClient http, Uri baseUri)
{
    public const string ManifestMediaType = "application/vnd.oci.image.manifest.v1+json";
    public const string ManifestAccept = "application/vnd.oci.image.manifest.v1+json, "
                                         + "application/vnd.oci.image.index.v1+json, "
                                         + "application/vnd.docker.distribution.manifest.v2+json, "
                                         + "application/vnd.docker.distribution.manifest.list.v2+json";

    /// <summary>How many single-request POST ?digest= uploads the registry answered 202 to (it then needs a PUT).</summary>
    public long SinglePostFallbacks;

    public HttpClient Http => http;
    public Uri BaseUri => baseUri;

    public Uri Url(string pathAndQuery) => new(baseUri, pathAndQuery);

    /// <param name="credentials">null: anonymous; else every request authenticated (see <see cref="Credentials"/>).</param>
    /// <param name="timeout">Longest a request may take (default 10 minutes).</param>
    public static HttpClient CreateHttpClient(Credentials? credentials = null, TimeSpan? timeout = null)
    {
        var sockets = new SocketsHttpHandler
        {
            UseProxy = false,
            MaxConnectionsPerServer = 1024,
            AutomaticDecompression = DecompressionMethods.None,
            AllowAutoRedirect = true,
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5),
            ConnectTimeout = TimeSpan.FromSeconds(10),
            UseCookies = false,
        };
        HttpMessageHandler handler = sockets;
        if (credentials is not null)
        {
            credentials.InnerHandler = sockets;
            handler = credentials;
        }
        return new HttpClient(handler) { Timeout = timeout ?? TimeSpan.FromMinutes(10) };
    }

    private static async Task<bool> CheckAsync(Phase phase, HttpResponseMessage response, HttpStatusCode expected,
        string what)
    {
        phase.Request();
        if (response.StatusCode == expected) return true;
        string body;
        try
        {
            body = await response.Content.ReadAsStringAsync();
        }
        catch (HttpRequestException e)
        {
            body = e.Message;
        }
        if (body.Length > 300) body = body[..300] + "…";
        phase.Error($"{what} -> {(int)response.StatusCode} {body.Trim()}");
        return false;
    }

    /// <summary>The upload URL with <c>digest</c> added (distribution's Location already has a query).</summary>
    private static Uri WithDigest(Uri location, string digest) =>
        new(location + (location.Query.Length > 0 ? "&" : "?") + "digest=" + Uri.EscapeDataString(digest));

    private Uri Resolve(HttpResponseMessage response) =>
        response.Headers.Location is { } location ? new Uri(baseUri, location) : throw new InvalidOperationException(
            $"{(int)response.StatusCode} without Location");

    public async Task<bool> PingAsync(Phase phase, CancellationToken ct)
    {
        using var response = await http.GetAsync(Url("/v2/"), ct);
        return await CheckAsync(phase, response, HttpStatusCode.OK, "GET /v2/");
    }

    /// <summary>POST a new upload session; its Location.</summary>
    public async Task<Uri?> StartUploadAsync(Phase phase, string repo, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, Url($"/v2/{repo}/blobs/uploads/"));
        request.Content = new ByteArrayContent([]);
        using var response = await http.SendAsync(request, ct);
        if (!await CheckAsync(phase, response, HttpStatusCode.Accepted, $"POST /v2/{repo}/blobs/uploads/")) return null;
        return Resolve(response);
    }

    /// <summary>Monolithic push: POST a session, then one PUT ?digest= carrying the whole body.</summary>
    public async Task<bool> PushMonolithicAsync(Phase phase, string repo, HttpContent content, string digest,
        CancellationToken ct)
    {
        if (await StartUploadAsync(phase, repo, ct) is not { } location) return false;
        using var request = new HttpRequestMessage(HttpMethod.Put, WithDigest(location, digest)) { Content = content };
        using var response = await http.SendAsync(request, ct);
        return await CheckAsync(phase, response, HttpStatusCode.Created, $"PUT {repo} upload ?digest= ({digest})");
    }

    /// <summary>Chunked push: POST, PATCH chunks with Content-Range (following each new Location), PUT ?digest=.</summary>
    public async Task<bool> PushChunkedAsync(Phase phase, string repo, ulong seed, long size, int chunkSize,
        string digest, CancellationToken ct)
    {
        if (await StartUploadAsync(phase, repo, ct) is not { } location) return false;
        for (long offset = 0; offset < size; offset += chunkSize)
        {
            var length = Math.Min(chunkSize, size - offset);
            using var patch = new HttpRequestMessage(HttpMethod.Patch, location);
            patch.Content = new GeneratedContent(seed, offset, length);
            patch.Content.Headers.TryAddWithoutValidation("Content-Range", $"{offset}-{offset + length - 1}");
            using var response = await http.SendAsync(patch, ct);
            if (!await CheckAsync(phase, response, HttpStatusCode.Accepted, $"PATCH {repo} upload at {offset}"))
                return false;
            location = Resolve(response);
        }
        using var put = new HttpRequestMessage(HttpMethod.Put, WithDigest(location, digest));
        put.Content = new ByteArrayContent([]);
        using var done = await http.SendAsync(put, ct);
        return await CheckAsync(phase, done, HttpStatusCode.Created, $"PUT {repo} upload ?digest= (close)");
    }

    /// <summary>
    /// Single-request push (POST ?digest= with the body). A registry that answers 202 instead (distribution 2.8 does)
    /// gets the body again in a PUT to the session it opened, as the spec tells clients to do.
    /// </summary>
    public async Task<bool> PushSmallAsync(Phase phase, string repo, byte[] data, string digest, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post,
            Url($"/v2/{repo}/blobs/uploads/?digest={Uri.EscapeDataString(digest)}"));
        request.Content = new ByteArrayContent(data);
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        using var response = await http.SendAsync(request, ct);
        if (response.StatusCode == HttpStatusCode.Created)
        {
            phase.Request();
            return true;
        }
        if (response.StatusCode != HttpStatusCode.Accepted)
            return await CheckAsync(phase, response, HttpStatusCode.Created, $"POST {repo} ?digest= (single request)");
        phase.Request();
        Interlocked.Increment(ref SinglePostFallbacks);
        using var put = new HttpRequestMessage(HttpMethod.Put, WithDigest(Resolve(response), digest));
        put.Content = new ByteArrayContent(data);
        put.Content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        using var done = await http.SendAsync(put, ct);
        return await CheckAsync(phase, done, HttpStatusCode.Created, $"PUT {repo} upload ?digest= (after 202 to POST)");
    }

    public async Task<bool> PutManifestAsync(Phase phase, string repo, string reference, byte[] manifest,
        CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Put, Url($"/v2/{repo}/manifests/{reference}"));
        request.Content = new ByteArrayContent(manifest);
        request.Content.Headers.ContentType = new MediaTypeHeaderValue(ManifestMediaType);
        using var response = await http.SendAsync(request, ct);
        return await CheckAsync(phase, response, HttpStatusCode.Created, $"PUT /v2/{repo}/manifests/{reference}");
    }

    public async Task<bool> ManifestAsync(Phase phase, HttpMethod method, string repo, string reference,
        CancellationToken ct)
    {
        using var request = new HttpRequestMessage(method, Url($"/v2/{repo}/manifests/{reference}"));
        request.Headers.TryAddWithoutValidation("Accept", ManifestAccept);
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseContentRead, ct);
        return await CheckAsync(phase, response, HttpStatusCode.OK, $"{method} /v2/{repo}/manifests/{reference}");
    }

    /// <summary>GET a manifest with the usual Accept list; its bytes, or null on an error.</summary>
    public async Task<byte[]?> GetManifestAsync(Phase phase, string repo, string reference, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, Url($"/v2/{repo}/manifests/{reference}"));
        request.Headers.TryAddWithoutValidation("Accept", ManifestAccept);
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseContentRead, ct);
        if (!await CheckAsync(phase, response, HttpStatusCode.OK, $"GET /v2/{repo}/manifests/{reference}")) return null;
        return await response.Content.ReadAsByteArrayAsync(ct);
    }

    /// <summary>GET a blob (or a range of it), reading and discarding the body; the number of bytes read.</summary>
    public async Task<long?> PullAsync(Phase phase, string repo, string digest, (long From, long To)? range,
        CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, Url($"/v2/{repo}/blobs/{digest}"));
        if (range is { } r) request.Headers.Range = new RangeHeaderValue(r.From, r.To);
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
        var expected = range is null ? HttpStatusCode.OK : HttpStatusCode.PartialContent;
        if (!await CheckAsync(phase, response, expected, $"GET /v2/{repo}/blobs/{digest}")) return null;
        await using var stream = await response.Content.ReadAsStreamAsync(ct);
        var buffer = ArrayPool<byte>.Shared.Rent(1 << 20);
        try
        {
            long total = 0;
            int n;
            while ((n = await stream.ReadAsync(buffer, ct)) > 0) total += n;
            return total;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// GETs a paginated list (tags or catalog) from <paramref name="first"/>, following <c>Link: rel="next"</c> to the
    /// end; the entries of <paramref name="property"/> counted, and the number of pages. Null on an error.
    /// </summary>
    public async Task<(long Entries, int Pages)?> ListAllAsync(Phase phase, string first, string property,
        bool follow, CancellationToken ct)
    {
        var url = Url(first);
        long entries = 0;
        var pages = 0;
        while (true)
        {
            using var response = await http.GetAsync(url, ct);
            if (!await CheckAsync(phase, response, HttpStatusCode.OK, $"GET {url.PathAndQuery}")) return null;
            pages++;
            await using (var stream = await response.Content.ReadAsStreamAsync(ct))
            {
                using var json = await JsonDocument.ParseAsync(stream, cancellationToken: ct);
                if (json.RootElement.TryGetProperty(property, out var array) && array.ValueKind == JsonValueKind.Array)
                    entries += array.GetArrayLength();
            }
            if (!follow || NextLink(response) is not { } next) return (entries, pages);
            url = new Uri(baseUri, next);
        }
    }

    private static string? NextLink(HttpResponseMessage response)
    {
        if (!response.Headers.TryGetValues("Link", out var values)) return null;
        foreach (var value in values)
        {
            if (!value.Contains("rel=\"next\"", StringComparison.Ordinal)) continue;
            var open = value.IndexOf('<');
            var close = value.IndexOf('>');
            if (open >= 0 && close > open) return value[(open + 1)..close];
        }
        return null;
    }
}
