using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Registry.Bench;

/// <summary>
/// Authenticates every request the way clients do: <c>basic</c> sends the user's credentials each time (as docker and
/// podman do against an htpasswd registry); <c>bearer</c> learns the token realm from the <c>GET /v2/</c> challenge
/// and fetches one token per scope (<c>repository:&lt;name&gt;:pull</c> for reads, <c>pull,push,delete</c> for writes,
/// <c>registry:catalog:*</c>), renewed before it expires, as containerd and containers/image do.
/// </summary>
internal sealed partial class Credentials(string mode, string user, string password) : DelegatingHandler
{
    private readonly AuthenticationHeaderValue _basic =
        new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{password}")));
    private readonly ConcurrentDictionary<string, Lazy<Task<(string Token, DateTime Renew)>>> _tokens = new();
    private (string Realm, string Service)? _challenge;

    public static bool IsValidMode(string mode) => mode is "basic" or "bearer";

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken ct)
    {
        if (mode == "basic") request.Headers.Authorization = _basic;
        else if (ScopeOf(request) is { } scope)
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", await TokenAsync(request.RequestUri!, scope, ct));
        return await base.SendAsync(request, ct);
    }

    private static string? ScopeOf(HttpRequestMessage request)
    {
        var path = request.RequestUri!.AbsolutePath;
        if (!path.StartsWith("/v2/", StringComparison.Ordinal)) return null;
        if (path == "/v2/") return ""; // any valid token, as after `docker login`
        if (path.StartsWith("/v2/_catalog", StringComparison.Ordinal)) return "registry:catalog:*";
        var match = RepositoryPath().Match(path);
        if (!match.Success) return null;
        var read = request.Method == HttpMethod.Get || request.Method == HttpMethod.Head;
        return $"repository:{match.Groups[1].Value}:{(read ? "pull" : "pull,push,delete")}";
    }

    private async Task<string> TokenAsync(Uri uri, string scope, CancellationToken ct)
    {
        while (true)
        {
            var entry = _tokens.GetOrAdd(scope, s => new Lazy<Task<(string, DateTime)>>(() => FetchAsync(uri, s, ct)));
            var (token, renew) = await entry.Value;
            if (DateTime.UtcNow < renew) return token;
            _tokens.TryRemove(new KeyValuePair<string, Lazy<Task<(string, DateTime)>>>(scope, entry));
        }
    }

    private async Task<(string, DateTime)> FetchAsync(Uri uri, string scope, CancellationToken ct)
    {
        var (realm, service) = _challenge ??= await ChallengeAsync(uri, ct);
        var query = $"service={Uri.EscapeDataString(service)}" + (scope.Length > 0 ? $"&scope={Uri.EscapeDataString(scope)}" : "");
        using var request = new HttpRequestMessage(HttpMethod.Get, $"{realm}?{query}");
        request.Headers.Authorization = _basic;
        using var response = await base.SendAsync(request, ct);
        if (response.StatusCode != HttpStatusCode.OK)
            throw new InvalidOperationException($"token for {scope}: {(int)response.StatusCode}");
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct));
        var token = json.RootElement.GetProperty("token").GetString()!;
        var lifetime = json.RootElement.TryGetProperty("expires_in", out var e) ? e.GetInt32() : 60;
        return (token, DateTime.UtcNow.AddSeconds(Math.Max(5, lifetime - 30)));
    }

    private async Task<(string, string)> ChallengeAsync(Uri uri, CancellationToken ct)
    {
        using var ping = new HttpRequestMessage(HttpMethod.Get, new Uri(uri, "/v2/"));
        using var response = await base.SendAsync(ping, ct);
        var bearer = response.Headers.WwwAuthenticate.FirstOrDefault(h => h.Scheme == "Bearer")
                     ?? throw new InvalidOperationException("the registry sent no Bearer challenge on GET /v2/");
        string Parameter(string name) => Regex.Match(bearer.Parameter ?? "", $"{name}=\"([^\"]*)\"").Groups[1].Value;
        return (Parameter("realm"), Parameter("service"));
    }

    // Names contain slashes (and may contain "manifests"): anchor on the route's own tail.
    [GeneratedRegex("^/v2/(.+)/(?:blobs/uploads/[^/]*|(?:manifests|blobs|referrers)/[^/]+|tags/list)$")]
    private static partial Regex RepositoryPath();
}
