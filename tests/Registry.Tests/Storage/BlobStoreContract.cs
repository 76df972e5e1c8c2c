using System.IO.Pipelines;
using System.Security.Cryptography;
using Registry.Storage;
using Registry.Storage.Blobs;
using Registry.Storage.Blobs.S3;
using Registry.Storage.Model;
using Registry.Tests.Stack;

namespace Registry.Tests.Storage;

/// <summary>
/// What every <see cref="IBlobStore"/> MUST do, run against each implementation. Sizes cross S3's 5 MiB part
/// minimum, so multipart parts, pending tails and their read-back are exercised too.
/// </summary>
public abstract class BlobStoreContract
{
    protected const int MiB = 1 << 20;

    protected abstract IBlobStore Store { get; }

    /// <summary>Another instance over the same storage: another replica, or the same server after a restart.</summary>
    protected abstract IBlobStore NewReplica();

    protected static PipeReader Body(byte[] bytes) => PipeReader.Create(new MemoryStream(bytes));

    protected static Digest DigestOf(byte[] bytes) => Digest.Compute(DigestAlgorithm.Sha256, bytes);

    protected async Task<UploadId> NewUpload()
    {
        var id = UploadId.New();
        await Store.CreateUploadAsync(id, default);
        return id;
    }

    protected static async Task<byte[]> ReadAllAsync(IBlobStore store, Digest digest)
    {
        var content = await store.OpenAsync(digest, default);
        content.Should().NotBeNull();
        await using var stream = content!.OpenStream();
        using var copy = new MemoryStream();
        await stream.CopyToAsync(copy);
        return copy.ToArray();
    }

    [Fact]
    public async Task Chunks_of_any_size_appended_in_order_commit_under_their_digest()
    {
        var data = RandomNumberGenerator.GetBytes(14 * MiB + 123);
        int[] cuts = [1, 3 * MiB, 4 * MiB, 10 * MiB + 7, 11 * MiB, data.Length];
        var id = await NewUpload();

        var start = 0;
        foreach (var cut in cuts)
        {
            var result = await Store.AppendAsync(id, start, Body(data[start..cut]), cut - start, default);
            result.Should().Be(new AppendResult(AppendStatus.Appended, cut));
            start = cut;
        }
        var commit = await Store.CommitAsync(id, DigestOf(data), data.Length, default);

        commit.Should().Be(new CommitResult(CommitStatus.Committed, data.Length));
        (await ReadAllAsync(Store, DigestOf(data))).Should().Equal(data);
        (await Store.GetUploadSizeAsync(id, default)).Should().BeNull();
    }

    [Fact]
    public async Task A_chunk_that_does_not_start_at_the_end_is_refused_and_changes_nothing()
    {
        var id = await NewUpload();
        await Store.AppendAsync(id, 0, Body(new byte[10]), 10, default);

        var result = await Store.AppendAsync(id, 5, Body(new byte[10]), 10, default);

        result.Should().Be(new AppendResult(AppendStatus.OutOfOrder, 10));
        (await Store.GetUploadSizeAsync(id, default)).Should().Be(10);
    }

    [Fact]
    public async Task A_body_cut_off_after_several_megabytes_leaves_the_session_as_it_was()
    {
        var data = RandomNumberGenerator.GetBytes(8 * MiB);
        var id = await NewUpload();
        await Store.AppendAsync(id, 0, Body(data[..(2 * MiB)]), 2 * MiB, default);

        // The client goes away after 5 MiB of a 6 MiB chunk.
        var cut = PipeReader.Create(new FailingStreamForTests(data[(2 * MiB)..], failAfter: 5 * MiB));
        var result = await Store.AppendAsync(id, 2 * MiB, cut, 6 * MiB, default);

        result.Should().Be(new AppendResult(AppendStatus.Incomplete, 2 * MiB));
        (await Store.GetUploadSizeAsync(id, default)).Should().Be(2 * MiB);
        (await Store.AppendAsync(id, 2 * MiB, Body(data[(2 * MiB)..]), 6 * MiB, default)).Size.Should().Be(8 * MiB);
        (await Store.CommitAsync(id, DigestOf(data), data.Length, default)).Status.Should().Be(CommitStatus.Committed);
        (await ReadAllAsync(Store, DigestOf(data))).Should().Equal(data);
    }

