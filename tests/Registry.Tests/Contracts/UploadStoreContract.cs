using Registry.Storage.Metadata;
using Registry.Storage.Model;
using static Registry.Tests.Contracts.Sample;

namespace Registry.Tests.Contracts;

/// <summary>What every <see cref="IUploadStore"/> promises: a session's lifecycle, counts and expiry.</summary>
public abstract class UploadStoreContract : MetadataContract
{
    private IUploadStore Uploads => Store;

    [Fact]
    public async Task A_created_session_is_found_as_it_was_created()
    {
        var session = new UploadSession(UploadId.New(), Repo("a/app"), T0, "address:127.0.0.1", "alice");

        await Uploads.CreateUploadAsync(session, default);

        (await Uploads.GetUploadAsync(session.Id, default)).Should().Be(session);
    }

    [Fact]
    public async Task A_session_without_client_or_owner_keeps_them_null()
    {
        var session = new UploadSession(UploadId.New(), Repo("a/app"), T0);

        await Uploads.CreateUploadAsync(session, default);

        (await Uploads.GetUploadAsync(session.Id, default)).Should().Be(session);
    }

    [Fact]
    public async Task An_unknown_session_is_null()
    {
        (await Uploads.GetUploadAsync(UploadId.New(), default)).Should().BeNull();
    }

    [Fact]
    public async Task A_deleted_session_is_gone_and_deleting_it_again_is_fine()
    {
        var session = new UploadSession(UploadId.New(), Repo("a/app"), T0);
        await Uploads.CreateUploadAsync(session, default);

        await Uploads.DeleteUploadAsync(session.Id, default);
        var again = async () => await Uploads.DeleteUploadAsync(session.Id, default);

        await again.Should().NotThrowAsync();
        (await Uploads.GetUploadAsync(session.Id, default)).Should().BeNull();
        (await Uploads.CountUploadsAsync(default)).Should().Be(0);
    }

    [Fact]
    public async Task Open_sessions_are_counted_in_all_and_per_client()
    {
        await Uploads.CreateUploadAsync(new UploadSession(UploadId.New(), Repo("a/app"), T0, "user:alice"), default);
        await Uploads.CreateUploadAsync(new UploadSession(UploadId.New(), Repo("a/app"), T0, "user:alice"), default);
        var bob = new UploadSession(UploadId.New(), Repo("b/app"), T0, "user:bob");
        await Uploads.CreateUploadAsync(bob, default);
        await Uploads.DeleteUploadAsync(bob.Id, default);

        (await Uploads.CountUploadsAsync(default)).Should().Be(2);
        (await Uploads.CountUploadsByClientAsync("user:alice", default)).Should().Be(2);
        (await Uploads.CountUploadsByClientAsync("user:bob", default)).Should().Be(0);
    }

    [Fact]
    public async Task Expiry_lists_the_sessions_started_strictly_before_the_cutoff()
    {
        var old = new UploadSession(UploadId.New(), Repo("a/app"), T0);
        var atCutoff = new UploadSession(UploadId.New(), Repo("a/app"), T0.AddHours(1));
        var recent = new UploadSession(UploadId.New(), Repo("a/app"), T0.AddHours(2));
        foreach (var session in new[] { old, atCutoff, recent }) await Uploads.CreateUploadAsync(session, default);

        (await Uploads.ListUploadsStartedBeforeAsync(T0.AddHours(1), default)).Should().Equal(old.Id);
    }

    [Fact]
    public async Task A_session_created_through_one_instance_is_seen_by_another()
    {
        var session = new UploadSession(UploadId.New(), Repo("a/app"), T0, "user:alice", "alice");
        await Uploads.CreateUploadAsync(session, default);

        var other = await OpenAnotherAsync();

        (await other.GetUploadAsync(session.Id, default)).Should().Be(session);
    }
}

public sealed class SqliteUploadStoreContract : UploadStoreContract
{
    protected override IMetadataBackend CreateBackend() => new SqliteBackend();
}

public sealed class PostgresUploadStoreContract : UploadStoreContract
{
    protected override IMetadataBackend CreateBackend() => new PostgresBackend();
}
