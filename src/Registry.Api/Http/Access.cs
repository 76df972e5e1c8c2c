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
    /// <summary>Read registry-wide listings (catalog, search, discovery).</summary>
    RegistryRead,
    /// <summary>Registry-wide operations (event stream, management).</summary>
    RegistryAdmin,
}

/// <summary>The access one request needs: on which repository (null for registry scope), and what.</summary>
public readonly record struct AccessRequest(RepositoryName? Repository, RequiredAccess Access);

/// <summary>
/// Decides whether a request may go on. The default allows everything (the registry has no authentication yet);
/// an authentication layer replaces it. MUST be called before any handler runs.
/// </summary>
public interface IAccessPolicy
{
    ValueTask<bool> IsAllowedAsync(HttpContext context, AccessRequest request);
}

internal sealed class AllowAllPolicy : IAccessPolicy
{
    public ValueTask<bool> IsAllowedAsync(HttpContext context, AccessRequest request) => ValueTask.FromResult(true);
}
