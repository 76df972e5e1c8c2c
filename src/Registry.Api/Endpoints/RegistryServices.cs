using Microsoft.Extensions.Options;
using Registry.Api.Configuration;
using Registry.Api.Manifests;
using Registry.Storage.Blobs;
using Registry.Storage.Gc;
using Registry.Storage.Metadata;

namespace Registry.Api.Endpoints;

/// <summary>
/// What every endpoint needs: the blob store, the metadata contracts the distribution API uses (links, manifests and
/// tags, upload sessions), the manifest cache, the blob pins, the options and the clock.
/// </summary>
internal sealed class RegistryServices(IBlobStore blobs, ILinkStore links, IManifestStore manifestStore,
    IUploadStore uploads, IOptions<RegistryOptions> options, TimeProvider time, ManifestCache manifests, IBlobPins pins)
{
    /// <summary>A push pins each digest it publishes or links until the link is committed (garbage collection waits).</summary>
    public IBlobPins Pins { get; } = pins;

    /// <summary>Manifest bytes by digest, in memory.</summary>
    public ManifestCache Manifests { get; } = manifests;

    public IBlobStore Blobs { get; } = blobs;
    public ILinkStore Links { get; } = links;

    /// <summary>Repositories, manifests, tags and referrers.</summary>
    public IManifestStore ManifestStore { get; } = manifestStore;

    public IUploadStore Uploads { get; } = uploads;
    public RegistryOptions Options { get; } = options.Value;
    public TimeProvider Time { get; } = time;
}
