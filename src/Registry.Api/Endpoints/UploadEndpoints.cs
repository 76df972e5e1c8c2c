using System.Diagnostics.CodeAnalysis;
using Microsoft.AspNetCore.Http.Features;
using Registry.Api.Http;
using Registry.Storage.Blobs;
using Registry.Storage.Model;

namespace Registry.Api.Endpoints;

/// <summary>
/// Blob uploads (spec: spec.md#pushing-blobs). A session is a storage object: its bytes in the blob store, its owner
/// repository in the metadata store, so it survives a restart. A session id used under another repository is unknown.
/// </summary>
internal static class UploadEndpoints
{
    // spec: spec.md#pushing-blobs: POST starts a session, POST ?digest= is a single-request upload, and
    // POST ?mount=&from= mounts a blob from another repository (from omitted: any repository holding it).
    public static async Task<IResult> Start(HttpContext context, RepositoryName name, string argument,
        RegistryServices services)
    {
        var ct = context.RequestAborted;
        var query = context.Request.Query;
        if (query.ContainsKey("mount"))
        {
            var mountValue = query["mount"].ToString();
            if (!Digest.TryParse(mountValue, out var mount))
                return new RegistryError(ErrorCode.DigestInvalid, $"invalid digest '{mountValue}'");
            if (await TryMountAsync(context, name, mount, query["from"].FirstOrDefault(), services, ct) is { } mounted)
                return mounted;
        }

        if (query.ContainsKey("digest"))
        {
            var digestValue = query["digest"].ToString();
            if (!Digest.TryParse(digestValue, out var digest))
                return new RegistryError(ErrorCode.DigestInvalid, $"invalid digest '{digestValue}'");
            // A single request needs no session: the body goes straight to a temporary file and is published.
            if (!TryExpectedLength(context.Request, out var expected, out var invalid)) return invalid;
            await using var pin = await services.Pins.PinAsync(digest, ct);
            var stored = await services.Blobs.StoreAsync(digest, context.Request.BodyReader, expected, ct);
            return await CommittedAsync(name, digest, stored, services);
        }

        if (await HasNonEmptyBodyAsync(context))
            return new RegistryError(ErrorCode.BlobUploadInvalid,
                "a POST without ?digest= starts a session and takes no body; send the data with PATCH or PUT");
        var client = ClientKey(context);
        if (await services.Uploads.CountUploadsByClientAsync(client, ct) >= services.Options.Uploads.MaxSessionsPerClient)
            return new RegistryError(ErrorCode.TooManyRequests,
                "this client holds too many open upload sessions; finish or cancel some (they also expire)");
        if (await OpenSessionAsync(name, client, Owner(context), services, ct) is not { } session)
            return new RegistryError(ErrorCode.TooManyRequests, "too many open upload sessions");
        return Responses.Empty(StatusCodes.Status202Accepted, response => SessionHeaders(response, name, session, 0));
    }

    /// <summary>
    /// Mounts the blob when the caller may read it where it is linked: from <paramref name="from"/> with pull access
    /// there, or (no <c>from</c>) from any repository that links it and that the caller may pull. Null when it cannot
    /// be mounted, and then the caller gets a plain upload session that reveals nothing about the blob.
    /// </summary>
    private static async Task<IResult?> TryMountAsync(HttpContext context, RepositoryName name, Digest digest,
        string? from, RegistryServices services, CancellationToken ct)
    {
        var policy = context.RequestServices.GetRequiredService<IAccessPolicy>();
        // Pinned: a blob being swept is not there (its row is gone once the sweep ends), so the mount becomes a session.
        await using var pin = await services.Pins.PinAsync(digest, ct);
        long? size;
        if (from is null)
        {
            var pullable = await policy.PullableAsync(context) ?? (_ => true);
            size = await services.Links.FindLinkedBlobSizeAsync(digest, pullable, ct);
        }
        else
        {
            if (!RepositoryName.TryParse(from, out var source))
                return new RegistryError(ErrorCode.NameInvalid, $"invalid repository name '{from}'");
            if (!(await policy.AuthorizeAsync(context, new AccessRequest(source, RequiredAccess.Pull))).IsAllowed)
                return null;
            size = await services.Links.GetLinkedBlobSizeAsync(source, digest, ct);
        }
        if (size is null || !await services.Blobs.ExistsAsync(digest, ct)) return null;
        await services.Links.LinkBlobAsync(name, digest, size.Value, services.Time.GetUtcNow(), ct);
        return Created(name, digest);
    }

    private static IResult Created(RepositoryName name, Digest digest) =>
        Responses.Empty(StatusCodes.Status201Created, response =>
        {
            response.Headers.Location = $"/v2/{name}/blobs/{digest}";
            response.Headers[Responses.DigestHeader] = digest.ToString();
        });

