using System.Buffers;
using Microsoft.Net.Http.Headers;
using Registry.Api.Http;
using Registry.Api.Manifests;
using Registry.Storage.Model;

namespace Registry.Api.Endpoints;

internal static class ManifestEndpoints
{
    // spec: spec.md#pulling-manifests. The exact bytes pushed, with the media type they were pushed with.
    public static async Task<IResult> Get(HttpContext context, RepositoryName name, string argument,
        RegistryServices services)
    {
        var ct = context.RequestAborted;
        if (ParseReference(argument, out var reference) is { } invalid) return invalid;
        var manifest = await services.ManifestStore.GetManifestAsync(name, reference, ct);
        if (manifest is null) return await UnknownManifest(name, services, ct);

        var headers = context.Response.Headers;
        headers[Responses.DigestHeader] = manifest.Digest.ToString();
        headers.ETag = $"\"{manifest.Digest}\"";
        if (reference.IsDigest) headers.CacheControl = "max-age=31536000, immutable";
        if (HttpMethods.IsHead(context.Request.Method))
            return Responses.Empty(StatusCodes.Status200OK, response =>
            {
                response.ContentType = manifest.MediaType;
                response.ContentLength = manifest.Size;
            });
        if (context.Request.Headers.IfNoneMatch.ToString() == headers.ETag.ToString())
            return Responses.Empty(StatusCodes.Status304NotModified, _ => { });
        var bytes = await services.Manifests.GetAsync(manifest.Digest, ct);
        if (bytes is null) return await UnknownManifest(name, services, ct);
        return TypedResults.Bytes(bytes, manifest.MediaType);
    }

    private static async Task<IResult> UnknownManifest(RepositoryName name, RegistryServices services, CancellationToken ct) =>
        await services.ManifestStore.RepositoryExistsAsync(name, ct)
            ? new RegistryError(ErrorCode.ManifestUnknown)
            : new RegistryError(ErrorCode.NameUnknown, name.Value);

    /// <summary>
    /// An error for a reference that is neither a valid tag nor a supported digest, else null. An invalid tag can
    /// name no manifest: reading or deleting it is 404 (as the conformance suite expects), pushing it is 400.
    /// </summary>
    private static RegistryError? ParseReference(string argument, out Reference reference, bool push = false)
    {
        if (Reference.TryParse(argument, out reference)) return null;
        if (argument.Contains(':'))
            return new RegistryError(ErrorCode.DigestInvalid, $"invalid or unsupported digest '{argument}'");
        return push
            ? new RegistryError(ErrorCode.ManifestInvalid, $"invalid tag '{argument}'")
            : new RegistryError(ErrorCode.ManifestUnknown, $"invalid tag '{argument}'");
    }

