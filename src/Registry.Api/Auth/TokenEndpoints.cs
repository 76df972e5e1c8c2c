using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.Extensions.Options;
using Registry.Api.Configuration;
using Registry.Api.Http;
using Registry.Storage.Model;

namespace Registry.Api.Auth;

/// <summary>
/// The built-in token service of the Docker registry token authentication flow (docs: docker token spec, and its
/// OAuth2 form): <c>GET /auth/token</c> with Basic credentials (or none, for anonymous pulls), <c>service</c> and
/// repeated <c>scope</c>; <c>POST /auth/token</c> with the <c>password</c> and <c>refresh_token</c> grants; the public
/// keys at <c>GET /auth/jwks</c>. A token's <c>access</c> claim holds only what the policy grants: a scope asked for but
/// not allowed is left out (or narrowed to the allowed actions), never granted.
/// </summary>
internal static class TokenEndpoints
{
    public const string TokenPath = "/auth/token";
    public const string JwksPath = "/auth/jwks";

    public static IEndpointRouteBuilder MapTokenService(this IEndpointRouteBuilder routes)
    {
        routes.MapGet(TokenPath, (HttpContext context, TokenService service) => service.GetAsync(context));
        routes.MapPost(TokenPath, (HttpContext context, TokenService service) => service.PostAsync(context));
        routes.MapGet(JwksPath, (TokenSigningKey key) => Responses.Json(key.WriteJwks, "application/jwk-set+json"));
        return routes;
    }
}

