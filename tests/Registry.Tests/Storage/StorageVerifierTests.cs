using Registry.Storage;
using Registry.Storage.Blobs;
using Registry.Storage.Metadata;
using Registry.Storage.Model;

namespace Registry.Tests.Storage;

public sealed class StorageVerifierTests : IDisposable
{
    private readonly StorageLayout _layout;
    private readonly FileSystemBlobStore _blobs;
    private readonly SqliteMetadataStore _metadata;
    private readonly StorageVerifier _verifier;
    private static readonly RepositoryName Repo = RepositoryName.TryParse("verify/app", out var n) ? n : default;

    public StorageVerifierTests()
    {
        _layout = new StorageLayout(Directory.CreateTempSubdirectory("verify-").FullName);
        _layout.Initialise();
        _blobs = new FileSystemBlobStore(_layout, flushToDisk: false);
        _metadata = new SqliteMetadataStore(_layout.DatabasePath);
        _verifier = new StorageVerifier(_blobs, _metadata);
    }

    public void Dispose()
    {
        _metadata.Dispose();
        Directory.Delete(_layout.Root, recursive: true);
    }

    private async Task<Digest> StoreAsync(byte[] data)
    {
        var digest = Digest.Compute(DigestAlgorithm.Sha256, data);
        await _blobs.PutAsync(digest, data, default);
        await _metadata.LinkBlobAsync(Repo, digest, data.Length, DateTimeOffset.UtcNow, default);
        return digest;
    }

    [Fact]
    public async Task Healthy_storage_is_consistent()
    {
        await StoreAsync([1, 2, 3]);
        var report = await _verifier.VerifyAsync(default);
        report.Consistent.Should().BeTrue();
        report.BlobsHashed.Should().Be(1);
    }

    [Fact]
    public async Task A_blob_whose_bytes_changed_is_reported()
    {
        var digest = await StoreAsync([1, 2, 3]);
        await File.WriteAllBytesAsync(_layout.BlobPath(digest), [1, 2, 4]);

        var report = await _verifier.VerifyAsync(default);

        report.Consistent.Should().BeFalse();
        report.Problems.Should().ContainSingle(p => p.Contains(digest.ToString()) && p.Contains("hashes to"));
    }

    [Fact]
    public async Task A_recorded_blob_missing_from_the_store_is_reported()
    {
        var digest = await StoreAsync([1, 2, 3]);
        File.Delete(_layout.BlobPath(digest));

        var report = await _verifier.VerifyAsync(default);

        report.Problems.Should().ContainSingle(p => p.Contains("missing"));
    }

    [Fact]
    public async Task An_unrecorded_blob_is_a_note_not_a_problem()
    {
        var data = new byte[] { 7 };
        await _blobs.PutAsync(Digest.Compute(DigestAlgorithm.Sha256, data), data, default);

        var report = await _verifier.VerifyAsync(default);

        report.Consistent.Should().BeTrue();
        report.Notes.Should().ContainSingle();
    }
}
