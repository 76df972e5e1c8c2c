using Registry.Storage.Metadata;
using static Registry.Tests.Contracts.Sample;

namespace Registry.Tests.Contracts;

/// <summary>What every <see cref="ILinkStore"/> promises.</summary>
public abstract class LinkStoreContract : MetadataContract
{
    private ILinkStore Links => Store;

    [Fact]
    public async Task A_linked_blob_has_its_size_in_that_repository_only()
    {
        var blob = DigestOf("layer");

        await Links.LinkBlobAsync(Repo("a/app"), blob, 5, T0, default);

        (await Links.GetLinkedBlobSizeAsync(Repo("a/app"), blob, default)).Should().Be(5);
        (await Links.GetLinkedBlobSizeAsync(Repo("b/app"), blob, default)).Should().BeNull();
    }

    [Fact]
    public async Task Linking_creates_the_repository()
    {
        await Links.LinkBlobAsync(Repo("new/app"), DigestOf("layer"), 5, T0, default);

        (await Store.RepositoryExistsAsync(Repo("new/app"), default)).Should().BeTrue();
    }

    [Fact]
    public async Task Linking_twice_is_success()
    {
        var blob = DigestOf("layer");
        await Links.LinkBlobAsync(Repo("a/app"), blob, 5, T0, default);

        var again = async () => await Links.LinkBlobAsync(Repo("a/app"), blob, 5, T0.AddHours(1), default);

        await again.Should().NotThrowAsync();
        (await Links.GetLinkedBlobSizeAsync(Repo("a/app"), blob, default)).Should().Be(5);
    }

    [Fact]
    public async Task A_link_older_than_the_cutoff_that_nothing_references_is_a_sweep_candidate()
    {
        var blob = DigestOf("layer");
        await Links.LinkBlobAsync(Repo("a/app"), blob, 5, T0, default);

        var candidates = await Store.SweepLinksAsync(Repo("a/app"), T0.AddHours(1), dryRun: true, default);

        candidates.Should().Equal(blob);
    }

    [Fact]
    public async Task Linking_again_restarts_the_grace_period()
    {
        var blob = DigestOf("layer");
        await Links.LinkBlobAsync(Repo("a/app"), blob, 5, T0, default);

        await Links.LinkBlobAsync(Repo("a/app"), blob, 5, T0.AddHours(2), default);

        (await Store.SweepLinksAsync(Repo("a/app"), T0.AddHours(1), dryRun: true, default)).Should().BeEmpty();
    }

    [Fact]
    public async Task Unlinking_removes_only_that_repositorys_link_and_keeps_the_blob_record()
    {
        var blob = DigestOf("layer");
        await Links.LinkBlobAsync(Repo("a/app"), blob, 5, T0, default);
        await Links.LinkBlobAsync(Repo("b/app"), blob, 5, T0, default);

        (await Links.UnlinkBlobAsync(Repo("a/app"), blob, T0, default)).Should().BeTrue();

        (await Links.GetLinkedBlobSizeAsync(Repo("a/app"), blob, default)).Should().BeNull();
        (await Links.GetLinkedBlobSizeAsync(Repo("b/app"), blob, default)).Should().Be(5);
        (await Links.GetBlobSizeAsync(blob, default)).Should().Be(5);
    }

    [Fact]
    public async Task Unlinking_what_is_not_linked_is_false()
    {
        await Links.LinkBlobAsync(Repo("a/app"), DigestOf("layer"), 5, T0, default);

        (await Links.UnlinkBlobAsync(Repo("a/app"), DigestOf("other"), T0, default)).Should().BeFalse();
        (await Links.UnlinkBlobAsync(Repo("none/app"), DigestOf("layer"), T0, default)).Should().BeFalse();
    }

    [Fact]
    public async Task A_mount_finds_a_blob_only_through_a_repository_the_caller_may_see()
    {
        var blob = DigestOf("layer");
        await Links.LinkBlobAsync(Repo("private/app"), blob, 5, T0, default);

        (await Links.FindLinkedBlobSizeAsync(blob, r => r.Value.StartsWith("public/"), default)).Should().BeNull();
        (await Links.FindLinkedBlobSizeAsync(blob, r => r.Value.StartsWith("private/"), default)).Should().Be(5);
    }

    [Fact]
    public async Task A_manifests_bytes_are_recorded_but_never_found_for_a_mount()
    {
        var manifest = await PushAsync(Repo("a/app"), "{}");

        (await Links.GetBlobSizeAsync(manifest.Digest, default)).Should().Be(manifest.Size);
        (await Links.FindLinkedBlobSizeAsync(manifest.Digest, _ => true, default)).Should().BeNull();
        (await Links.GetLinkedBlobSizeAsync(Repo("a/app"), manifest.Digest, default)).Should().BeNull();
    }

    [Fact]
    public async Task An_unknown_blob_has_no_size()
    {
        (await Links.GetBlobSizeAsync(DigestOf("never"), default)).Should().BeNull();
    }
}

public sealed class SqliteLinkStoreContract : LinkStoreContract
{
    protected override IMetadataBackend CreateBackend() => new SqliteBackend();
}

public sealed class PostgresLinkStoreContract : LinkStoreContract
{
    protected override IMetadataBackend CreateBackend() => new PostgresBackend();
}
