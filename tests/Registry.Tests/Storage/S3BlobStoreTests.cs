using System.IO.Pipelines;
using System.Net;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using Amazon.S3;
using Registry.Storage.Blobs;
using Registry.Storage.Blobs.S3;
using Registry.Storage.Model;
using Registry.Tests.Stack;

namespace Registry.Tests.Storage;

/// <summary>What only the S3 store has: sessions shared by replicas, multipart leftovers, large copies, retries.</summary>
[Collection(CephCollection.Name)]
public sealed class S3BlobStoreTests(CephStack ceph) : IDisposable
{
    private const int MiB = 1 << 20;

    private readonly S3Settings _settings = ceph.NewSettings();
    private readonly List<S3Bucket> _buckets = [];

    private (S3BlobStore Store, S3Bucket Bucket) NewStore(long maxSingleCopy = 5L << 30, Func<IUploadSessionStore, IUploadSessionStore>? wrap = null)
    {
        var bucket = new S3Bucket(_settings);
        _buckets.Add(bucket);
        IUploadSessionStore sessions = new S3UploadSessionStore(bucket);
        return (new S3BlobStore(bucket, wrap?.Invoke(sessions) ?? sessions, S3BlobStore.MinPartSize, maxSingleCopy), bucket);
    }

    public void Dispose()
    {
        foreach (var bucket in _buckets) bucket.Dispose();
    }

    private static PipeReader Body(byte[] bytes) => PipeReader.Create(new MemoryStream(bytes));

    private static Digest DigestOf(byte[] bytes) => Digest.Compute(DigestAlgorithm.Sha256, bytes);

    private async Task<List<string>> OpenMultipartUploadsAsync(S3Bucket bucket)
    {
        var keys = new List<string>();
        await foreach (var upload in bucket.ListMultipartUploadsAsync(bucket.Prefix)) keys.Add(upload.Key);
        return keys;
    }

    [Fact]
    public async Task Of_two_replicas_appending_to_one_session_at_once_only_one_append_happens()
    {
        var slow = new SignallingSessions();
        var (first, _) = NewStore(wrap: inner => slow.Wrap(inner));
        var (second, _) = NewStore();
        var id = UploadId.New();
        await first.CreateUploadAsync(id, default);
        var ours = RandomNumberGenerator.GetBytes(1000);
        var theirs = RandomNumberGenerator.GetBytes(2000);
        var pipe = new Pipe();

        // The first replica has read the session's state and waits for its body; the second appends meanwhile.
        var pending = first.AppendAsync(id, 0, pipe.Reader, ours.Length, default).AsTask();
        await slow.StateRead.Task;
        var other = await second.AppendAsync(id, 0, Body(theirs), theirs.Length, default);
        await pipe.Writer.WriteAsync(ours);
        await pipe.Writer.CompleteAsync();
        var late = await pending;

        other.Should().Be(new AppendResult(AppendStatus.Appended, 2000));
        late.Should().Be(new AppendResult(AppendStatus.OutOfOrder, 2000));
        (await first.CommitAsync(id, DigestOf(theirs), 2000, default)).Status.Should().Be(CommitStatus.Committed);
    }

    [Fact]
    public async Task A_replica_keeps_nothing_for_a_session_whose_last_request_another_replica_took()
    {
        // Round-robin: the first replica appends and answers a status, the second appends and commits.
        var (first, _) = NewStore();
        var (second, _) = NewStore();
        var id = UploadId.New();
        var data = RandomNumberGenerator.GetBytes(3000);
        await first.CreateUploadAsync(id, default);
        (await first.AppendAsync(id, 0, Body(data[..1000]), 1000, default)).Should().Be(new AppendResult(AppendStatus.Appended, 1000));
        (await first.GetUploadSizeAsync(id, default)).Should().Be(1000);
        (await second.AppendAsync(id, 1000, Body(data[1000..]), 2000, default)).Should().Be(new AppendResult(AppendStatus.Appended, 3000));

        (await second.CommitAsync(id, DigestOf(data), 3000, default)).Status.Should().Be(CommitStatus.Committed);

        first.SessionsInProgress.Should().Be(0, "a replica that never sees the commit must not keep the session's gate");
        second.SessionsInProgress.Should().Be(0);
    }

