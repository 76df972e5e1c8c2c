using System.Net;
using System.Net.Sockets;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;
using Polly;
using Polly.Retry;
using Registry.Storage.Model;

namespace Registry.Storage.Blobs.S3;

/// <summary>
/// The bucket, its key layout, and the one retry policy. Every key is built here from parsed value types:
/// <code>
/// &lt;Prefix&gt;blobs/sha256/&lt;64 hex&gt;        published content, named by digest (sha512: 128 hex)
/// &lt;Prefix&gt;uploads/&lt;upload id&gt;/session   the session's state (UploadSessionState)
/// &lt;Prefix&gt;uploads/&lt;upload id&gt;/data      multipart upload of the session's parts, completed at commit
/// &lt;Prefix&gt;uploads/&lt;upload id&gt;/tail/&lt;n&gt;  pending tail (fewer bytes than the smallest part), one object per append
/// &lt;Prefix&gt;tmp/&lt;guid&gt;                     earlier versions' single-request uploads (only purged now: a
///                                          single-request upload is a multipart upload of its blobs/ key,
///                                          completed once verified)
/// </code>
/// The SDK's own retries are off: <see cref="RetryAsync{T}"/> retries transient failures (5xx, throttling, timeouts,
/// connection resets) with jittered exponential backoff, and only callers whose request is idempotent use it.
/// </summary>
public sealed class S3Bucket : IDisposable
{
    private readonly ResiliencePipeline _retry;

    public S3Bucket(S3Settings settings, int maxRetryAttempts = 5)
    {
        var config = new AmazonS3Config
        {
            ServiceURL = settings.ServiceUrl,
            AuthenticationRegion = settings.Region,
            ForcePathStyle = true,
            // Ceph RGW 16 refuses the aws-chunked trailing checksums the SDK sends by default.
            RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
            ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED,
            MaxErrorRetry = 0,
        };
        Client = new AmazonS3Client(new BasicAWSCredentials(settings.ResolvedAccessKey, settings.ResolvedSecretKey), config);
        Name = settings.Bucket!;
        Prefix = settings.NormalisedPrefix;
        _retry = new ResiliencePipelineBuilder().AddRetry(new RetryStrategyOptions
        {
            MaxRetryAttempts = maxRetryAttempts,
            BackoffType = DelayBackoffType.Exponential,
            UseJitter = true,
            Delay = TimeSpan.FromMilliseconds(100),
            MaxDelay = TimeSpan.FromSeconds(5),
            ShouldHandle = args => ValueTask.FromResult(
                args.Outcome.Exception is { } e && IsTransient(e, args.Context.CancellationToken)),
        }).Build();
    }

    public IAmazonS3 Client { get; }

    public string Name { get; }

    public string Prefix { get; }

    public string BlobsPrefix => Prefix + "blobs/";

    public string UploadsPrefix => Prefix + "uploads/";

    public string TempPrefix => Prefix + "tmp/";

    public string BlobKey(Digest digest) => $"{BlobsPrefix}{digest.AlgorithmName}/{digest.Hex}";

    public string SessionKey(UploadId id) => $"{UploadsPrefix}{id.Value}/session";

    public string DataKey(UploadId id) => $"{UploadsPrefix}{id.Value}/data";

    public string NewTailKey(UploadId id) => $"{UploadsPrefix}{id.Value}/tail/{Guid.CreateVersion7():N}";

    public string NewTempKey() => $"{TempPrefix}{Guid.CreateVersion7():N}";

    /// <summary>The digest a key under <see cref="BlobsPrefix"/> names, or null.</summary>
    public Digest? DigestOf(string key) =>
        key.StartsWith(BlobsPrefix, StringComparison.Ordinal)
        && key[BlobsPrefix.Length..].Split('/') is [var algorithm, var hex]
        && Digest.TryParse($"{algorithm}:{hex}", out var digest)
            ? digest
            : null;

    /// <summary>The upload id of a key under <see cref="UploadsPrefix"/>, or null.</summary>
    public UploadId? UploadOf(string key) =>
        key.StartsWith(UploadsPrefix, StringComparison.Ordinal)
        && key[UploadsPrefix.Length..].Split('/') is [var id, ..]
        && UploadId.TryParse(id, out var upload)
            ? upload
            : null;

    /// <summary>Runs an idempotent call, retrying transient failures.</summary>
    public ValueTask<T> RetryAsync<T>(Func<CancellationToken, Task<T>> call, CancellationToken ct) =>
        _retry.ExecuteAsync(static async (call, token) => await call(token), call, ct);

