using Registry.Api.Extensions.Framework;
using Registry.Api.Http;
using Registry.Api.Observability;
using Registry.Storage.Model;

namespace Registry.Api.Endpoints;

internal delegate Task<IResult> RepositoryHandler(HttpContext context, RepositoryName name, string argument,
    RegistryServices services);

/// <summary>
/// The <c>/v2</c> route group. Repository names contain slashes, so everything below <c>/v2/</c> except the fixed
/// routes goes through one catch-all that <see cref="RegistryPath"/> splits; the handler is then picked by kind and
/// method (a known path with another method is 405 UNSUPPORTED), its declared access is checked, and it runs.
/// </summary>
internal static class RegistryApi
{
    public static IEndpointRouteBuilder MapRegistryApi(this IEndpointRouteBuilder routes)
    {
        var v2 = routes.MapGroup("/v2");
        // spec: spec.md#determining-support
        v2.Map("/", async (HttpContext context, IAccessPolicy policy) =>
        {
            if (!IsRead(context)) return Unsupported();
            // spec: a 401 here is how clients learn the auth scheme (WWW-Authenticate).
            var decision = await policy.AuthorizeAsync(context, new AccessRequest(null, RequiredAccess.Authenticated));
            if (!decision.IsAllowed) return decision.ToResult();
            return Responses.Json(writer => { writer.WriteStartObject(); writer.WriteEndObject(); });
        }).WithMetadata(new OperationMetadata(RequestOperations.Base));
        // distribution's /v2/_catalog (reserved by the spec's extensions/README.md)
        v2.Map("/_catalog", async (HttpContext context, RegistryServices services, IAccessPolicy policy) =>
        {
            if (!IsRead(context)) return Unsupported();
            var decision = await policy.AuthorizeAsync(context, new AccessRequest(null, RequiredAccess.RegistryRead));
            if (!decision.IsAllowed) return decision.ToResult();
            return await CatalogEndpoints.List(context, services, await policy.PullableAsync(context));
        }).WithMetadata(new OperationMetadata(RequestOperations.Catalog));
        v2.Map("/{**path}", (HttpContext context, string? path, RegistryServices services, IAccessPolicy policy,
            ExtensionRouter extensions) => Dispatch(context, path ?? "", services, policy, extensions));
        return routes;
    }

    internal static bool IsRead(HttpContext context) =>
        HttpMethods.IsGet(context.Request.Method) || HttpMethods.IsHead(context.Request.Method);

    internal static IResult Unsupported() => new RegistryError(ErrorCode.Unsupported);

    private static async Task<IResult> Dispatch(HttpContext context, string path, RegistryServices services,
        IAccessPolicy policy, ExtensionRouter extensions)
    {
        if (RegistryPath.Parse(path) is not { } route)
            return new RegistryError(ErrorCode.NameUnknown, "no such endpoint: the path names no repository endpoint");
        var validName = RepositoryName.TryParse(route.Name, out var name);
        context.Describe(route.Operation(context.Request.Method), validName ? name : null);
        if (route.Kind == RouteKind.Extension) return await extensions.DispatchAsync(context, route, services, policy);
        if (!validName) return new RegistryError(ErrorCode.NameInvalid, $"invalid repository name '{route.Name}'");
        if (Select(route.Kind, context.Request.Method) is not var (handler, access)) return Unsupported();
        var decision = await policy.AuthorizeAsync(context, new AccessRequest(name, access));
        if (!decision.IsAllowed) return decision.ToResult();
        return await handler(context, name, route.Argument, services);
    }

    private static (RepositoryHandler, RequiredAccess)? Select(RouteKind kind, string method)
    {
        var read = HttpMethods.IsGet(method) || HttpMethods.IsHead(method);
        return kind switch
        {
            RouteKind.Manifest when read => (ManifestEndpoints.Get, RequiredAccess.Pull),
            RouteKind.Manifest when HttpMethods.IsPut(method) => (ManifestEndpoints.Put, RequiredAccess.Push),
            RouteKind.Manifest when HttpMethods.IsDelete(method) => (ManifestEndpoints.Delete, RequiredAccess.Delete),
            RouteKind.Blob when read => (BlobEndpoints.Get, RequiredAccess.Pull),
            RouteKind.Blob when HttpMethods.IsDelete(method) => (BlobEndpoints.Delete, RequiredAccess.Delete),
            RouteKind.UploadStart when HttpMethods.IsPost(method) => (UploadEndpoints.Start, RequiredAccess.Push),
            RouteKind.Upload when HttpMethods.IsGet(method) => (UploadEndpoints.Status, RequiredAccess.Push),
            RouteKind.Upload when HttpMethods.IsPatch(method) => (UploadEndpoints.Patch, RequiredAccess.Push),
            RouteKind.Upload when HttpMethods.IsPut(method) => (UploadEndpoints.Finish, RequiredAccess.Push),
            RouteKind.Upload when HttpMethods.IsDelete(method) => (UploadEndpoints.Cancel, RequiredAccess.Push),
            RouteKind.Tags when read => (TagEndpoints.List, RequiredAccess.Pull),
            RouteKind.Referrers when read => (ReferrerEndpoints.List, RequiredAccess.Pull),
            _ => null,
        };
    }
}
