namespace Registry.Api.Manifests;

internal static class MediaTypes
{
    public const string OciManifest = "application/vnd.oci.image.manifest.v1+json";
    public const string OciIndex = "application/vnd.oci.image.index.v1+json";
    public const string DockerManifest = "application/vnd.docker.distribution.manifest.v2+json";
    public const string DockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json";
    public const string OciEmpty = "application/vnd.oci.empty.v1+json";

    /// <summary>The empty JSON object <c>{}</c> that artifacts use as config (image-spec manifest.md#guidance-for-an-empty-descriptor).</summary>
    public static readonly Registry.Storage.Model.Digest EmptyJsonDigest =
        Registry.Storage.Model.Digest.Parse("sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");

    public static readonly byte[] EmptyJson = "{}"u8.ToArray();

    /// <summary>Layers that a registry is not expected to hold (image-spec: non-distributable / foreign layers).</summary>
    public static bool IsForeignLayer(string mediaType) =>
        mediaType.Contains(".foreign.", StringComparison.Ordinal) || mediaType.Contains("nondistributable", StringComparison.Ordinal);

    public static bool IsIndex(string mediaType) => mediaType is OciIndex or DockerManifestList;

    public static bool IsImageManifest(string mediaType) => mediaType is OciManifest or DockerManifest;

    /// <summary>The media type of a Content-Type header value, without parameters.</summary>
    public static string? Essence(string? contentType)
    {
        if (string.IsNullOrWhiteSpace(contentType)) return null;
        var semicolon = contentType.IndexOf(';');
        return (semicolon < 0 ? contentType : contentType[..semicolon]).Trim().ToLowerInvariant();
    }
}
