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
        routes.MapGet("/docs/extensions/{**path}", (string? path) =>
        {
            var stream = path is null ? null : Assembly.GetExecutingAssembly().GetManifestResourceStream($"docs/extensions/{path}");
            return stream is null
                ? (IResult)new RegistryError(ErrorCode.NotFound)
                : TypedResults.Stream(stream, "text/markdown; charset=utf-8");
        }).WithMetadata(new OperationMetadata(RequestOperations.Docs));
        return routes;
    }

    public static string DocumentUrl(HttpRequest request, string document) =>
        $"{request.Scheme}://{request.Host}/docs/extensions/{document}";
}
