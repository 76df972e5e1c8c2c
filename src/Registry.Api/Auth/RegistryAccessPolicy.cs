using System.Collections.Concurrent;
using System.Security.Claims;
using System.Text;
using Registry.Api.Http;
using Registry.Storage.Model;

namespace Registry.Api.Auth;

/// <summary>
/// The access policy when authentication is on (<c>Registry:Auth:Mode</c> htpasswd or token): authenticates the caller
/// once per request (Basic against the htpasswd file, or a Bearer token), then decides with the configured rules (or,
/// for tokens, exactly the grants the token carries). Unauthenticated callers get 401 with the mode's challenge;
/// known callers without the right get 403 DENIED (tokens: 401 <c>insufficient_scope</c>, so clients fetch a better
/// token); too many failed logins from one address get 429.
/// </summary>
internal sealed class RegistryAccessPolicy : IAccessPolicy
{
    private readonly AuthSettings _settings;
    private readonly AccessRules _rules;
    private readonly HtpasswdUsers? _users;
    private readonly TokenValidator? _tokens;
    private readonly LoginThrottle _throttle;
    private readonly ILogger _logger;

    public RegistryAccessPolicy(AuthSettings settings, AccessRules rules, HtpasswdUsers? users, TokenValidator? tokens,
        LoginThrottle throttle, ILogger<RegistryAccessPolicy> logger)
    {
        _settings = settings;
        _rules = rules;
        _users = users;
        _tokens = tokens;
        _throttle = throttle;
        _logger = logger;
    }

    private enum Failure { None, InvalidCredentials, Throttled }

    private sealed record Authentication(Caller Caller, Failure Failure, TimeSpan? RetryAfter = null,
        ClaimsPrincipal? Principal = null);

    /// <summary>A verified credential: valid until <see cref="Until"/> (Environment.TickCount64) and, for Basic, while
    /// the htpasswd file is the one it was checked against.</summary>
    private readonly record struct Verified(Authentication Authentication, long Until, long Version);

    /// <summary>Keyed by an HMAC of the whole Authorization header (<see cref="SecretHasher"/>), never the secret.</summary>
    private readonly ConcurrentDictionary<SecretHash, Verified> _verified = new();

    private static readonly object ItemKey = new();

    public async ValueTask<AccessDecision> AuthorizeAsync(HttpContext context, AccessRequest request)
    {
        var auth = await AuthenticateAsync(context);
        if (auth.Failure == Failure.Throttled)
            return new AccessDecision(AccessOutcome.Throttled, RetryAfter: auth.RetryAfter);
        if (auth.Failure == Failure.InvalidCredentials)
            return new AccessDecision(AccessOutcome.Unauthenticated, Challenge(context, request, "invalid_token"),
                BadCredentials: true);
        if (Allows(auth.Caller, request)) return AccessDecision.Allow;
        if (_settings.Mode == AuthMode.Token)
            return new AccessDecision(AccessOutcome.Unauthenticated,
                Challenge(context, request, auth.Caller.Grants is null ? null : "insufficient_scope"));
        return auth.Caller.IsAnonymous
            ? new AccessDecision(AccessOutcome.Unauthenticated, Challenge(context, request, null))
            : AccessDecision.Deny;
    }

    public async ValueTask<Func<RepositoryName, bool>?> PullableAsync(HttpContext context)
    {
        var caller = (await AuthenticateAsync(context)).Caller;
        if (caller.Grants is { } grants && _settings.Token.IsExternal)
        {
            // An external issuer's token: its grants are all we know of the caller.
            if (Grants(grants, TokenGrant.RegistryType, TokenGrant.Catalog, "*")) return null;
            return name => Grants(grants, TokenGrant.RepositoryType, name.Value, "pull");
        }
        if (!caller.IsAnonymous && !_settings.HasPolicy) return null;
        return name => (_rules.ActionsOn(caller, name) & RegistryActions.Pull) != 0;
    }

