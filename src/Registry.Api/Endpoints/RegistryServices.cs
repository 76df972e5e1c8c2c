using Microsoft.Extensions.Options;
using Registry.Api.Configuration;
using Registry.Api.Manifests;
using Registry.Storage.Blobs;
using Registry.Storage.Gc;
using Registry.Storage.Metadata;

namespace Registry.Api.Endpoints;

/// <summary>What every endpoint needs: the two stores, the manifest cache, the blob pins, the options and the clock.</summary>
internal sealed class RegistryServices(IBlobStore blobs, IMetadataStore metadata, IOptions<RegistryOptions> options,
    TimeProvider time, ManifestCache manifests, BlobPins pins)
{
    /// <summary>A push pins each digest it publishes or links until the link is committed (garbage collection waits).</summary>
    public BlobPins Pins { get; } = pins;

    /// <summary>Manifest bytes by digest, in memory.</summary>
    public ManifestCache Manifests { get; } = manifests;

    public IBlobStore Blobs { get; } = blobs;
    public IMetadataStore Metadata { get; } = metadata;
    public RegistryOptions Options { get; } = options.Value;
    public TimeProvider Time { get; } = time;
}
