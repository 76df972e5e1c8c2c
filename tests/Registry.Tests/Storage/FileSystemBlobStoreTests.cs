using System.IO.Pipelines;
using System.Security.Cryptography;
using Registry.Storage;
using Registry.Storage.Blobs;
using Registry.Storage.Model;

namespace Registry.Tests.Storage;

/// <summary>
/// What only the filesystem store does: its files. What every blob store promises is in
/// <see cref="Contracts.BlobStoreContract"/>, run against this store by <see cref="Contracts.FileSystemBlobStoreContract"/>.
/// </summary>
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
    public async Task A_committed_blob_is_a_local_file_and_its_session_file_is_gone()
    {
        var data = RandomNumberGenerator.GetBytes(300_000);
        var id = await NewUpload();
        await _store.AppendAsync(id, 0, Body(data), null, default);

        await _store.CommitAsync(id, DigestOf(data), 300_000, default);

        var content = await _store.OpenAsync(DigestOf(data), default);
        content!.LocalPath.Should().Be(_layout.BlobPath(DigestOf(data)));
        (await File.ReadAllBytesAsync(content.LocalPath!)).Should().Equal(data);
        File.Exists(_layout.UploadPath(id)).Should().BeFalse();
    }

    [Fact]
    public async Task A_digest_mismatch_removes_the_session_file()
    {
        var id = await NewUpload();
        await _store.AppendAsync(id, 0, Body([1, 2, 3]), null, default);

        await _store.CommitAsync(id, DigestOf([9]), null, default);

        File.Exists(_layout.UploadPath(id)).Should().BeFalse();
    }

    [Fact]
    public async Task Identical_uploads_at_once_leave_no_session_files()
    {
        var data = RandomNumberGenerator.GetBytes(1_000_000);

        await Task.WhenAll(Enumerable.Range(0, 8).Select(async _ =>
        {
            var id = await NewUpload();
            await _store.AppendAsync(id, 0, Body(data), null, default);
            return await _store.CommitAsync(id, DigestOf(data), null, default);
        }));

        Directory.EnumerateFiles(_layout.UploadsRoot).Should().BeEmpty();
    }

    [Fact]
    public async Task Put_leaves_no_temporary_file()
    {
        var data = "{\"a\":1}"u8.ToArray();
        await _store.PutAsync(DigestOf(data), data, default);
        await _store.PutAsync(DigestOf(data), data, default);

        Directory.EnumerateFiles(_layout.TempRoot).Should().BeEmpty();
    }
}