    [Fact]
    public async Task Purging_aborts_the_multipart_upload_of_a_cut_off_append_and_keeps_live_sessions()
    {
        var (store, bucket) = NewStore();
        var cutOff = UploadId.New();
        var live = UploadId.New();
        await store.CreateUploadAsync(cutOff, default);
        await store.CreateUploadAsync(live, default);
        (await store.AppendAsync(live, 0, Body(new byte[6 * MiB]), null, default)).Size.Should().Be(6 * MiB);
        // Its first part is uploaded (a multipart upload started), then the client goes away.
        var cut = PipeReader.Create(new Contracts.FailingStream(new byte[7 * MiB], 6 * MiB));
        (await store.AppendAsync(cutOff, 0, cut, 7 * MiB, default)).Status.Should().Be(AppendStatus.Incomplete);
        (await OpenMultipartUploadsAsync(bucket)).Should().BeEquivalentTo([bucket.DataKey(live), bucket.DataKey(cutOff)]);

        var (files, _) = await store.PurgeTempAsync(DateTimeOffset.UtcNow.AddMinutes(5), default);

        files.Should().BeGreaterThanOrEqualTo(1);
        (await OpenMultipartUploadsAsync(bucket)).Should().Equal(bucket.DataKey(live));
        (await store.AppendAsync(live, null, Body([7]), 1, default)).Size.Should().Be(6 * MiB + 1);
    }

    [Fact]
    public async Task Purging_deletes_stale_single_request_temporaries_and_nothing_newer()
    {
        var (store, bucket) = NewStore();
        var stale = bucket.NewTempKey();
        await bucket.PutAsync(stale, new byte[123], default);

        var before = await store.PurgeTempAsync(DateTimeOffset.UtcNow.AddMinutes(-5), default);
        var after = await store.PurgeTempAsync(DateTimeOffset.UtcNow.AddMinutes(5), default);

        before.Should().Be((0, 0L));
        after.Should().Be((1, 123L));
        (await bucket.HeadAsync(stale, default)).Should().BeNull();
    }

    [Fact]
    public async Task A_blob_beyond_the_single_copy_limit_is_published_by_a_multipart_copy()
    {
        var (store, bucket) = NewStore(maxSingleCopy: 6 * MiB);
        var data = RandomNumberGenerator.GetBytes(13 * MiB);
        var id = UploadId.New();
        await store.CreateUploadAsync(id, default);
        await store.AppendAsync(id, 0, Body(data), null, default);

        (await store.CommitAsync(id, DigestOf(data), data.Length, default)).Status.Should().Be(CommitStatus.Committed);

        (await bucket.HeadAsync(bucket.BlobKey(DigestOf(data)), default))!.ContentLength.Should().Be(data.Length);
        var content = await store.OpenAsync(DigestOf(data), default);
        await using var stream = content!.OpenStream();
        using var copy = new MemoryStream();
        await stream.CopyToAsync(copy);
        copy.ToArray().Should().Equal(data);
        (await OpenMultipartUploadsAsync(bucket)).Should().BeEmpty();
    }

    [Fact]
    public async Task A_committed_session_leaves_no_object_of_its_own()
    {
        var (store, bucket) = NewStore();
        var data = RandomNumberGenerator.GetBytes(7 * MiB + 9);
        var id = UploadId.New();
        await store.CreateUploadAsync(id, default);
        await store.AppendAsync(id, 0, Body(data[..(6 * MiB)]), null, default);
        await store.AppendAsync(id, 6 * MiB, Body(data[(6 * MiB)..]), null, default);

        await store.CommitAsync(id, DigestOf(data), null, default);

        var left = new List<string>();
        await foreach (var item in bucket.ListAsync(bucket.UploadsPrefix)) left.Add(item.Key);
        left.Should().BeEmpty();
    }

