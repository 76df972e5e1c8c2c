using Registry.Storage.Metadata;
using Registry.Storage.Model;
using static Registry.Tests.Contracts.Sample;

namespace Registry.Tests.Contracts;

/// <summary>What every <see cref="IVerificationStore"/> promises: whole-store listings and counts that agree.</summary>
public abstract class VerificationStoreContract : MetadataContract
{
    private IVerificationStore Verification => Store;

    [Fact]
    public async Task Statistics_count_repositories_manifests_blobs_with_their_bytes_and_open_sessions()
    {
        var manifest = await PushAsync(Repo("a/app"), "{}");
        await PushAsync(Repo("b/app"), "{}");
        await Store.LinkBlobAsync(Repo("a/app"), DigestOf("layer"), 100, T0, default);
        await Store.CreateUploadAsync(new UploadSession(UploadId.New(), Repo("a/app"), T0), default);

        var statistics = await Verification.GetStatisticsAsync(default);

        statistics.Should().Be(new StoreStatistics(Repositories: 2, Manifests: 2, Blobs: 2, BlobBytes: 100 + manifest.Size,
            Uploads: 1));
    }

    [Fact]
    public async Task Every_recorded_blob_is_listed_once_with_its_size_manifests_included()
    {
        var manifest = await PushAsync(Repo("a/app"), "{}");
        await Store.LinkBlobAsync(Repo("a/app"), DigestOf("layer"), 100, T0, default);
        await Store.LinkBlobAsync(Repo("b/app"), DigestOf("layer"), 100, T0, default);

        var blobs = await Verification.ListBlobsAsync(default).ToListAsync();

        blobs.Should().BeEquivalentTo([(manifest.Digest, manifest.Size), (DigestOf("layer"), 100L)]);
    }

    [Fact]
    public async Task Every_manifest_is_listed_with_its_repository()
    {
        var manifest = await PushAsync(Repo("a/app"), "{}");
        await PushAsync(Repo("b/app"), "{}");

        var manifests = await Verification.ListManifestsAsync(default).ToListAsync();

        manifests.Should().BeEquivalentTo([(Repo("a/app"), manifest.Digest), (Repo("b/app"), manifest.Digest)]);
    }

    [Fact]
    public async Task A_store_written_only_through_its_contract_passes_its_integrity_check()
    {
        var manifest = await PushAsync(Repo("a/app"), "{}", ["v1"]);
        await Store.DeleteManifestAsync(Repo("a/app"), manifest.Digest, T0, default);
        await Store.LinkBlobAsync(Repo("a/app"), DigestOf("layer"), 100, T0, default);

        (await Verification.CheckIntegrityAsync(default)).Should().BeEmpty();
    }
}

public sealed class SqliteVerificationStoreContract : VerificationStoreContract
{
    protected override IMetadataBackend CreateBackend() => new SqliteBackend();
}

public sealed class PostgresVerificationStoreContract : VerificationStoreContract
{
    protected override IMetadataBackend CreateBackend() => new PostgresBackend();
}
