using Microsoft.Data.Sqlite;
using Registry.Storage.Metadata;
using Registry.Storage.Model;

namespace Registry.Tests.Storage;

/// <summary>The upgrade of databases from before the drop-in work (delivery cursors are in <see cref="Contracts.OutboxContract"/>).</summary>
public sealed class MetadataSchemaTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("schema-").FullName;
    private string DatabasePath => Path.Combine(_folder, "metadata.db");

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(_folder, recursive: true);
    }

    [Fact]
    public async Task A_database_from_before_per_client_upload_caps_is_upgraded_on_open()
    {
        using (var old = new SqliteConnection($"Data Source={DatabasePath};Pooling=false"))
        {
            old.Open();
            using var create = old.CreateCommand();
            create.CommandText = """
                CREATE TABLE uploads (id TEXT PRIMARY KEY, repository TEXT NOT NULL, started_at INTEGER NOT NULL) WITHOUT ROWID;
                INSERT INTO uploads VALUES ('0123456789abcdef0123456789abcdef', 'old/app', 0);
                """;
            create.ExecuteNonQuery();
        }
        RepositoryName.TryParse("new/app", out var repository).Should().BeTrue();

        using var store = new SqliteMetadataStore(DatabasePath);
        await store.CreateUploadAsync(new UploadSession(UploadId.New(), repository, DateTimeOffset.UtcNow, "address:127.0.0.1"),
            CancellationToken.None);

        (await store.CountUploadsByClientAsync("address:127.0.0.1", CancellationToken.None)).Should().Be(1);
        (await store.CountUploadsAsync(CancellationToken.None)).Should().Be(2, "the session from before the upgrade is kept");
    }
}