    [Theory]
    [InlineData(HttpStatusCode.InternalServerError, "InternalError", true)]
    [InlineData(HttpStatusCode.ServiceUnavailable, "SlowDown", true)]
    [InlineData(HttpStatusCode.TooManyRequests, "", true)]
    [InlineData(HttpStatusCode.BadRequest, "RequestTimeout", true)]
    [InlineData(HttpStatusCode.NotFound, "NoSuchKey", false)]
    [InlineData(HttpStatusCode.Forbidden, "AccessDenied", false)]
    [InlineData(HttpStatusCode.PreconditionFailed, "PreconditionFailed", false)]
    public void Server_errors_and_throttling_are_retried_and_client_errors_are_not(HttpStatusCode status, string code, bool transient)
    {
        var error = new AmazonS3Exception("test") { StatusCode = status, ErrorCode = code };

        S3Bucket.IsTransient(error, CancellationToken.None).Should().Be(transient);
    }

    [Fact]
    public void A_dropped_connection_is_retried_unless_the_caller_cancelled()
    {
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();

        S3Bucket.IsTransient(new IOException("connection reset by peer"), CancellationToken.None).Should().BeTrue();
        S3Bucket.IsTransient(new HttpRequestException("reset"), CancellationToken.None).Should().BeTrue();
        S3Bucket.IsTransient(new TaskCanceledException("timeout"), CancellationToken.None).Should().BeTrue();
        S3Bucket.IsTransient(new IOException("connection reset by peer"), cancelled.Token).Should().BeFalse();
    }

    [Fact]
    public async Task An_idempotent_call_that_fails_transiently_is_tried_again_until_it_succeeds()
    {
        var (_, bucket) = NewStore();
        var attempts = 0;

        var result = await bucket.RetryAsync(_ =>
        {
            if (++attempts < 3) throw new AmazonS3Exception("slow down") { StatusCode = HttpStatusCode.ServiceUnavailable, ErrorCode = "SlowDown" };
            return Task.FromResult("done");
        }, default);

        result.Should().Be("done");
        attempts.Should().Be(3);
    }

    [Fact]
    public async Task A_call_refused_by_the_store_is_not_tried_again()
    {
        var (_, bucket) = NewStore();
        var attempts = 0;

        var call = async () => await bucket.RetryAsync<string>(_ =>
        {
            attempts++;
            throw new AmazonS3Exception("denied") { StatusCode = HttpStatusCode.Forbidden, ErrorCode = "AccessDenied" };
        }, default);

        await call.Should().ThrowAsync<AmazonS3Exception>();
        attempts.Should().Be(1);
    }

    [Fact]
    public async Task A_replayed_append_to_a_session_whose_commit_stopped_before_removing_its_state_is_an_unknown_session()
    {
        // The replica that committed publishes the blob, deletes the session's tail and dies before deleting its
        // state; a proxy then replays the request (PUT with the body) on another replica.
        var dying = new InterruptedSessions { FailDelete = true };
        var (first, _) = NewStore(wrap: dying.Wrap);
        var (second, _) = NewStore();
        var data = RandomNumberGenerator.GetBytes(1000);
        var id = UploadId.New();
        await first.CreateUploadAsync(id, default);
        await first.AppendAsync(id, 0, Body(data), data.Length, default);
        await first.Invoking(s => s.CommitAsync(id, DigestOf(data), null, default).AsTask()).Should().ThrowAsync<IOException>();

        var replay = await second.AppendAsync(id, null, Body(data), data.Length, default);

        replay.Status.Should().Be(AppendStatus.UnknownSession);
    }

    [Fact]
    public async Task A_commit_of_a_session_whose_cancel_stopped_before_removing_its_state_is_an_unknown_session()
    {
        var dying = new InterruptedSessions { FailDelete = true };
        var (first, _) = NewStore(wrap: dying.Wrap);
        var (second, _) = NewStore();
        var data = RandomNumberGenerator.GetBytes(1000);
        var id = UploadId.New();
        await first.CreateUploadAsync(id, default);
        await first.AppendAsync(id, 0, Body(data), data.Length, default);
        await first.Invoking(s => s.CancelUploadAsync(id, default).AsTask()).Should().ThrowAsync<IOException>();

        var commit = await second.CommitAsync(id, DigestOf(data), null, default);

        commit.Status.Should().Be(CommitStatus.UnknownSession);
        (await second.ExistsAsync(DigestOf(data), default)).Should().BeFalse();
    }

