using System.Text.Json;
using Registry.Storage.Model;

namespace Registry.Api.Manifests;

/// <summary>What the registry needs to know of a manifest to store it, check it and list it as a referrer.</summary>
internal sealed record ParsedManifest(
    string MediaType,
    string? ArtifactType,
    Digest? Subject,
    string? AnnotationsJson,
    IReadOnlyList<ManifestReference> References);

/// <summary>
/// Validates a manifest body (image-spec manifest.md and image-index.md; Docker schema 2) and extracts its
/// references. Failures are explained in <c>Error</c> and become MANIFEST_INVALID.
/// </summary>
internal static class ManifestParser
{
    private static readonly JsonDocumentOptions Options = new() { MaxDepth = 64 };

    public static ParsedManifest? Parse(ReadOnlyMemory<byte> body, string? contentType, out string? error)
    {
        try
        {
            using var document = JsonDocument.Parse(body, Options);
            return Parse(document.RootElement, MediaTypes.Essence(contentType), out error);
        }
        catch (JsonException e)
        {
            error = $"manifest is not valid JSON: {e.Message}";
            return null;
        }
        catch (InvalidOperationException e)
        {
            // A string that is not valid UTF-8 surfaces only when it is read.
            error = $"manifest is not valid UTF-8 JSON: {e.Message}";
            return null;
        }
    }

    /// <summary>
    /// A manifest stored by another registry, which kept no media type beside the bytes: the declared
    /// <c>mediaType</c>, else what the shape says (an OCI index has <c>manifests</c>, an OCI image <c>config</c>), as
    /// distribution serves it.
    /// </summary>
    public static ParsedManifest? ParseStored(ReadOnlyMemory<byte> body, out string? error)
    {
        try
        {
            using var document = JsonDocument.Parse(body, Options);
            var root = document.RootElement;
            string? guessed = null;
            if (root.ValueKind == JsonValueKind.Object && !root.TryGetProperty("mediaType", out _))
                guessed = root.TryGetProperty("manifests", out _) ? MediaTypes.OciIndex
                    : root.TryGetProperty("config", out _) ? MediaTypes.OciManifest : null;
            return Parse(root, guessed, out error);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            error = $"manifest is not valid JSON: {e.Message}";
            return null;
        }
    }

    private static ParsedManifest? Parse(JsonElement root, string? contentType, out string? error)
    {
        error = null;
        if (root.ValueKind != JsonValueKind.Object) return Fail("manifest is not a JSON object", out error);

        string? declared = null;
        if (root.TryGetProperty("mediaType", out var mediaTypeElement))
        {
            if (mediaTypeElement.ValueKind != JsonValueKind.String) return Fail("mediaType is not a string", out error);
            declared = mediaTypeElement.GetString();
        }
        if (declared is not null && contentType is not null && declared != contentType)
            return Fail($"mediaType '{declared}' does not match Content-Type '{contentType}'", out error);
        var mediaType = declared ?? contentType;
        if (mediaType is null) return Fail("manifest has no mediaType and the request no Content-Type", out error);
        if (!MediaTypes.IsImageManifest(mediaType) && !MediaTypes.IsIndex(mediaType))
            return Fail($"unsupported manifest media type '{mediaType}'", out error);

        if (!root.TryGetProperty("schemaVersion", out var version) || version.ValueKind != JsonValueKind.Number
            || !version.TryGetInt32(out var schemaVersion) || schemaVersion != 2)
            return Fail("schemaVersion must be 2", out error);

        var references = new List<ManifestReference>();
        string? artifactType = null;
        if (root.TryGetProperty("artifactType", out var artifactTypeElement))
        {
            if (artifactTypeElement.ValueKind != JsonValueKind.String) return Fail("artifactType is not a string", out error);
            artifactType = artifactTypeElement.GetString();
        }

        if (MediaTypes.IsImageManifest(mediaType))
        {
            if (!root.TryGetProperty("config", out var config))
                return Fail("image manifest has no config", out error);
            if (ReadDescriptor(config, "config", out error) is not { } configDescriptor) return null;
            references.Add(new ManifestReference(configDescriptor.Digest, ReferenceKind.Blob));
            // spec: referrers; an image manifest without artifactType is listed with its config's media type.
            artifactType ??= configDescriptor.MediaType;

            if (!root.TryGetProperty("layers", out var layers) || layers.ValueKind != JsonValueKind.Array)
                return Fail("image manifest has no layers array", out error);
            var index = 0;
            foreach (var layer in layers.EnumerateArray())
            {
                if (ReadDescriptor(layer, $"layers[{index++}]", out error) is not { } descriptor) return null;
                if (!(MediaTypes.IsForeignLayer(descriptor.MediaType) && layer.TryGetProperty("urls", out _)))
                    references.Add(new ManifestReference(descriptor.Digest, ReferenceKind.Blob));
            }
        }
        else
        {
            if (!root.TryGetProperty("manifests", out var manifests) || manifests.ValueKind != JsonValueKind.Array)
                return Fail("index has no manifests array", out error);
            var index = 0;
            foreach (var manifest in manifests.EnumerateArray())
            {
                if (ReadDescriptor(manifest, $"manifests[{index++}]", out error) is not { } descriptor) return null;
                references.Add(new ManifestReference(descriptor.Digest, ReferenceKind.Manifest));
            }
        }

        Digest? subject = null;
        if (root.TryGetProperty("subject", out var subjectElement))
        {
            if (ReadDescriptor(subjectElement, "subject", out error) is not { } descriptor) return null;
            subject = descriptor.Digest;
        }

        string? annotations = null;
        if (root.TryGetProperty("annotations", out var annotationsElement))
        {
            if (annotationsElement.ValueKind != JsonValueKind.Object) return Fail("annotations is not an object", out error);
            annotations = annotationsElement.GetRawText();
        }

        return new ParsedManifest(mediaType, artifactType, subject, annotations, Distinct(references));
    }

    private static List<ManifestReference> Distinct(List<ManifestReference> references)
    {
        var seen = new HashSet<Digest>();
        return references.Where(r => seen.Add(r.Target)).ToList();
    }

    private readonly record struct Descriptor(string MediaType, Digest Digest, long Size);

    private static Descriptor? ReadDescriptor(JsonElement element, string where, out string? error)
    {
        error = null;
        if (element.ValueKind != JsonValueKind.Object) return BadDescriptor($"{where} is not a descriptor object", out error);
        if (!element.TryGetProperty("mediaType", out var mediaType) || mediaType.ValueKind != JsonValueKind.String)
            return BadDescriptor($"{where}.mediaType is missing", out error);
        if (!element.TryGetProperty("digest", out var digestElement) || digestElement.ValueKind != JsonValueKind.String
            || !Digest.TryParse(digestElement.GetString(), out var digest))
            return BadDescriptor($"{where}.digest is missing or not a supported digest", out error);
        if (!element.TryGetProperty("size", out var sizeElement) || sizeElement.ValueKind != JsonValueKind.Number
            || !sizeElement.TryGetInt64(out var size) || size < 0)
            return BadDescriptor($"{where}.size is missing or invalid", out error);
        return new Descriptor(mediaType.GetString()!, digest, size);
    }

    private static ParsedManifest? Fail(string message, out string? error)
    {
        error = message;
        return null;
    }

    private static Descriptor? BadDescriptor(string message, out string? error)
    {
        error = message;
        return null;
    }
}
