using Registry.Api.Endpoints;
using Registry.Api.Http;
using Registry.Storage.Model;

namespace Registry.Api.Extensions.Framework;

/// <summary>
/// Resolves <c>_&lt;extension&gt;/&lt;component&gt;/&lt;module&gt;</c> (already split off by <see cref="RegistryPath"/>) to an
/// enabled endpoint: unknown → 404 EXTENSION_UNKNOWN, known path with another method → 405 UNSUPPORTED, repository
/// scope on a repository that does not exist → 404 NAME_UNKNOWN; then the endpoint's declared access is checked
/// exactly like a core route's.
/// </summary>
internal sealed class ExtensionRouter
{
    private readonly Dictionary<(ExtensionScope, string Path), List<ExtensionEndpoint>> _endpoints = new();

    public ExtensionRouter(IEnumerable<RegistryExtension> extensions)
    {
        Extensions = extensions.ToList();
        foreach (var extension in Extensions)
        foreach (var endpoint in extension.Endpoints)
        {
            var key = (endpoint.Scope, endpoint.PathIn(extension.Namespace));
            if (!_endpoints.TryGetValue(key, out var list)) _endpoints[key] = list = [];
            list.Add(endpoint);
        }
    }

    public IReadOnlyList<RegistryExtension> Extensions { get; }

    public async Task<IResult> DispatchAsync(HttpContext context, RegistryRoute route, RegistryServices services,
        IAccessPolicy policy)
    {
        var scope = route.RegistryScope ? ExtensionScope.Registry : ExtensionScope.Repository;
        RepositoryName? repository = null;
        if (scope == ExtensionScope.Repository)
        {
            if (!RepositoryName.TryParse(route.Name, out var name))
                return new RegistryError(ErrorCode.NameInvalid, $"invalid repository name '{route.Name}'");
            repository = name;
        }
        if (!IsExtensionPath(route.Argument) || !_endpoints.TryGetValue((scope, route.Argument), out var candidates))
            return new RegistryError(ErrorCode.ExtensionUnknown, route.Argument);

        var method = context.Request.Method;
        var endpoint = candidates.FirstOrDefault(e => e.Method == method)
                       ?? (HttpMethods.IsHead(method) ? candidates.FirstOrDefault(e => HttpMethods.IsGet(e.Method)) : null);
        if (endpoint is null) return RegistryApi.Unsupported();
        var decision = await policy.AuthorizeAsync(context, new AccessRequest(repository, endpoint.Access));
        if (!decision.IsAllowed) return decision.ToResult();
        if (repository is { } repo && !await services.ManifestStore.RepositoryExistsAsync(repo, context.RequestAborted))
            return new RegistryError(ErrorCode.NameUnknown, repo.Value);
        return await endpoint.Handler(new ExtensionRequest(context, repository, services));
    }

    /// <summary><c>_ext/component/module</c>, each part <c>[a-z0-9]+([._-][a-z0-9]+)*</c> (extensions/README.md).</summary>
    internal static bool IsExtensionPath(string path)
    {
        var parts = path.Split('/');
        return parts.Length == 3 && parts[0].StartsWith('_') && IsSegment(parts[0].AsSpan(1))
               && IsSegment(parts[1]) && IsSegment(parts[2]);
    }

    internal static bool IsSegment(ReadOnlySpan<char> s)
    {
        if (s.IsEmpty) return false;
        var previousSeparator = true;
        foreach (var c in s)
        {
            var separator = c is '.' or '_' or '-';
            if (!separator && !char.IsAsciiLetterLower(c) && !char.IsAsciiDigit(c)) return false;
            if (separator && previousSeparator) return false;
            previousSeparator = separator;
        }
        return !previousSeparator;
    }
}