    private static void SessionHeaders(HttpResponse response, RepositoryName name, UploadId id, long size)
    {
        response.Headers.Location = $"/v2/{name}/blobs/uploads/{id}";
        response.Headers[Responses.UploadUuidHeader] = id.Value;
        // spec: Range is 0-<offset of last byte received>; an empty session reports 0-0 as distribution does.
        response.Headers.Range = $"0-{Math.Max(0, size - 1)}";
    }

    /// <summary>
    /// Who a session counts against for the per-client cap: the authenticated identity, else the client's address
    /// (so one anonymous client cannot hold every slot).
    /// </summary>
    internal static string ClientKey(HttpContext context) =>
        Owner(context) is { } identity ? $"user:{identity}" : $"address:{context.Connection.RemoteIpAddress}";

    /// <summary>Who a session belongs to: the authenticated caller, or null without authentication.</summary>
    private static string? Owner(HttpContext context) =>
        context.User.Identity is { IsAuthenticated: true, Name: { Length: > 0 } user } ? user : null;

    private static async Task<UploadId?> OpenSessionAsync(RepositoryName name, string client, string? owner,
        RegistryServices services,
        CancellationToken ct)
    {
        if (await services.Uploads.CountUploadsAsync(ct) >= services.Options.Uploads.MaxSessions) return null;
        var id = UploadId.New();
        await services.Blobs.CreateUploadAsync(id, ct);
        try
        {
            await services.Uploads.CreateUploadAsync(new UploadSession(id, name, services.Time.GetUtcNow(), client, owner), ct);
        }
        catch
        {
            // No session without its row: the file would only be found at the next start-up.
            await services.Blobs.CancelUploadAsync(id, CancellationToken.None);
            throw;
        }
        return id;
    }

    /// <summary>
    /// The session if <paramref name="argument"/> names one that belongs to <paramref name="name"/> and to the caller
    /// who opened it; anyone else's session is unknown.
    /// </summary>
    private static async Task<UploadId?> FindSessionAsync(HttpContext context, RepositoryName name, string argument,
        RegistryServices services, CancellationToken ct)
    {
        if (!UploadId.TryParse(argument, out var id)) return null;
        var session = await services.Uploads.GetUploadAsync(id, ct);
        return session is not null && session.Repository == name && session.Owner == Owner(context) ? id : null;
    }

    private static RegistryError UnknownSession(string argument) => new(ErrorCode.BlobUploadUnknown, argument);

    // spec: spec.md#pushing-a-blob-in-chunks (upload progress)
    public static async Task<IResult> Status(HttpContext context, RepositoryName name, string argument,
        RegistryServices services)
    {
        var ct = context.RequestAborted;
        if (await FindSessionAsync(context, name, argument, services, ct) is not { } id
            || await services.Blobs.GetUploadSizeAsync(id, ct) is not { } size)
            return UnknownSession(argument);
        return Responses.Empty(StatusCodes.Status204NoContent, response => SessionHeaders(response, name, id, size));
    }

    // spec: spec.md#pushing-a-blob-in-chunks. With Content-Range the chunk must start where the session ends (else
    // 416); without it the body is streamed onto the end (what buildah and docker send, chunked encoding included).
    public static async Task<IResult> Patch(HttpContext context, RepositoryName name, string argument,
        RegistryServices services)
    {
        var ct = context.RequestAborted;
        if (await FindSessionAsync(context, name, argument, services, ct) is not { } id) return UnknownSession(argument);
        long? offset = null;
        var header = context.Request.Headers.ContentRange.ToString();
        if (header.Length > 0)
        {
            if (!ContentRange.TryParse(header, out var range))
                return new RegistryError(ErrorCode.RangeInvalid, $"invalid Content-Range '{header}'");
            offset = range.Start;
        }
        if (await AppendAsync(context, name, id, offset, services) is { } failed) return failed;
        var size = await services.Blobs.GetUploadSizeAsync(id, ct) ?? 0;
        return Responses.Empty(StatusCodes.Status202Accepted, response => SessionHeaders(response, name, id, size));
    }

    /// <summary>How many bytes the body must have (null: until it ends), from Content-Length and Content-Range.</summary>
    private static bool TryExpectedLength(HttpRequest request, out long? expected, [NotNullWhen(false)] out IResult? error)
    {
        expected = request.ContentLength;
        error = null;
        var header = request.Headers.ContentRange.ToString();
        if (header.Length > 0 && ContentRange.TryParse(header, out var range))
        {
            if (expected is { } length && length != range.Length)
            {
                error = new RegistryError(ErrorCode.RangeInvalid,
                    $"Content-Range covers {range.Length} bytes but Content-Length is {length}");
                return false;
            }
            expected = range.Length;
        }
        return true;
    }

