using System.Reflection;
using Registry.Api.Http;

namespace Registry.Api.Extensions.Framework;

internal static class ExtensionRegistration
{
    /// <summary>Adds the extension unless <c>Registry:Extensions:&lt;Key&gt;:Enabled</c> is false.</summary>
    public static WebApplicationBuilder AddExtension<T>(this WebApplicationBuilder builder) where T : RegistryExtension, new()
    {
        var extension = new T();
        var section = builder.Configuration.GetSection($"Registry:Extensions:{extension.Key}");
        var enabled = bool.TryParse(section["Enabled"], out var value) ? value : extension.EnabledByDefault;
        if (!enabled) return builder;
        extension.ConfigureServices(builder.Services, section);
        builder.Services.AddSingleton<RegistryExtension>(extension);
        return builder;
    }

    /// <summary>
    /// Serves docs/extensions/ (embedded at build time) at <c>/docs/extensions/…</c>, so the <c>url</c> of every
    /// discovery entry resolves on this very registry.
    /// </summary>
    public static IEndpointRouteBuilder MapExtensionDocs(this IEndpointRouteBuilder routes)
    {
        // Every method maps here so that another method gets the registry's JSON 405, not routing's empty one.
        routes.Map("/docs/extensions/{**path}", (HttpContext context, string? path) =>
        {
            if (!HttpMethods.IsGet(context.Request.Method) && !HttpMethods.IsHead(context.Request.Method))
                return new RegistryError(ErrorCode.Unsupported);
            var stream = path is null ? null : Assembly.GetExecutingAssembly().GetManifestResourceStream($"docs/extensions/{path}");
            return stream is null
                ? (IResult)new RegistryError(ErrorCode.ExtensionUnknown, "no such extension document")
                : TypedResults.Stream(stream, "text/markdown; charset=utf-8");
        }).WithMetadata(new OperationMetadata(RequestOperations.Docs));
        return routes;
    }

    /// <summary>
    /// The absolute URL of a document: under <c>Registry:Http:PublicUrl</c> when it is set (behind a proxy the Host
    /// header names the proxy's upstream, not what clients reach), else from the request.
    /// </summary>
    public static string DocumentUrl(HttpRequest request, string? publicUrl, string document) =>
        publicUrl is { Length: > 0 }
            ? $"{publicUrl.TrimEnd('/')}/docs/extensions/{document}"
            : $"{request.Scheme}://{request.Host}/docs/extensions/{document}";
}
