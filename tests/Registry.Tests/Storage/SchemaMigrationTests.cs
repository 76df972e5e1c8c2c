using Microsoft.Data.Sqlite;
using Registry.Storage.Metadata;
using Registry.Storage.Model;

namespace Registry.Tests.Storage;

/// <summary>A database written by an older registry opens with its data, migrated to the current schema version.</summary>
public sealed class SchemaMigrationTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("schema-").FullName;
    private string DatabasePath => Path.Combine(_dir, "metadata.db");

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(_dir, recursive: true);
    }

    private static readonly Digest Config = Digest.Compute(DigestAlgorithm.Sha256, "{}"u8);
    private static readonly Digest Manifest = Digest.Compute(DigestAlgorithm.Sha256, "manifest"u8);

    /// <summary>What the registry before schema versioning left on disk: its CREATE statements and some rows.</summary>
    private void WriteVersion1Database()
    {
        using var connection = new SqliteConnection($"Data Source={DatabasePath}");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA journal_mode=WAL;" + File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Storage", "Fixtures", "schema-v1.sql")) + $"""
            INSERT INTO repositories(id, name, created_at) VALUES (1, 'old/app', 1000);
            INSERT INTO blobs(digest, size, created_at) VALUES ('{Config}', 2, 1000), ('{Manifest}', 8, 1000);
            INSERT INTO repository_blobs(repository_id, digest, linked_at) VALUES (1, '{Config}', 1000);
            INSERT INTO manifests(repository_id, digest, media_type, size, pushed_at)
              VALUES (1, '{Manifest}', 'application/vnd.oci.image.manifest.v1+json', 8, 1000);
            INSERT INTO manifest_references(repository_id, manifest, target, kind) VALUES (1, '{Manifest}', '{Config}', 0);
            INSERT INTO tags(repository_id, name, digest, updated_at) VALUES (1, 'v1', '{Manifest}', 1000);
            """;
        command.ExecuteNonQuery();
    }

    private long UserVersion()
    {
        using var connection = new SqliteConnection($"Data Source={DatabasePath}");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA user_version";
        return (long)command.ExecuteScalar()!;
    }

    [Fact]
    public async Task A_database_of_the_schema_before_versioning_opens_with_its_data()
    {
        WriteVersion1Database();
        RepositoryName.TryParse("old/app", out var repo);

        using var store = new SqliteMetadataStore(DatabasePath, durable: false);

        var manifest = await store.GetManifestAsync(repo, Reference.TryParse("v1", out var tag) ? tag : default, default);
        manifest!.Digest.Should().Be(Manifest);
        (await store.GetLinkedBlobSizeAsync(repo, Config, default)).Should().Be(2);
        (await store.CheckIntegrityAsync(default)).Should().BeEmpty();
    }

    [Fact]
    public void A_database_of_the_schema_before_versioning_is_migrated_to_the_current_version()
    {
        WriteVersion1Database();

        using (new SqliteMetadataStore(DatabasePath, durable: false)) { }

        UserVersion().Should().Be(SqliteMetadataStore.SchemaVersion);
    }

    [Fact]
    public async Task A_database_of_version_3_gains_the_inline_content_table_and_keeps_its_rows()
    {
        // What the registry of schema version 3 wrote: its three migrations, then a blob pushed as a file.
        using (var connection = new SqliteConnection($"Data Source={DatabasePath};Pooling=False"))
        {
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = "PRAGMA journal_mode=WAL;" + string.Join("\n", SqliteMetadataStore.Migrations.Take(3)) + $"""
                PRAGMA user_version = 3;
                INSERT INTO repositories(id, name, created_at) VALUES (1, 'old/app', 1000);
                INSERT INTO blobs(digest, size, created_at) VALUES ('{Config}', 2, 1000);
                INSERT INTO repository_blobs(repository_id, digest, linked_at) VALUES (1, '{Config}', 1000);
                """;
            command.ExecuteNonQuery();
        }
        RepositoryName.TryParse("old/app", out var repo);

        using var store = new SqliteMetadataStore(DatabasePath, durable: false);

        UserVersion().Should().Be(SqliteMetadataStore.SchemaVersion);
        (await store.GetLinkedBlobSizeAsync(repo, Config, default)).Should().Be(2);
        store.ReadContent(Config).Should().BeNull("a version-3 blob is a file");
        await store.PutContentAsync(Config, "{}"u8.ToArray(), DateTimeOffset.UtcNow, default);
        store.ReadContent(Config).Should().Equal("{}"u8.ToArray());
        (await store.CheckIntegrityAsync(default)).Should().BeEmpty();
    }

    [Fact]
    public void A_new_database_gets_the_current_version()
    {
        using (new SqliteMetadataStore(DatabasePath, durable: false)) { }

        UserVersion().Should().Be(SqliteMetadataStore.SchemaVersion);
    }

    [Fact]
    public void A_database_written_by_a_newer_registry_is_refused()
    {
        using (var connection = new SqliteConnection($"Data Source={DatabasePath}"))
        {
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = $"PRAGMA user_version = {SqliteMetadataStore.SchemaVersion + 1}";
            command.ExecuteNonQuery();
        }

        var open = () => new SqliteMetadataStore(DatabasePath, durable: false);

        open.Should().Throw<InvalidOperationException>().WithMessage("*newer than this registry*");
    }
}