    private bool Allows(Caller caller, AccessRequest request)
    {
        if (caller.Grants is { } grants)
            return request.Access switch
            {
                RequiredAccess.Authenticated => true,
                RequiredAccess.RegistryRead => Grants(grants, TokenGrant.RegistryType, TokenGrant.Catalog, "*"),
                RequiredAccess.RegistryAdmin => Grants(grants, TokenGrant.RegistryType, TokenGrant.Admin, "*"),
                _ => request.Repository is { } repository
                     && Grants(grants, TokenGrant.RepositoryType, repository.Value, ActionOf(request.Access)),
            };
        if (_settings.Mode == AuthMode.Token) return false;
        return request.Access switch
        {
            RequiredAccess.Authenticated => !caller.IsAnonymous,
            RequiredAccess.RegistryRead => !caller.IsAnonymous || _rules.AllowsAnonymous,
            RequiredAccess.RegistryAdmin => _rules.IsAdmin(caller),
            _ => request.Repository is { } repository
                 && (_rules.ActionsOn(caller, repository) & Required(request.Access)) != 0,
        };
    }

    private static bool Grants(IReadOnlyList<TokenGrant> grants, string type, string name, string action)
    {
        foreach (var grant in grants)
            if (grant.Allows(type, name, action)) return true;
        return false;
    }

    private static RegistryActions Required(RequiredAccess access) => access switch
    {
        RequiredAccess.Pull => RegistryActions.Pull,
        RequiredAccess.Push => RegistryActions.Push,
        RequiredAccess.Delete => RegistryActions.Delete,
        _ => RegistryActions.None,
    };

    private static string ActionOf(RequiredAccess access) => access switch
    {
        RequiredAccess.Push => "push",
        RequiredAccess.Delete => "delete",
        _ => "pull",
    };

    /// <summary>The token scope a request needs, as a challenge names it (pushes ask for pull too, as clients do).</summary>
    internal static string? ScopeOf(AccessRequest request) => request.Access switch
    {
        RequiredAccess.Authenticated => null,
        RequiredAccess.RegistryRead => "registry:catalog:*",
        RequiredAccess.RegistryAdmin => "registry:admin:*",
        RequiredAccess.Push => $"repository:{request.Repository}:pull,push",
        RequiredAccess.Delete => $"repository:{request.Repository}:delete",
        _ => $"repository:{request.Repository}:pull",
    };

    private string Challenge(HttpContext context, AccessRequest request, string? error)
    {
        if (_settings.Mode == AuthMode.Htpasswd) return $"Basic realm=\"{Quote(_settings.Htpasswd.Realm)}\"";
        var challenge = new StringBuilder($"Bearer realm=\"{Quote(TokenRealm(context))}\",service=\"{Quote(_settings.Token.Service)}\"");
        if (ScopeOf(request) is { } scope) challenge.Append($",scope=\"{scope}\"");
        if (error is not null) challenge.Append($",error=\"{error}\"");
        return challenge.ToString();
    }

    /// <summary>The configured realm, else this registry's own token endpoint as the client reached it.</summary>
    internal string TokenRealm(HttpContext context) =>
        !string.IsNullOrWhiteSpace(_settings.Token.Realm)
            ? _settings.Token.Realm
            : $"{context.Request.Scheme}://{context.Request.Host}{TokenEndpoints.TokenPath}";

    private static string Quote(string value) => value.Replace("\\", "\\\\").Replace("\"", "\\\"");

    private async ValueTask<Authentication> AuthenticateAsync(HttpContext context)
    {
        if (context.Items[ItemKey] is Authentication known) return known;
        var header = context.Request.Headers.Authorization.ToString();
        Authentication auth;
        if (header.Length == 0) auth = Unauthenticated;
        else
        {
            var key = SecretHasher.Of(header);
            var version = _users?.Version ?? 0;
            if (_verified.TryGetValue(key, out var hit) && hit.Version == version && hit.Until > Environment.TickCount64)
                auth = hit.Authentication;
            else
            {
                (auth, var lifetime) = await ReadCredentialsAsync(context, header);
                if (auth.Failure == Failure.None && lifetime > TimeSpan.Zero)
                {
                    if (_verified.Count > 10_000) _verified.Clear();
                    _verified[key] = new Verified(auth, Environment.TickCount64 + (long)lifetime.TotalMilliseconds, version);
                }
            }
        }
        context.Items[ItemKey] = auth;
        if (auth.Principal is { } principal) context.User = principal;
        return auth;
    }