    [Fact]
    public async Task An_append_whose_state_replace_landed_with_its_answer_lost_keeps_the_tail_that_state_names()
    {
        var lossy = new InterruptedSessions { LoseReplaceAnswer = true };
        var (first, _) = NewStore(wrap: lossy.Wrap);
        var (second, _) = NewStore();
        var data = RandomNumberGenerator.GetBytes(3000);
        var id = UploadId.New();
        await first.CreateUploadAsync(id, default);
        await first.Invoking(s => s.AppendAsync(id, 0, Body(data[..1000]), 1000, default).AsTask()).Should().ThrowAsync<IOException>();

        var size = await second.GetUploadSizeAsync(id, default);
        var append = await second.AppendAsync(id, 1000, Body(data[1000..]), 2000, default);
        var commit = await second.CommitAsync(id, DigestOf(data), 3000, default);

        size.Should().Be(1000, "the replace landed");
        append.Should().Be(new AppendResult(AppendStatus.Appended, 3000));
        commit.Status.Should().Be(CommitStatus.Committed);
    }

    /// <summary>A session store whose replica dies at a chosen point: before deleting a state, or after a replace whose answer it never gets.</summary>
    private sealed class InterruptedSessions
    {
        public bool FailDelete { get; init; }
        public bool LoseReplaceAnswer { get; init; }

        public IUploadSessionStore Wrap(IUploadSessionStore inner) => new Store(inner, this);

        private sealed class Store(IUploadSessionStore inner, InterruptedSessions owner) : IUploadSessionStore
        {
            public ValueTask<bool> CreateAsync(UploadId id, UploadSessionState state, CancellationToken ct) => inner.CreateAsync(id, state, ct);

            public ValueTask<VersionedUploadSession?> GetAsync(UploadId id, CancellationToken ct) => inner.GetAsync(id, ct);

            public async ValueTask<bool> ReplaceAsync(UploadId id, UploadSessionState state, string expectedVersion, CancellationToken ct)
            {
                var replaced = await inner.ReplaceAsync(id, state, expectedVersion, ct);
                if (owner.LoseReplaceAnswer) throw new IOException("connection reset by peer (the answer was lost)");
                return replaced;
            }

            public ValueTask DeleteAsync(UploadId id, CancellationToken ct) =>
                owner.FailDelete ? throw new IOException("the replica died before deleting the state") : inner.DeleteAsync(id, ct);

            public IAsyncEnumerable<UploadId> ListWrittenBeforeAsync(DateTimeOffset before, CancellationToken ct) =>
                inner.ListWrittenBeforeAsync(before, ct);
        }
    }

    /// <summary>Signals when a session's state has been read, so a test can interleave two replicas' requests.</summary>
    private sealed class SignallingSessions
    {
        public TaskCompletionSource StateRead { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public IUploadSessionStore Wrap(IUploadSessionStore inner) => new Store(inner, this);

        private sealed class Store(IUploadSessionStore inner, SignallingSessions owner) : IUploadSessionStore
        {
            public ValueTask<bool> CreateAsync(UploadId id, UploadSessionState state, CancellationToken ct) => inner.CreateAsync(id, state, ct);

            public async ValueTask<VersionedUploadSession?> GetAsync(UploadId id, CancellationToken ct)
            {
                var state = await inner.GetAsync(id, ct);
                owner.StateRead.TrySetResult();
                return state;
            }

            public ValueTask<bool> ReplaceAsync(UploadId id, UploadSessionState state, string expectedVersion, CancellationToken ct) =>
                inner.ReplaceAsync(id, state, expectedVersion, ct);

            public ValueTask DeleteAsync(UploadId id, CancellationToken ct) => inner.DeleteAsync(id, ct);

            public IAsyncEnumerable<UploadId> ListWrittenBeforeAsync(DateTimeOffset before, CancellationToken ct) =>
                inner.ListWrittenBeforeAsync(before, ct);
        }
    }
}