    [Fact]
    public async Task A_body_longer_than_declared_is_refused_and_changes_nothing()
    {
        var id = await NewUpload();
        await Store.AppendAsync(id, 0, Body([1, 2, 3]), 3, default);

        var result = await Store.AppendAsync(id, 3, Body(new byte[20]), 10, default);

        result.Should().Be(new AppendResult(AppendStatus.Incomplete, 3));
        (await Store.CommitAsync(id, DigestOf([1, 2, 3]), 3, default)).Status.Should().Be(CommitStatus.Committed);
    }

    [Fact]
    public async Task A_commit_with_the_wrong_digest_publishes_nothing_and_ends_the_session()
    {
        var data = RandomNumberGenerator.GetBytes(6 * MiB);
        var claimed = DigestOf(RandomNumberGenerator.GetBytes(16));
        var id = await NewUpload();
        await Store.AppendAsync(id, 0, Body(data), data.Length, default);

        var result = await Store.CommitAsync(id, claimed, null, default);

        result.Status.Should().Be(CommitStatus.DigestMismatch);
        (await Store.ExistsAsync(claimed, default)).Should().BeFalse();
        (await Store.ExistsAsync(DigestOf(data), default)).Should().BeFalse();
        (await Store.GetUploadSizeAsync(id, default)).Should().BeNull();
    }

    [Fact]
    public async Task A_commit_with_the_wrong_size_publishes_nothing()
    {
        var data = RandomNumberGenerator.GetBytes(1000);
        var id = await NewUpload();
        await Store.AppendAsync(id, 0, Body(data), data.Length, default);

        var result = await Store.CommitAsync(id, DigestOf(data), 999, default);

        result.Status.Should().Be(CommitStatus.SizeMismatch);
        (await Store.ExistsAsync(DigestOf(data), default)).Should().BeFalse();
    }

    [Fact]
    public async Task Committing_content_that_is_already_stored_succeeds()
    {
        var data = RandomNumberGenerator.GetBytes(7 * MiB);
        var first = await NewUpload();
        var second = await NewUpload();
        await Store.AppendAsync(first, 0, Body(data), data.Length, default);
        await Store.AppendAsync(second, 0, Body(data), data.Length, default);

        (await Store.CommitAsync(first, DigestOf(data), null, default)).Status.Should().Be(CommitStatus.Committed);
        var again = await Store.CommitAsync(second, DigestOf(data), null, default);

        again.Should().Be(new CommitResult(CommitStatus.Committed, data.Length));
        (await ReadAllAsync(Store, DigestOf(data))).Should().Equal(data);
        (await Store.GetUploadSizeAsync(second, default)).Should().BeNull();
    }

    [Fact]
    public async Task A_session_continues_on_another_instance_of_the_store()
    {
        var data = RandomNumberGenerator.GetBytes(9 * MiB + 5);
        var id = await NewUpload();
        await Store.AppendAsync(id, 0, Body(data[..(6 * MiB + 1)]), 6 * MiB + 1, default);
        var replica = NewReplica();

        (await replica.GetUploadSizeAsync(id, default)).Should().Be(6 * MiB + 1);
        (await replica.AppendAsync(id, 6 * MiB + 1, Body(data[(6 * MiB + 1)..]), null, default)).Size.Should().Be(data.Length);
        var commit = await Store.CommitAsync(id, DigestOf(data), data.Length, default);

        commit.Status.Should().Be(CommitStatus.Committed);
        (await ReadAllAsync(replica, DigestOf(data))).Should().Equal(data);
    }