    /// <summary>Appends the request body; null on success, else the error to answer.</summary>
    private static async Task<IResult?> AppendAsync(HttpContext context, RepositoryName name, UploadId id, long? offset,
        RegistryServices services)
    {
        var request = context.Request;
        if (!TryExpectedLength(request, out var expected, out var invalid)) return invalid;
        var result = await services.Blobs.AppendAsync(id, offset, request.BodyReader, expected, context.RequestAborted);
        return result.Status switch
        {
            AppendStatus.Appended => null,
            AppendStatus.OutOfOrder => new RegistryError(ErrorCode.RangeInvalid,
                $"chunk must start at offset {result.Size}", response => SessionHeaders(response, name, id, result.Size)),
            AppendStatus.Incomplete => new RegistryError(ErrorCode.SizeInvalid,
                "the body did not have the length its headers declared; nothing of it was kept"),
            AppendStatus.StorageFull => new RegistryError(ErrorCode.StorageFull, "nothing of this chunk was kept"),
            _ => UnknownSession(id.Value),
        };
    }

    // spec: spec.md#pushing-a-blob-in-chunks (closing the upload), with or without a last chunk in the body.
    public static async Task<IResult> Finish(HttpContext context, RepositoryName name, string argument,
        RegistryServices services)
    {
        var ct = context.RequestAborted;
        if (await FindSessionAsync(context, name, argument, services, ct) is not { } id) return UnknownSession(argument);
        var digestValue = context.Request.Query["digest"].FirstOrDefault();
        if (!Digest.TryParse(digestValue, out var digest))
            return new RegistryError(ErrorCode.DigestInvalid, $"missing or invalid digest '{digestValue}'");

        if (HasBody(context))
        {
            long? offset = null;
            if (ContentRange.TryParse(context.Request.Headers.ContentRange.ToString(), out var range)) offset = range.Start;
            if (await AppendAsync(context, name, id, offset, services) is { } failed) return failed;
        }
        return await CommitAsync(name, id, digest, services, ct);
    }

    /// <summary>True when the request carries at least one byte (a chunked body is peeked at, not consumed).</summary>
    private static async Task<bool> HasNonEmptyBodyAsync(HttpContext context)
    {
        if (context.Request.ContentLength is { } length) return length > 0;
        if (!HasBody(context)) return false;
        var result = await context.Request.BodyReader.ReadAsync(context.RequestAborted);
        context.Request.BodyReader.AdvanceTo(result.Buffer.Start);
        return !result.Buffer.IsEmpty;
    }

    private static bool HasBody(HttpContext context) =>
        context.Request.ContentLength > 0
        || (context.Request.ContentLength is null
            && context.Features.Get<IHttpRequestBodyDetectionFeature>()?.CanHaveBody == true);

    private static async Task<IResult> CommitAsync(RepositoryName name, UploadId id, Digest digest,
        RegistryServices services, CancellationToken ct)
    {
        await using var pin = await services.Pins.PinAsync(digest, ct);
        var result = await services.Blobs.CommitAsync(id, digest, expectedSize: null, ct);
        if (result.Status == CommitStatus.UnknownSession) return UnknownSession(id.Value);
        await services.Uploads.DeleteUploadAsync(id, CancellationToken.None);
        return await CommittedAsync(name, digest, result, services);
    }

    /// <summary>The answer to a finished upload: linked and 201 if the blob was published, else why not.</summary>
    private static async Task<IResult> CommittedAsync(RepositoryName name, Digest digest, CommitResult result,
        RegistryServices services) => result.Status switch
    {
        CommitStatus.Committed => await LinkAsync(name, digest, result.Size, services),
        CommitStatus.DigestMismatch => new RegistryError(ErrorCode.DigestInvalid,
            $"uploaded content does not match {digest}; the upload was discarded"),
        CommitStatus.SizeMismatch => new RegistryError(ErrorCode.SizeInvalid),
        CommitStatus.Incomplete => new RegistryError(ErrorCode.SizeInvalid,
            "the body did not have the length its headers declared; nothing of it was kept"),
        _ => new RegistryError(ErrorCode.StorageFull, "the upload was discarded"),
    };

    private static async Task<IResult> LinkAsync(RepositoryName name, Digest digest, long size, RegistryServices services)
    {
        // The blob is published: record it even if the client has gone, so it is never orphaned.
        await services.Links.LinkBlobAsync(name, digest, size, services.Time.GetUtcNow(), CancellationToken.None);
        return Created(name, digest);
    }

    private static async Task DiscardAsync(UploadId id, RegistryServices services)
    {
        await services.Blobs.CancelUploadAsync(id, CancellationToken.None);
        await services.Uploads.DeleteUploadAsync(id, CancellationToken.None);
    }

    // spec: spec.md#canceling-an-upload
    public static async Task<IResult> Cancel(HttpContext context, RepositoryName name, string argument,
        RegistryServices services)
    {
        if (await FindSessionAsync(context, name, argument, services, context.RequestAborted) is not { } id)
            return UnknownSession(argument);
        await DiscardAsync(id, services);
        return Responses.Empty(StatusCodes.Status204NoContent, _ => { });
    }
}
