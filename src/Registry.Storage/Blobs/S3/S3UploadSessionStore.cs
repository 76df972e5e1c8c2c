using System.Net;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using Amazon.S3;
using Registry.Storage.Model;

namespace Registry.Storage.Blobs.S3;

/// <summary>
/// Upload session state as one small object per session (<c>uploads/&lt;id&gt;/session</c>). A replace is a
/// conditional PUT (<c>If-Match</c> on the ETag read), so two replicas appending to one session at once cannot both
/// commit: the second gets 412 and its append is refused.
/// </summary>
public sealed class S3UploadSessionStore(S3Bucket bucket) : IUploadSessionStore
{
    private const int MaxStateSize = 4 << 20;

    public async ValueTask<bool> CreateAsync(UploadId id, UploadSessionState state, CancellationToken ct)
    {
        try
        {
            await bucket.PutAsync(bucket.SessionKey(id), state.Serialise(), ct, ifNoneMatch: "*");
            return true;
        }
        catch (AmazonS3Exception e) when (e.StatusCode == HttpStatusCode.PreconditionFailed)
        {
            return false;
        }
    }

    public async ValueTask<VersionedUploadSession?> GetAsync(UploadId id, CancellationToken ct)
    {
        try
        {
            return await bucket.RetryAsync(async t =>
            {
                using var response = await bucket.Client.GetObjectAsync(bucket.Name, bucket.SessionKey(id), t);
                if (response.ContentLength > MaxStateSize) throw new InvalidDataException($"upload session {id.Value}: state too large");
                using var memory = new MemoryStream((int)response.ContentLength);
                await response.ResponseStream.CopyToAsync(memory, t);
                return new VersionedUploadSession(UploadSessionState.Deserialise(memory.ToArray()), response.ETag,
                    response.LastModified is { } at ? new DateTimeOffset(at.ToUniversalTime(), TimeSpan.Zero) : DateTimeOffset.MinValue);
            }, ct);
        }
        catch (AmazonS3Exception e) when (e.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    public async ValueTask<bool> ReplaceAsync(UploadId id, UploadSessionState state, string expectedVersion, CancellationToken ct)
    {
        var bytes = state.Serialise();
        try
        {
            // Unquoted: Ceph RGW 16 compares If-Match with the bare ETag (a quoted one never matches); AWS takes both.
            await bucket.PutAsync(bucket.SessionKey(id), bytes, ct, ifMatch: expectedVersion.Trim('"'));
            return true;
        }
        catch (AmazonS3Exception e) when (e.StatusCode == HttpStatusCode.PreconditionFailed)
        {
            // A retried PUT whose first attempt landed (its answer was lost) also fails its precondition: the state
            // is then ours, recognised by its ETag (the MD5 of a single-request object).
            var current = await bucket.HeadAsync(bucket.SessionKey(id), ct);
            return current?.ETag?.Trim('"') == Convert.ToHexStringLower(MD5.HashData(bytes));
        }
        catch (AmazonS3Exception e) when (e.StatusCode == HttpStatusCode.NotFound)
        {
            // Cancelled or committed in between.
            return false;
        }
    }

    public ValueTask DeleteAsync(UploadId id, CancellationToken ct) => bucket.DeleteAsync(bucket.SessionKey(id), ct);

    public async IAsyncEnumerable<UploadId> ListWrittenBeforeAsync(DateTimeOffset before, [EnumeratorCancellation] CancellationToken ct)
    {
        await foreach (var item in bucket.ListAsync(bucket.UploadsPrefix, ct))
            if (item.Key.EndsWith("/session", StringComparison.Ordinal)
                && item.LastModified is { } at && new DateTimeOffset(at.ToUniversalTime(), TimeSpan.Zero) < before
                && bucket.UploadOf(item.Key) is { } id)
                yield return id;
    }
}
