using Registry.Api.Endpoints;
using Registry.Api.Http;
using Registry.Storage.Model;

namespace Registry.Api.Extensions.Framework;

public enum ExtensionScope
{
    /// <summary><c>/v2/_&lt;extension&gt;/&lt;component&gt;/&lt;module&gt;</c></summary>
    Registry,
    /// <summary><c>/v2/&lt;name&gt;/_&lt;extension&gt;/&lt;component&gt;/&lt;module&gt;</c></summary>
    Repository,
}

/// <summary>One request to an extension endpoint. <see cref="Repository"/> is set (and exists) for repository scope.</summary>
internal sealed record ExtensionRequest(HttpContext Http, RepositoryName? Repository, RegistryServices Services)
{
    public CancellationToken Aborted => Http.RequestAborted;
    public IServiceProvider RequestServices => Http.RequestServices;
}

internal delegate Task<IResult> ExtensionHandler(ExtensionRequest request);

/// <summary>
/// One endpoint: where it lives, which method, and the access it needs. <see cref="Method"/> GET also answers HEAD.
/// </summary>
internal sealed record ExtensionEndpoint(ExtensionScope Scope, string Component, string Module, string Method,
    RequiredAccess Access, ExtensionHandler Handler)
{
    /// <summary>As listed by discovery: relative to the scope's base (<c>/v2/</c> or <c>/v2/&lt;name&gt;/</c>).</summary>
    public string PathIn(ExtensionNamespace ns) => $"{ns.Name}/{Component}/{Module}";
}

/// <summary>An extension namespace as discovery lists it (spec: extensions/_oci.md).</summary>
internal sealed record ExtensionNamespace(string Name, string Description, string Document)
{
    public static readonly ExtensionNamespace Oci = new("_oci",
        "Discovery of the extensions this registry serves (OCI distribution-spec extensions/_oci.md)", "_oci.md");

    /// <summary>This registry's own extensions, all under one vendor prefix.</summary>
    public static readonly ExtensionNamespace Registry = new("_registry",
        "Search, tag details, change events, garbage collection and storage usage of this registry", "_registry.md");
}

/// <summary>
/// One self-contained extension: its options (section <c>Registry:Extensions:&lt;Key&gt;</c>, where <c>Enabled</c>
/// turns it on or off), its services and its endpoints. It is added with one line in <see cref="RegistryApp"/>; a
/// disabled extension registers nothing, so it has neither routes nor a discovery entry.
/// </summary>
internal abstract class RegistryExtension
{
    /// <summary>Configuration key, e.g. <c>Search</c>.</summary>
    public abstract string Key { get; }

    public abstract ExtensionNamespace Namespace { get; }

    /// <summary>Its own document under docs/extensions/, e.g. <c>_registry/search.md</c>.</summary>
    public abstract string Document { get; }

    public virtual bool EnabledByDefault => true;

    public virtual void ConfigureServices(IServiceCollection services, IConfigurationSection options) { }

    public abstract IEnumerable<ExtensionEndpoint> Endpoints { get; }
}