    private static readonly Authentication Unauthenticated = new(Caller.Anonymous, Failure.None);

    private Authentication Known(Caller caller) =>
        new(caller, Failure.None, Principal: caller.Name is { } name
            ? new ClaimsPrincipal(new ClaimsIdentity([new Claim(ClaimTypes.Name, name)],
                _settings.Mode == AuthMode.Token ? "Bearer" : "Basic", ClaimTypes.Name, ClaimTypes.Role))
            : null);

    /// <summary>Checks the credentials of the header; a success comes with how long it may be remembered.</summary>
    private async ValueTask<(Authentication, TimeSpan)> ReadCredentialsAsync(HttpContext context, string header)
    {
        if (_settings.Mode == AuthMode.Token)
        {
            if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)) return (Unauthenticated, TimeSpan.Zero);
            var token = await _tokens!.ValidateAsync(header["Bearer ".Length..].Trim());
            if (token is null)
            {
                _logger.LogInformation("Rejected a bearer token from {Client}", ClientOf(context));
                return (new Authentication(Caller.Anonymous, Failure.InvalidCredentials), TimeSpan.Zero);
            }
            var groups = token.Subject is { } subject ? _rules.GroupsOf(subject) : new HashSet<string>();
            // Remembered until it expires (the skew allowance included), never longer than a minute.
            var left = token.Expires + _tokens.ClockSkew - DateTimeOffset.UtcNow;
            return (Known(new Caller(token.Subject, groups, token.Grants)),
                left < TimeSpan.FromMinutes(1) ? left : TimeSpan.FromMinutes(1));
        }

        if (!BasicCredentials.TryParse(header, out var user, out var password))
            return (new Authentication(Caller.Anonymous, Failure.InvalidCredentials), TimeSpan.Zero);
        if (_throttle.RetryAfter(ClientOf(context)) is { } wait)
            return (new Authentication(Caller.Anonymous, Failure.Throttled, wait), TimeSpan.Zero);
        return Login(context, user, password) is { } caller
            ? (Known(caller), _users!.CacheDuration)
            : (new Authentication(Caller.Anonymous, Failure.InvalidCredentials), TimeSpan.Zero);
    }

    /// <summary>
    /// Checks a user and password against the htpasswd file, counting a failure against the client address; null
    /// when the login failed. Callers MUST first ask <see cref="LoginThrottle.RetryAfter"/> and check nothing while
    /// the address is throttled.
    /// </summary>
    internal Caller? Login(HttpContext context, string user, string password)
    {
        var client = ClientOf(context);
        if (_users!.Verify(user, password)) return new Caller(user, _rules.GroupsOf(user));
        _throttle.Failed(client);
        _logger.LogInformation("Failed login for {User} from {Client}", user, client);
        return null;
    }

    internal static string ClientOf(HttpContext context) => context.Connection.RemoteIpAddress?.ToString() ?? "unknown";
}

/// <summary><c>Authorization: Basic base64(user:password)</c> (RFC 7617).</summary>
internal static class BasicCredentials
{
    public static bool TryParse(string header, out string user, out string password)
    {
        user = password = "";
        if (!header.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase)) return false;
        try
        {
            var decoded = Encoding.UTF8.GetString(Convert.FromBase64String(header["Basic ".Length..].Trim()));
            var colon = decoded.IndexOf(':');
            if (colon <= 0) return false;
            user = decoded[..colon];
            password = decoded[(colon + 1)..];
            return true;
        }
        catch (FormatException)
        {
            return false;
        }
    }
}