    [Fact]
    public async Task An_empty_session_commits_the_empty_blob()
    {
        var id = await NewUpload();

        var result = await Store.CommitAsync(id, DigestOf([]), 0, default);

        result.Should().Be(new CommitResult(CommitStatus.Committed, 0));
        (await ReadAllAsync(Store, DigestOf([]))).Should().BeEmpty();
    }

    [Fact]
    public async Task A_sha512_digest_is_verified_at_commit()
    {
        var data = RandomNumberGenerator.GetBytes(6 * MiB + 3);
        var digest = Digest.Compute(DigestAlgorithm.Sha512, data);
        var id = await NewUpload();
        await Store.AppendAsync(id, 0, Body(data), null, default);

        (await Store.CommitAsync(id, digest, null, default)).Status.Should().Be(CommitStatus.Committed);

        (await ReadAllAsync(Store, digest)).Should().Equal(data);
    }

    [Fact]
    public async Task A_range_of_a_blob_reads_exactly_those_bytes()
    {
        var data = RandomNumberGenerator.GetBytes(3 * MiB);
        await Store.PutAsync(DigestOf(data), data, default);
        var content = await Store.OpenAsync(DigestOf(data), default);

        await using var stream = content!.OpenStream();
        stream.Seek(MiB + 17, SeekOrigin.Begin);
        var range = new byte[1000];
        await stream.ReadExactlyAsync(range);
        stream.Seek(5, SeekOrigin.Begin);
        var start = new byte[10];
        await stream.ReadExactlyAsync(start);

        content.Length.Should().Be(data.Length);
        range.Should().Equal(data[(MiB + 17)..(MiB + 1017)]);
        start.Should().Equal(data[5..15]);
    }

    [Fact]
    public async Task A_single_request_upload_is_published_only_if_it_matches_its_digest()
    {
        var data = RandomNumberGenerator.GetBytes(11 * MiB);
        var wrong = DigestOf([1]);

        var refused = await Store.StoreAsync(wrong, Body(data), data.Length, default);
        var stored = await Store.StoreAsync(DigestOf(data), Body(data), null, default);

        refused.Status.Should().Be(CommitStatus.DigestMismatch);
        (await Store.ExistsAsync(wrong, default)).Should().BeFalse();
        stored.Should().Be(new CommitResult(CommitStatus.Committed, data.Length));
        (await ReadAllAsync(Store, DigestOf(data))).Should().Equal(data);
    }

    [Fact]
    public async Task A_single_request_upload_of_stored_content_is_still_verified()
    {
        var data = RandomNumberGenerator.GetBytes(100);
        await Store.PutAsync(DigestOf(data), data, default);

        var again = await Store.StoreAsync(DigestOf(data), Body(data), data.Length, default);
        var liar = await Store.StoreAsync(DigestOf(data), Body(new byte[100]), 100, default);

        again.Status.Should().Be(CommitStatus.Committed);
        liar.Status.Should().Be(CommitStatus.DigestMismatch);
        (await ReadAllAsync(Store, DigestOf(data))).Should().Equal(data);
    }

    [Fact]
    public async Task A_single_request_upload_shorter_than_declared_publishes_nothing()
    {
        var data = RandomNumberGenerator.GetBytes(6 * MiB);

        var result = await Store.StoreAsync(DigestOf(data), Body(data[..(3 * MiB)]), data.Length, default);

        result.Status.Should().Be(CommitStatus.Incomplete);
        (await Store.ExistsAsync(DigestOf(data), default)).Should().BeFalse();
    }

    [Fact]
    public async Task Delete_removes_the_content_and_reports_its_size()
    {
        var data = RandomNumberGenerator.GetBytes(4321);
        await Store.PutAsync(DigestOf(data), data, default);

        var deleted = await Store.DeleteAsync(DigestOf(data), default);

        deleted.Should().Be(4321);
        (await Store.OpenAsync(DigestOf(data), default)).Should().BeNull();
        (await Store.DeleteAsync(DigestOf(data), default)).Should().BeNull();
    }

