using System.IO.Pipelines;
using System.Security.Cryptography;
using Registry.Storage;
using Registry.Storage.Blobs;
using Registry.Storage.Model;

namespace Registry.Tests.Storage;

public sealed class FileSystemBlobStoreTests : IDisposable
{
    private readonly StorageLayout _layout;
    private readonly FileSystemBlobStore _store;

    public FileSystemBlobStoreTests()
    {
        _layout = new StorageLayout(Directory.CreateTempSubdirectory("blobstore-").FullName);
        _layout.Initialise();
        _store = new FileSystemBlobStore(_layout, flushToDisk: false);
    }

    public void Dispose() => Directory.Delete(_layout.Root, recursive: true);

    private static PipeReader Body(byte[] bytes) => PipeReader.Create(new MemoryStream(bytes));

    private static Digest DigestOf(byte[] bytes) => Digest.Compute(DigestAlgorithm.Sha256, bytes);

    private async Task<UploadId> NewUpload()
    {
        var id = UploadId.New();
        await _store.CreateUploadAsync(id, default);
        return id;
    }

    [Fact]
    public async Task Chunks_appended_in_order_commit_under_their_digest()
    {
        var data = RandomNumberGenerator.GetBytes(300_000);
        var id = await NewUpload();

        (await _store.AppendAsync(id, 0, Body(data[..100_000]), 100_000, default)).Status.Should().Be(AppendStatus.Appended);
        (await _store.AppendAsync(id, 100_000, Body(data[100_000..]), null, default)).Size.Should().Be(300_000);
        var result = await _store.CommitAsync(id, DigestOf(data), 300_000, default);

        result.Status.Should().Be(CommitStatus.Committed);
        var content = await _store.OpenAsync(DigestOf(data), default);
        (await File.ReadAllBytesAsync(content!.LocalPath!)).Should().Equal(data);
        File.Exists(_layout.UploadPath(id)).Should().BeFalse();
    }

    [Fact]
    public async Task A_chunk_that_does_not_start_at_the_end_is_refused_and_changes_nothing()
    {
        var id = await NewUpload();
        await _store.AppendAsync(id, 0, Body(new byte[10]), 10, default);

        var result = await _store.AppendAsync(id, 5, Body(new byte[10]), 10, default);

        result.Should().Be(new AppendResult(AppendStatus.OutOfOrder, 10));
        (await _store.GetUploadSizeAsync(id, default)).Should().Be(10);
    }

    [Fact]
    public async Task A_body_shorter_than_declared_is_rolled_back_entirely()
    {
        var id = await NewUpload();
        await _store.AppendAsync(id, 0, Body([1, 2, 3]), 3, default);

        var result = await _store.AppendAsync(id, 3, Body([4, 5]), 10, default);

        result.Status.Should().Be(AppendStatus.Incomplete);
        (await _store.GetUploadSizeAsync(id, default)).Should().Be(3);
        (await _store.CommitAsync(id, DigestOf([1, 2, 3]), null, default)).Status.Should().Be(CommitStatus.Committed);
    }

    [Fact]
    public async Task A_body_longer_than_declared_is_rolled_back_entirely()
    {
        var id = await NewUpload();

        var result = await _store.AppendAsync(id, 0, Body(new byte[20]), 10, default);

        result.Status.Should().Be(AppendStatus.Incomplete);
        (await _store.GetUploadSizeAsync(id, default)).Should().Be(0);
    }

    [Fact]
    public async Task A_digest_mismatch_publishes_nothing_and_removes_the_session()
    {
        var id = await NewUpload();
        await _store.AppendAsync(id, 0, Body([1, 2, 3]), null, default);
        var wrong = DigestOf([9]);

        var result = await _store.CommitAsync(id, wrong, null, default);

        result.Status.Should().Be(CommitStatus.DigestMismatch);
        (await _store.ExistsAsync(wrong, default)).Should().BeFalse();
        (await _store.ExistsAsync(DigestOf([1, 2, 3]), default)).Should().BeFalse();
        File.Exists(_layout.UploadPath(id)).Should().BeFalse();
    }

    [Fact]
    public async Task A_session_resumes_after_a_restart_by_rehashing_what_it_holds()
    {
        var data = RandomNumberGenerator.GetBytes(3_000_000);
        var id = await NewUpload();
        await _store.AppendAsync(id, 0, Body(data[..2_000_000]), null, default);

        var restarted = new FileSystemBlobStore(_layout, flushToDisk: true);
        (await restarted.GetUploadSizeAsync(id, default)).Should().Be(2_000_000);
        await restarted.AppendAsync(id, 2_000_000, Body(data[2_000_000..]), null, default);
        var result = await restarted.CommitAsync(id, DigestOf(data), null, default);

        result.Status.Should().Be(CommitStatus.Committed);
    }

    [Fact]
    public async Task Sha512_digests_are_verified()
    {
        var data = RandomNumberGenerator.GetBytes(1000);
        var id = await NewUpload();
        await _store.AppendAsync(id, 0, Body(data), null, default);

        var digest = Digest.Compute(DigestAlgorithm.Sha512, data);
        (await _store.CommitAsync(id, digest, null, default)).Status.Should().Be(CommitStatus.Committed);
        (await _store.ExistsAsync(digest, default)).Should().BeTrue();
    }

    [Fact]
    public async Task The_same_blob_uploaded_concurrently_is_stored_once_and_both_succeed()
    {
        var data = RandomNumberGenerator.GetBytes(1_000_000);
        var uploads = await Task.WhenAll(Enumerable.Range(0, 8).Select(async _ =>
        {
            var id = await NewUpload();
            await _store.AppendAsync(id, 0, Body(data), null, default);
            return await _store.CommitAsync(id, DigestOf(data), null, default);
        }));

        uploads.Should().OnlyContain(r => r.Status == CommitStatus.Committed);
        (await _store.EnumerateBlobsAsync(default).ToListAsync()).Should().Equal(DigestOf(data));
        Directory.EnumerateFiles(_layout.UploadsRoot).Should().BeEmpty();
    }

    [Fact]
    public async Task Cancel_is_idempotent()
    {
        var id = await NewUpload();
        await _store.CancelUploadAsync(id, default);
        await _store.CancelUploadAsync(id, default);
        (await _store.GetUploadSizeAsync(id, default)).Should().BeNull();
    }

    [Fact]
    public async Task Put_publishes_small_content_atomically_and_twice_is_fine()
    {
        var data = "{\"a\":1}"u8.ToArray();
        await _store.PutAsync(DigestOf(data), data, default);
        await _store.PutAsync(DigestOf(data), data, default);
        (await _store.OpenAsync(DigestOf(data), default))!.Length.Should().Be(data.Length);
        Directory.EnumerateFiles(_layout.TempRoot).Should().BeEmpty();
    }
}
