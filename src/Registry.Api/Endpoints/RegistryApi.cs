using Registry.Api.Http;
using Registry.Storage.Model;

namespace Registry.Api.Endpoints;

/// <summary>
/// The <c>/v2</c> route group. Repository names contain slashes, so everything below <c>/v2/</c> except the fixed
/// routes goes through one catch-all that <see cref="RegistryPath"/> splits; the handler is then picked by kind and
/// method, and a known path with another method is 405 UNSUPPORTED.
/// </summary>
internal static class RegistryApi
{
    public static IEndpointRouteBuilder MapRegistryApi(this IEndpointRouteBuilder routes)
    {
        var v2 = routes.MapGroup("/v2");
        // spec: spec.md#determining-support
        v2.Map("/", Base);
        // spec: spec.md (listing repositories is not in the spec; this is distribution's /v2/_catalog)
        v2.Map("/_catalog", (HttpContext context, RegistryServices services) =>
            IsRead(context) ? CatalogEndpoints.List(context, services) : Task.FromResult(Unsupported()));
        v2.Map("/{**path}", (HttpContext context, string? path, RegistryServices services) =>
            Dispatch(context, path ?? "", services));
        return routes;
    }

    private static IResult Base(HttpContext context) =>
        IsRead(context)
            ? Responses.Json(writer => { writer.WriteStartObject(); writer.WriteEndObject(); })
            : Unsupported();

    private static bool IsRead(HttpContext context) =>
        HttpMethods.IsGet(context.Request.Method) || HttpMethods.IsHead(context.Request.Method);

    internal static IResult Unsupported() => new RegistryError(ErrorCode.Unsupported);

    private static Task<IResult> Dispatch(HttpContext context, string path, RegistryServices services)
    {
        if (RegistryPath.Parse(path) is not { } route)
            return Task.FromResult<IResult>(new RegistryError(ErrorCode.NotFound));
        if (route.Kind == RouteKind.Extension)
            return Task.FromResult<IResult>(new RegistryError(ErrorCode.ExtensionUnknown));
        if (!RepositoryName.TryParse(route.Name, out var name))
            return Task.FromResult<IResult>(new RegistryError(ErrorCode.NameInvalid, $"invalid repository name '{route.Name}'"));

        var method = context.Request.Method;
        var get = HttpMethods.IsGet(method);
        var head = HttpMethods.IsHead(method);
        return route.Kind switch
        {
            RouteKind.Manifest when get || head => ManifestEndpoints.Get(context, name, route.Argument, services),
            RouteKind.Manifest when HttpMethods.IsPut(method) => ManifestEndpoints.Put(context, name, route.Argument, services),
            RouteKind.Manifest when HttpMethods.IsDelete(method) => ManifestEndpoints.Delete(name, route.Argument, services, context.RequestAborted),
            RouteKind.Blob when get || head => BlobEndpoints.Get(context, name, route.Argument, services),
            RouteKind.Blob when HttpMethods.IsDelete(method) => BlobEndpoints.Delete(name, route.Argument, services, context.RequestAborted),
            RouteKind.UploadStart when HttpMethods.IsPost(method) => UploadEndpoints.Start(context, name, services),
            RouteKind.Upload when get => UploadEndpoints.Status(context, name, route.Argument, services),
            RouteKind.Upload when HttpMethods.IsPatch(method) => UploadEndpoints.Patch(context, name, route.Argument, services),
            RouteKind.Upload when HttpMethods.IsPut(method) => UploadEndpoints.Finish(context, name, route.Argument, services),
            RouteKind.Upload when HttpMethods.IsDelete(method) => UploadEndpoints.Cancel(context, name, route.Argument, services),
            RouteKind.Tags when get || head => TagEndpoints.List(context, name, services),
            RouteKind.Referrers when get || head => ReferrerEndpoints.List(context, name, route.Argument, services),
            _ => Task.FromResult(Unsupported()),
        };
    }
}