    [Fact]
    public async Task Every_published_blob_is_enumerated_with_its_write_time()
    {
        var digests = new List<Digest>();
        for (var i = 0; i < 3; i++)
        {
            var data = RandomNumberGenerator.GetBytes(50);
            await Store.PutAsync(DigestOf(data), data, default);
            digests.Add(DigestOf(data));
        }

        Store.EnumerateBlobs().Should().Contain(digests);
        Store.WrittenAt(digests[0]).Should().BeCloseTo(DateTimeOffset.UtcNow, TimeSpan.FromMinutes(5));
        Store.WrittenAt(DigestOf([9, 9])).Should().BeNull();
    }

    [Fact]
    public async Task Cancelling_a_session_removes_it_and_is_idempotent()
    {
        var id = await NewUpload();
        await Store.AppendAsync(id, 0, Body(new byte[6 * MiB]), null, default);

        await Store.CancelUploadAsync(id, default);
        await Store.CancelUploadAsync(id, default);

        (await Store.GetUploadSizeAsync(id, default)).Should().BeNull();
        (await Store.AppendAsync(id, null, Body([1]), 1, default)).Status.Should().Be(AppendStatus.UnknownSession);
        (await Store.CommitAsync(id, DigestOf([]), null, default)).Status.Should().Be(CommitStatus.UnknownSession);
    }

    [Fact]
    public async Task Sessions_written_before_a_time_are_listed_and_later_ones_are_not()
    {
        var id = await NewUpload();
        await Store.AppendAsync(id, 0, Body([1, 2]), 2, default);

        Store.ListUploadsWrittenBefore(DateTimeOffset.UtcNow.AddMinutes(5)).Should().Contain(id);
        Store.ListUploadsWrittenBefore(DateTimeOffset.UtcNow.AddMinutes(-5)).Should().NotContain(id);
    }

    /// <summary>Yields its bytes, then fails as a dropped connection does.</summary>
    internal sealed class FailingStreamForTests(byte[] data, int failAfter) : Stream
    {
        private int _position;

        public override int Read(byte[] buffer, int offset, int count)
        {
            if (_position >= failAfter) throw new IOException("connection reset by peer");
            var n = Math.Min(count, Math.Min(failAfter, data.Length) - _position);
            Array.Copy(data, _position, buffer, offset, n);
            _position += n;
            return n;
        }

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => _position; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}

public sealed class FileSystemBlobStoreContractTests : BlobStoreContract, IDisposable
{
    private readonly StorageLayout _layout;

    public FileSystemBlobStoreContractTests()
    {
        _layout = new StorageLayout(Directory.CreateTempSubdirectory("blobstore-contract-").FullName);
        _layout.Initialise();
        Store = new FileSystemBlobStore(_layout, flushToDisk: false);
    }

    protected override IBlobStore Store { get; }

    protected override IBlobStore NewReplica() => new FileSystemBlobStore(_layout, flushToDisk: false);

    public void Dispose() => Directory.Delete(_layout.Root, recursive: true);
}

[Collection(CephCollection.Name)]
public sealed class S3BlobStoreContractTests : BlobStoreContract, IDisposable
{
    private readonly S3Settings _settings;
    private readonly List<S3Bucket> _buckets = [];

    public S3BlobStoreContractTests(CephFixture ceph)
    {
        _settings = ceph.NewSettings();
        Store = NewReplica();
    }

    protected override IBlobStore Store { get; }

    /// <summary>Parts of S3's minimum size, so that the tests' few megabytes span several parts.</summary>
    protected override IBlobStore NewReplica()
    {
        var bucket = new S3Bucket(_settings);
        _buckets.Add(bucket);
        return new S3BlobStore(bucket, new S3UploadSessionStore(bucket), partSize: S3BlobStore.MinPartSize);
    }

    public void Dispose()
    {
        foreach (var bucket in _buckets) bucket.Dispose();
    }
}
