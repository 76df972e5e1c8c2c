using System.Text.Json;
using Registry.Api.Extensions.Framework;
using Registry.Api.Http;

namespace Registry.Api.Extensions.Oci;

/// <summary>
/// <c>GET /v2/_oci/ext/discover</c> and <c>GET /v2/&lt;name&gt;/_oci/ext/discover</c> (spec: extensions/_oci.md): every
/// enabled extension namespace with the endpoints it serves at that scope, each as a path relative to the scope's
/// base (<c>/v2/</c> or <c>/v2/&lt;name&gt;/</c>), e.g. <c>_oci/ext/discover</c>.
/// </summary>
internal sealed class DiscoveryExtension : RegistryExtension
{
    public override string Key => "Discovery";
    public override ExtensionNamespace Namespace => ExtensionNamespace.Oci;
    public override string Document => "_oci.md";

    public override IEnumerable<ExtensionEndpoint> Endpoints =>
    [
        new(ExtensionScope.Registry, "ext", "discover", HttpMethods.Get, RequiredAccess.RegistryRead,
            request => Discover(request, ExtensionScope.Registry)),
        new(ExtensionScope.Repository, "ext", "discover", HttpMethods.Get, RequiredAccess.Pull,
            request => Discover(request, ExtensionScope.Repository)),
    ];

    /// <summary>Only the endpoints the caller may use: each one's declared access is asked of the policy.</summary>
    private static async Task<IResult> Discover(ExtensionRequest request, ExtensionScope scope)
    {
        var router = request.RequestServices.GetRequiredService<ExtensionRouter>();
        var policy = request.RequestServices.GetRequiredService<IAccessPolicy>();
        var usable = new List<(ExtensionNamespace Namespace, string Path)>();
        foreach (var extension in router.Extensions)
        foreach (var endpoint in extension.Endpoints.Where(p => p.Scope == scope))
            if ((await policy.AuthorizeAsync(request.Http, new AccessRequest(request.Repository, endpoint.Access))).IsAllowed)
                usable.Add((extension.Namespace, endpoint.PathIn(extension.Namespace)));
        var namespaces = usable
            .GroupBy(x => x.Namespace)
            .OrderBy(g => g.Key.Name, StringComparer.Ordinal);
        return Responses.Json(writer =>
        {
            writer.WriteStartObject();
            writer.WriteStartArray("extensions");
            foreach (var group in namespaces)
            {
                writer.WriteStartObject();
                writer.WriteString("name", group.Key.Name);
                writer.WriteString("url", ExtensionRegistration.DocumentUrl(request.Http.Request, request.Services.Options.Http.PublicUrl, group.Key.Document));
                writer.WriteString("description", group.Key.Description);
                writer.WriteStartArray("endpoints");
                foreach (var path in group.Select(x => x.Path).Distinct().Order(StringComparer.Ordinal))
                    writer.WriteStringValue(path);
                writer.WriteEndArray();
                writer.WriteEndObject();
            }
            writer.WriteEndArray();
            writer.WriteEndObject();
        });
    }
}