    /// <summary>The object's metadata, or null if there is no such key (retried).</summary>
    public async ValueTask<GetObjectMetadataResponse?> HeadAsync(string key, CancellationToken ct)
    {
        try
        {
            return await RetryAsync(t => Client.GetObjectMetadataAsync(new GetObjectMetadataRequest { BucketName = Name, Key = key }, t), ct);
        }
        catch (AmazonS3Exception e) when (e.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    /// <summary>Reads a whole (small) object into <paramref name="buffer"/>; returns its length, or null if there is no such key.</summary>
    public async ValueTask<int?> ReadAllAsync(string key, Memory<byte> buffer, CancellationToken ct)
    {
        try
        {
            return await RetryAsync(async t =>
            {
                using var response = await Client.GetObjectAsync(new GetObjectRequest { BucketName = Name, Key = key }, t);
                if (response.ContentLength > buffer.Length) throw new InvalidOperationException($"{key} is larger than expected");
                var read = 0;
                int n;
                while ((n = await response.ResponseStream.ReadAsync(buffer[read..], t)) > 0) read += n;
                if (read != response.ContentLength) throw new IOException($"{key}: {read} of {response.ContentLength} bytes");
                return read;
            }, ct);
        }
        catch (AmazonS3Exception e) when (e.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    /// <summary>Writes a whole object from memory (idempotent, so retried).</summary>
    public ValueTask<PutObjectResponse> PutAsync(string key, ReadOnlyMemory<byte> content, CancellationToken ct,
        string? ifMatch = null, string? ifNoneMatch = null) =>
        RetryAsync(t => Client.PutObjectAsync(new PutObjectRequest
        {
            BucketName = Name,
            Key = key,
            InputStream = new ReadOnlyMemoryStream(content),
            AutoCloseStream = true,
            UseChunkEncoding = false,
            ContentType = "application/octet-stream",
            IfMatch = ifMatch,
            IfNoneMatch = ifNoneMatch,
        }, t), ct);

    /// <summary>Deletes an object; a missing key is success (retried: DELETE is idempotent).</summary>
    public async ValueTask DeleteAsync(string key, CancellationToken ct) =>
        await RetryAsync(t => Client.DeleteObjectAsync(new DeleteObjectRequest { BucketName = Name, Key = key }, t), ct);

    /// <summary>Every object under <paramref name="prefix"/>, a page (ListObjectsV2, 1000 keys) at a time.</summary>
    public async IAsyncEnumerable<S3Object> ListAsync(string prefix,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct = default)
    {
        string? token = null;
        do
        {
            var page = await RetryAsync(t => Client.ListObjectsV2Async(new ListObjectsV2Request
            {
                BucketName = Name,
                Prefix = prefix,
                ContinuationToken = token,
            }, t), ct);
            foreach (var item in page.S3Objects ?? []) yield return item;
            token = page.IsTruncated == true ? page.NextContinuationToken : null;
        } while (token is not null);
    }

    /// <summary>Multipart uploads started under <paramref name="prefix"/> and not completed or aborted.</summary>
    public async IAsyncEnumerable<MultipartUpload> ListMultipartUploadsAsync(string prefix,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct = default)
    {
        string? keyMarker = null, idMarker = null;
        while (true)
        {
            var page = await RetryAsync(t => Client.ListMultipartUploadsAsync(new ListMultipartUploadsRequest
            {
                BucketName = Name,
                Prefix = prefix,
                KeyMarker = keyMarker,
                UploadIdMarker = idMarker,
            }, t), ct);
            foreach (var upload in page.MultipartUploads ?? []) yield return upload;
            if (page.IsTruncated != true) yield break;
            (keyMarker, idMarker) = (page.NextKeyMarker, page.NextUploadIdMarker);
        }
    }

    /// <summary>Aborts a multipart upload; one already gone is success.</summary>
    public async ValueTask AbortAsync(string key, string uploadId, CancellationToken ct)
    {
        try
        {
            await RetryAsync(t => Client.AbortMultipartUploadAsync(new AbortMultipartUploadRequest
            {
                BucketName = Name,
                Key = key,
                UploadId = uploadId,
            }, t), ct);
        }
        catch (AmazonS3Exception e) when (e.StatusCode == HttpStatusCode.NotFound)
        {
        }
    }

    /// <summary>
    /// Failures worth another attempt of an idempotent request: the server's 5xx and throttling, timeouts, and the
    /// connection dropping. Never the caller's own cancellation.
    /// </summary>
    public static bool IsTransient(Exception e, CancellationToken ct)
    {
        if (ct.IsCancellationRequested) return false;
        return e switch
        {
            AmazonServiceException s when (int)s.StatusCode >= 500 || s.StatusCode == HttpStatusCode.TooManyRequests
                                          || s.ErrorCode is "SlowDown" or "Throttling" or "ThrottlingException" or "RequestTimeout"
                                              or "InternalError" or "ServiceUnavailable" => true,
            AmazonServiceException => false,
            // HttpClient's own timeout surfaces as a cancellation the caller did not ask for.
            OperationCanceledException => true,
            HttpRequestException or IOException or SocketException => true,
            AmazonClientException { InnerException: { } inner } => IsTransient(inner, ct),
            _ => false,
        };
    }

    public void Dispose() => Client.Dispose();

    /// <summary>A seekable read-only stream over memory (the SDK rewinds it for a retry or for signing).</summary>
    private sealed class ReadOnlyMemoryStream(ReadOnlyMemory<byte> content) : Stream
    {
        private int _position;

        public override bool CanRead => true;
        public override bool CanSeek => true;
        public override bool CanWrite => false;
        public override long Length => content.Length;

        public override long Position
        {
            get => _position;
            set => _position = (int)Math.Clamp(value, 0, content.Length);
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var n = Math.Min(buffer.Length, content.Length - _position);
            content.Span.Slice(_position, n).CopyTo(buffer);
            _position += n;
            return n;
        }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default) =>
            ValueTask.FromResult(Read(buffer.Span));

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken ct) =>
            Task.FromResult(Read(buffer.AsSpan(offset, count)));

        public override long Seek(long offset, SeekOrigin origin)
        {
            Position = origin switch
            {
                SeekOrigin.Begin => offset,
                SeekOrigin.Current => _position + offset,
                _ => content.Length + offset,
            };
            return _position;
        }

        public override void Flush() { }
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
