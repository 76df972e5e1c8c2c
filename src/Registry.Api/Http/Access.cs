using Registry.Storage.Model;

namespace Registry.Api.Http;

/// <summary>
/// What a request needs to be allowed. Every endpoint, core or extension, declares one, so the authorization layer
/// enforces both in one place (<see cref="IAccessPolicy"/>).
/// </summary>
public enum RequiredAccess
{
    /// <summary>Read a repository's content or metadata.</summary>
    Pull,
    /// <summary>Write to a repository.</summary>
    Push,
    /// <summary>Delete from a repository.</summary>
    Delete,
    /// <summary>Read registry-wide listings (catalog, search, discovery); what they list is filtered per caller.</summary>
    RegistryRead,
    /// <summary>Registry-wide operations (event stream, management).</summary>
    RegistryAdmin,
    /// <summary>Any caller who proved who they are (<c>GET /v2/</c>, where clients discover the auth scheme).</summary>
    Authenticated,
}

/// <summary>The access one request needs: on which repository (null for registry scope), and what.</summary>
public readonly record struct AccessRequest(RepositoryName? Repository, RequiredAccess Access);

public enum AccessOutcome
{
    Allowed,
    /// <summary>No (valid) credentials, or a token without the scope: 401 with a challenge.</summary>
    Unauthenticated,
    /// <summary>Known caller without the right: 403 DENIED.</summary>
    Denied,
    /// <summary>Too many failed logins from this client: 429 with Retry-After.</summary>
    Throttled,
}

/// <summary>The policy's answer; <see cref="Challenge"/> is the <c>WWW-Authenticate</c> value of a 401.</summary>
public sealed record AccessDecision(AccessOutcome Outcome, string? Challenge = null, TimeSpan? RetryAfter = null,
    bool BadCredentials = false)
{
    public static readonly AccessDecision Allow = new(AccessOutcome.Allowed);
    public static readonly AccessDecision Deny = new(AccessOutcome.Denied);

    public bool IsAllowed => Outcome == AccessOutcome.Allowed;

    /// <summary>
    /// The spec's error body for a refusal (never call it for <see cref="AccessOutcome.Allowed"/>); answering it counts
    /// one auth failure by reason in the metrics.
    /// </summary>
    internal IResult ToResult() => new Refusal(this);

    /// <summary>A small fixed set, fit for a metrics label.</summary>
    internal string Reason => Outcome switch
    {
        AccessOutcome.Throttled => "throttled",
        AccessOutcome.Denied => "denied",
        _ when BadCredentials => "invalid_credentials",
        _ when Challenge?.Contains("error=\"insufficient_scope\"", StringComparison.Ordinal) == true => "insufficient_scope",
        _ => "unauthenticated",
    };

    private sealed class Refusal(AccessDecision decision) : IResult
    {
        public Task ExecuteAsync(HttpContext context)
        {
            context.RequestServices.GetService<Observability.RegistryMetrics>()?.AuthFailed(decision.Reason);
            return (decision.Outcome switch
            {
                AccessOutcome.Unauthenticated => new RegistryError(ErrorCode.Unauthorized, null,
                    response => response.Headers.WWWAuthenticate = decision.Challenge),
                AccessOutcome.Throttled => new RegistryError(ErrorCode.TooManyRequests, "too many failed logins",
                    response => response.Headers.RetryAfter =
                        Math.Max(1, (int)Math.Ceiling((decision.RetryAfter ?? TimeSpan.Zero).TotalSeconds)).ToString(
                            System.Globalization.CultureInfo.InvariantCulture)),
                _ => new RegistryError(ErrorCode.Denied),
            }).ExecuteAsync(context);
        }
    }
}

/// <summary>
/// Decides whether a request may go on: the one choke point for core and extension routes. MUST be called before
/// any handler runs. Implementations authenticate the caller at most once per request.
/// </summary>
public interface IAccessPolicy
{
    ValueTask<AccessDecision> AuthorizeAsync(HttpContext context, AccessRequest request);

    /// <summary>
    /// The repositories the caller may pull, for listings (catalog, search, events) and automatic mounts; null when
    /// the caller may pull every repository.
    /// </summary>
    ValueTask<Func<RepositoryName, bool>?> PullableAsync(HttpContext context);
}

/// <summary>No authentication (<c>Registry:Auth:Mode=none</c>): everything is allowed.</summary>
internal sealed class AllowAllPolicy : IAccessPolicy
{
    public ValueTask<AccessDecision> AuthorizeAsync(HttpContext context, AccessRequest request) =>
        ValueTask.FromResult(AccessDecision.Allow);

    public ValueTask<Func<RepositoryName, bool>?> PullableAsync(HttpContext context) =>
        ValueTask.FromResult<Func<RepositoryName, bool>?>(null);
}