internal sealed class TokenService(IOptions<RegistryOptions> options, AccessRules rules, HtpasswdUsers users,
    TokenSigningKey key, TokenValidator validator, RegistryAccessPolicy policy, LoginThrottle throttle, TimeProvider time)
{
    private TokenSettings Settings => options.Value.Auth.Token;

    // GET: the token spec's form. Basic credentials are optional (anonymous tokens carry the anonymous grants).
    public Task<IResult> GetAsync(HttpContext context) => Task.FromResult(Get(context));

    private IResult Get(HttpContext context)
    {
        var query = context.Request.Query;
        var caller = Caller.Anonymous;
        var header = context.Request.Headers.Authorization.ToString();
        if (header.Length > 0)
        {
            if (throttle.RetryAfter(RegistryAccessPolicy.ClientOf(context)) is { } wait)
                return new AccessDecision(AccessOutcome.Throttled, RetryAfter: wait).ToResult();
            if (!BasicCredentials.TryParse(header, out var user, out var password)
                || policy.Login(context, user, password) is not { } known)
                return new AccessDecision(AccessOutcome.Unauthenticated,
                    $"Basic realm=\"{options.Value.Auth.Htpasswd.Realm}\"").ToResult();
            caller = known;
        }
        if (CheckService(query["service"].FirstOrDefault()) is { } wrongService) return wrongService;
        if (ParseScopes(query["scope"].SelectMany(s => (s ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries)))
            is not { } scopes)
            return new RegistryError(ErrorCode.InvalidParameters, "invalid scope");
        var refresh = !caller.IsAnonymous && query["offline_token"].FirstOrDefault() == "true" ? RefreshToken(caller) : null;
        return Issue(caller, scopes, refresh, oauth: false);
    }

    // POST: OAuth2 (RFC 6749) password and refresh_token grants, as podman and containerd send them.
    public async Task<IResult> PostAsync(HttpContext context)
    {
        if (!context.Request.HasFormContentType) return OAuthError(400, "invalid_request", "expected a form body");
        var form = await context.Request.ReadFormAsync(context.RequestAborted);
        if (CheckService(form["service"].FirstOrDefault()) is { } wrongService) return wrongService;
        if (ParseScopes((form["scope"].FirstOrDefault() ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries))
            is not { } scopes)
            return OAuthError(400, "invalid_scope", "invalid scope");

        Caller caller;
        string? refresh = null;
        switch (form["grant_type"].FirstOrDefault())
        {
            case "password":
                if (throttle.RetryAfter(RegistryAccessPolicy.ClientOf(context)) is { } wait)
                    return new AccessDecision(AccessOutcome.Throttled, RetryAfter: wait).ToResult();
                var user = form["username"].FirstOrDefault() ?? "";
                if (policy.Login(context, user, form["password"].FirstOrDefault() ?? "") is not { } known)
                    return OAuthError(401, "invalid_grant", "invalid username or password");
                caller = known;
                if (form["access_type"].FirstOrDefault() == "offline") refresh = RefreshToken(caller);
                break;
            case "refresh_token":
                var presented = form["refresh_token"].FirstOrDefault() ?? "";
                if (await validator.ValidateRefreshAsync(presented) is not { } subject || !users.Exists(subject))
                    return OAuthError(401, "invalid_grant", "invalid or expired refresh token");
                caller = new Caller(subject, rules.GroupsOf(subject));
                refresh = presented;
                break;
            default:
                return OAuthError(400, "unsupported_grant_type", "grant_type must be password or refresh_token");
        }
        return Issue(caller, scopes, refresh, oauth: true);
    }

    private IResult? CheckService(string? service) =>
        service is null || service == Settings.Service
            ? null
            : new RegistryError(ErrorCode.InvalidParameters, $"this token service issues tokens for '{Settings.Service}' only");

    private static IResult OAuthError(int status, string error, string description) =>
        new OAuthErrorResult(status, error, description);

    private sealed class OAuthErrorResult(int status, string error, string description) : IResult
    {
        public Task ExecuteAsync(HttpContext context)
        {
            context.Response.Headers.CacheControl = "no-store";
            return Responses.Json(writer =>
            {
                writer.WriteStartObject();
                writer.WriteString("error", error);
                writer.WriteString("error_description", description);
                writer.WriteEndObject();
            }, headers: response => response.StatusCode = status).ExecuteAsync(context);
        }
    }

    private sealed record Scope(string Type, string Name, IReadOnlyList<string> Actions);

    /// <summary><c>repository:team/app:pull,push</c>, <c>registry:catalog:*</c>; null when one is malformed.</summary>
    private static List<Scope>? ParseScopes(IEnumerable<string> values)
    {
        var scopes = new List<Scope>();
        foreach (var value in values)
        {
            var first = value.IndexOf(':');
            var last = value.LastIndexOf(':');
            if (first <= 0 || last <= first) return null;
            var type = value[..first];
            var paren = type.IndexOf('(');
            if (paren > 0) type = type[..paren]; // repository(plugin): the class is not a separate resource type
            var actions = value[(last + 1)..].Split(',', StringSplitOptions.RemoveEmptyEntries);
            scopes.Add(new Scope(type, value[(first + 1)..last], actions));
        }
        return scopes.Count > 100 ? null : scopes;
    }

    /// <summary>What the policy grants of each requested scope; scopes with nothing granted are left out.</summary>
    private List<TokenGrant> Grant(Caller caller, List<Scope> scopes)
    {
        var grants = new List<TokenGrant>();
        foreach (var scope in scopes)
        {
            List<string> granted = [];
            if (scope.Type == TokenGrant.RepositoryType && RepositoryName.TryParse(scope.Name, out var repository))
            {
                var allowed = rules.ActionsOn(caller, repository);
                foreach (var action in scope.Actions)
                {
                    if (action == "*") granted.AddRange(ActionNames.Names(allowed));
                    else if (ActionNames.TryParse(action, out var one) && one != RegistryActions.All && (allowed & one) != 0)
                        granted.Add(action);
                }
            }
            else if (scope.Type == TokenGrant.RegistryType && scope.Actions.Contains("*"))
            {
                var ok = scope.Name switch
                {
                    TokenGrant.Catalog => !caller.IsAnonymous || rules.AllowsAnonymous,
                    TokenGrant.Admin => rules.IsAdmin(caller),
                    _ => false,
                };
                if (ok) granted.Add("*");
            }
            granted = granted.Distinct(StringComparer.Ordinal).ToList();
            if (granted.Count > 0) grants.Add(new TokenGrant(scope.Type, scope.Name, granted));
        }
        return grants;
    }

    private IResult Issue(Caller caller, List<Scope> scopes, string? refresh, bool oauth)
    {
        var grants = Grant(caller, scopes);
        var now = time.GetUtcNow();
        var expires = now + Settings.Lifetime;
        var token = key.Sign(writer =>
        {
            writer.WriteStartObject();
            WriteClaims(writer, caller.Name ?? "", now, expires, "access");
            writer.WriteNumber("nbf", now.ToUnixTimeSeconds());
            writer.WriteStartArray("access");
            foreach (var grant in grants)
            {
                writer.WriteStartObject();
                writer.WriteString("type", grant.Type);
                writer.WriteString("name", grant.Name);
                writer.WriteStartArray("actions");
                foreach (var action in grant.Actions) writer.WriteStringValue(action);
                writer.WriteEndArray();
                writer.WriteEndObject();
            }
            writer.WriteEndArray();
            writer.WriteEndObject();
        });
        return Responses.Json(writer =>
        {
            writer.WriteStartObject();
            if (!oauth) writer.WriteString("token", token);
            writer.WriteString("access_token", token);
            if (oauth)
            {
                writer.WriteString("token_type", "Bearer");
                writer.WriteString("scope", string.Join(' ', grants.Select(g => $"{g.Type}:{g.Name}:{string.Join(',', g.Actions)}")));
            }
            writer.WriteNumber("expires_in", (long)Settings.Lifetime.TotalSeconds);
            writer.WriteString("issued_at", now.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", System.Globalization.CultureInfo.InvariantCulture));
            if (refresh is not null) writer.WriteString("refresh_token", refresh);
            writer.WriteEndObject();
        }, headers: response => response.Headers.CacheControl = "no-store");
    }

    private string RefreshToken(Caller caller)
    {
        var now = time.GetUtcNow();
        return key.Sign(writer =>
        {
            writer.WriteStartObject();
            WriteClaims(writer, caller.Name!, now, now + Settings.RefreshLifetime, "refresh");
            writer.WriteEndObject();
        });
    }

    /// <summary>The claims every token of this service carries; <c>token_use</c> keeps access and refresh tokens apart.</summary>
    private void WriteClaims(Utf8JsonWriter writer, string subject, DateTimeOffset now, DateTimeOffset expires, string use)
    {
        writer.WriteString("iss", Settings.Issuer);
        writer.WriteString("sub", subject);
        writer.WriteString("aud", Settings.Service);
        writer.WriteNumber("exp", expires.ToUnixTimeSeconds());
        writer.WriteNumber("iat", now.ToUnixTimeSeconds());
        writer.WriteString("jti", Convert.ToHexString(RandomNumberGenerator.GetBytes(16)));
        writer.WriteString("token_use", use);
    }
}