    // spec: spec.md#pushing-manifests
    public static async Task<IResult> Put(HttpContext context, RepositoryName name, string argument,
        RegistryServices services)
    {
        var ct = context.RequestAborted;
        var request = context.Request;
        if (ParseReference(argument, out var reference, push: true) is { } invalid) return invalid;

        var tags = new List<Tag>();
        if (reference.Tag is { } pathTag) tags.Add(pathTag);
        foreach (var value in request.Query["tag"])
        {
            if (!Tag.TryParse(value, out var tag))
                return new RegistryError(ErrorCode.ManifestInvalid, $"invalid tag '{value}'");
            tags.Add(tag);
        }

        var maxSize = services.Options.Manifests.MaxSize;
        var body = request.ContentLength > maxSize ? null : await ReadBodyAsync(request, maxSize, ct);
        if (body is null)
            // Close the connection rather than let the server drain an arbitrarily large rest of the body.
            return new RegistryError(ErrorCode.ManifestTooLarge, $"manifests are limited to {maxSize} bytes",
                response => response.Headers.Connection = "close");

        var parsed = ManifestParser.Parse(body.Value, request.ContentType, out var error);
        if (parsed is null) return new RegistryError(ErrorCode.ManifestInvalid, error);

        var digest = Digest.Compute(reference.Digest?.Algorithm ?? DigestAlgorithm.Sha256, body.Value.Span);
        if (reference.Digest is { } expected && expected != digest)
            return new RegistryError(ErrorCode.DigestInvalid, $"manifest digest is {digest}, not {expected}");

        // Pinned from publishing the bytes to the committed row, so garbage collection cannot sweep them in between.
        await using var pin = await services.Pins.PinAsync(digest, ct);
        // Checked before anything is written: a refused manifest leaves no file, repository, row or event.
        var provided = ProvidedBlobs(parsed);
        await using Registry.Storage.Gc.BlobPin? configPin =
            provided.Count > 0 ? await services.Pins.PinAsync(MediaTypes.EmptyJsonDigest, ct) : null;
        var checkedReferences = provided.Count == 0
            ? parsed.References
            : parsed.References.Where(r => r.Kind != ReferenceKind.Blob || r.Target != MediaTypes.EmptyJsonDigest).ToList();
        if (await services.ManifestStore.FindMissingReferenceAsync(name, checkedReferences, ct) is { } missing)
            return new RegistryError(ErrorCode.ManifestBlobUnknown, missing.ToString());

        if (provided.Count > 0) await services.Blobs.PutAsync(MediaTypes.EmptyJsonDigest, MediaTypes.EmptyJson, ct);
        await services.Blobs.PutAsync(digest, body.Value, ct);
        var record = new ManifestRecord(digest, parsed.MediaType, body.Value.Length, parsed.ArtifactType, parsed.Subject,
            parsed.AnnotationsJson, services.Time.GetUtcNow());
        var result = await services.ManifestStore.PutManifestAsync(name, record, parsed.References, tags, ct, provided);
        if (result.Status == PutManifestStatus.MissingReference)
            return new RegistryError(ErrorCode.ManifestBlobUnknown, result.Missing.ToString());

        return Responses.Empty(StatusCodes.Status201Created, response =>
        {
            response.Headers.Location = $"/v2/{name}/manifests/{digest}";
            response.Headers[Responses.DigestHeader] = digest.ToString();
            if (parsed.Subject is { } subject) response.Headers["OCI-Subject"] = subject.ToString();
        });
    }

    /// <summary>
    /// The empty JSON blob <c>{}</c> is the config of every artifact; the registry supplies it (it is two bytes
    /// everyone knows), sparing clients a round trip and never rejecting an artifact for lacking it. It is linked in
    /// the manifest's own transaction, so a refused manifest links nothing.
    /// </summary>
    private static IReadOnlyList<ProvidedBlob> ProvidedBlobs(ParsedManifest manifest) =>
        manifest.References.Any(r => r.Kind == ReferenceKind.Blob && r.Target == MediaTypes.EmptyJsonDigest)
            ? [new ProvidedBlob(MediaTypes.EmptyJsonDigest, MediaTypes.EmptyJson.Length)]
            : [];

    /// <summary>The whole body, or null when it is longer than <paramref name="maxSize"/> (reading stops there).</summary>
    private static async Task<ReadOnlyMemory<byte>?> ReadBodyAsync(HttpRequest request, int maxSize, CancellationToken ct)
    {
        var reader = request.BodyReader;
        while (true)
        {
            var result = await reader.ReadAsync(ct);
            if (result.Buffer.Length > maxSize)
            {
                reader.AdvanceTo(result.Buffer.Start, result.Buffer.End);
                return null;
            }
            if (result.IsCompleted)
            {
                var bytes = result.Buffer.ToArray();
                reader.AdvanceTo(result.Buffer.End);
                return bytes;
            }
            reader.AdvanceTo(result.Buffer.Start, result.Buffer.End);
        }
    }

    // spec: spec.md#deleting-manifests. By digest: the manifest and all its tags. By tag: only the tag.
    public static async Task<IResult> Delete(HttpContext context, RepositoryName name, string argument,
        RegistryServices services)
    {
        var ct = context.RequestAborted;
        if (!services.Options.Deletion.Enabled) return RegistryApi.Unsupported();
        if (ParseReference(argument, out var reference) is { } invalid) return invalid;
        var deleted = reference.Digest is { } digest
            ? await services.ManifestStore.DeleteManifestAsync(name, digest, services.Time.GetUtcNow(), ct)
            : await services.ManifestStore.DeleteTagAsync(name, reference.Tag!.Value, services.Time.GetUtcNow(), ct);
        return deleted
            ? Responses.Empty(StatusCodes.Status202Accepted, _ => { })
            : await UnknownManifest(name, services, ct);
    }
}
