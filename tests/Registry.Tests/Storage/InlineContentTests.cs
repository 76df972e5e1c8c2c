using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using Microsoft.Extensions.DependencyInjection;
using Registry.Storage;
using Registry.Storage.Blobs;
using Registry.Storage.Metadata;
using Registry.Storage.Model;
using Registry.Tests.Infrastructure;
using GcHelpers = Registry.Tests.Gc.Gc;

namespace Registry.Tests.Storage;

/// <summary>
/// Small content kept in the metadata database (<c>Registry:Storage:InlineBytes</c>): where it goes, how it is read
/// back, and what is still a file. What every blob store promises is run against this layout by
/// <see cref="Contracts.InlineFileSystemBlobStoreContract"/>.
/// </summary>
public sealed class InlineContentTests : IDisposable
{
    private const int Limit = 16 * 1024;
    private readonly StorageLayout _layout;
    private readonly SqliteMetadataStore _metadata;
    private readonly FileSystemBlobStore _store;

    public InlineContentTests()
    {
        _layout = new StorageLayout(Directory.CreateTempSubdirectory("inline-").FullName);
        _layout.Initialise();
        _metadata = new SqliteMetadataStore(_layout.DatabasePath);
        _store = new FileSystemBlobStore(_layout, flushToDisk: true, _metadata, Limit);
    }

    public void Dispose()
    {
        _store.Dispose();
        _metadata.Dispose();
        Directory.Delete(_layout.Root, recursive: true);
    }

    private static System.IO.Pipelines.PipeReader Body(byte[] bytes) =>
        System.IO.Pipelines.PipeReader.Create(new MemoryStream(bytes));

    private static Digest DigestOf(byte[] bytes) => Digest.Compute(DigestAlgorithm.Sha256, bytes);

    [Theory]
    [InlineData(1)]
    [InlineData(Limit)]
    public async Task A_single_request_upload_up_to_the_limit_is_a_row_not_a_file(int size)
    {
        var data = RandomNumberGenerator.GetBytes(size);

        var result = await _store.StoreAsync(DigestOf(data), Body(data), size, default);

        result.Should().Be(new CommitResult(CommitStatus.Committed, size));
        File.Exists(_layout.BlobPath(DigestOf(data))).Should().BeFalse();
        Directory.EnumerateFiles(_layout.TempRoot).Should().BeEmpty();
        _metadata.ReadContent(DigestOf(data)).Should().Equal(data);
        var content = await _store.OpenAsync(DigestOf(data), default);
        content!.Inline.Should().BeTrue();
        content.LocalPath.Should().BeNull();
    }

    [Fact]
    public async Task One_byte_over_the_limit_is_a_file()
    {
        var data = RandomNumberGenerator.GetBytes(Limit + 1);

        await _store.StoreAsync(DigestOf(data), Body(data), data.Length, default);

        File.Exists(_layout.BlobPath(DigestOf(data))).Should().BeTrue();
        _metadata.ReadContent(DigestOf(data)).Should().BeNull();
    }

    [Fact]
    public async Task An_upload_without_a_declared_length_is_a_file_whatever_its_size()
    {
        var data = RandomNumberGenerator.GetBytes(100);

        await _store.StoreAsync(DigestOf(data), Body(data), expectedLength: null, default);

        File.Exists(_layout.BlobPath(DigestOf(data))).Should().BeTrue();
    }

    [Fact]
    public async Task A_small_session_is_kept_inline_and_its_file_removed_without_being_published()
    {
        var data = RandomNumberGenerator.GetBytes(3000);
        var id = UploadId.New();
        await _store.CreateUploadAsync(id, default);
        await _store.AppendAsync(id, 0, Body(data[..1000]), null, default);
        await _store.AppendAsync(id, 1000, Body(data[1000..]), null, default);

        var result = await _store.CommitAsync(id, DigestOf(data), 3000, default);

        result.Status.Should().Be(CommitStatus.Committed);
        File.Exists(_layout.UploadPath(id)).Should().BeFalse();
        File.Exists(_layout.BlobPath(DigestOf(data))).Should().BeFalse();
        _metadata.ReadContent(DigestOf(data)).Should().Equal(data);
    }

    [Fact]
    public async Task A_wrong_digest_keeps_no_row()
    {
        var data = RandomNumberGenerator.GetBytes(500);
        var wrong = DigestOf([1, 2, 3]);

        (await _store.StoreAsync(wrong, Body(data), data.Length, default)).Status.Should().Be(CommitStatus.DigestMismatch);

        _metadata.ListContent().Should().BeEmpty();
    }

    [Fact]
    public async Task A_body_shorter_than_declared_keeps_no_row()
    {
        var data = RandomNumberGenerator.GetBytes(500);

        (await _store.StoreAsync(DigestOf(data), Body(data), 600, default)).Status.Should().Be(CommitStatus.Incomplete);

        _metadata.ListContent().Should().BeEmpty();
    }

    [Fact]
    public async Task Content_already_a_file_stays_a_file_and_is_listed_once()
    {
        var data = RandomNumberGenerator.GetBytes(700);
        using (var files = new FileSystemBlobStore(_layout, flushToDisk: true))
            await files.StoreAsync(DigestOf(data), Body(data), data.Length, default);

        await _store.StoreAsync(DigestOf(data), Body(data), data.Length, default);
        await _store.PutAsync(DigestOf(data), data, default);

        _metadata.ReadContent(DigestOf(data)).Should().BeNull();
        (await _store.EnumerateBlobsAsync(default).ToListAsync()).Should().Equal(DigestOf(data));
        (await _store.OpenAsync(DigestOf(data), default))!.LocalPath.Should().NotBeNull();
    }

    [Fact]
    public async Task Content_held_both_ways_is_listed_once_and_deleted_both_ways()
    {
        var data = RandomNumberGenerator.GetBytes(800);
        await _store.PutAsync(DigestOf(data), data, default);
        using (var files = new FileSystemBlobStore(_layout, flushToDisk: true))
            await files.PutAsync(DigestOf(data), data, default);

        (await _store.EnumerateBlobsAsync(default).ToListAsync()).Should().Equal(DigestOf(data));
        var deleted = await _store.DeleteAsync(DigestOf(data), default);

        deleted.Should().Be(new DeletedBlob(800, 800));
        (await _store.ExistsAsync(DigestOf(data), default)).Should().BeFalse();
    }

    [Fact]
    public async Task Ranges_of_inline_content_read_exactly_their_bytes()
    {
        var data = RandomNumberGenerator.GetBytes(4096);
        await _store.PutAsync(DigestOf(data), data, default);

        await using var range = await _store.OpenRangeAsync(DigestOf(data), 100, 1000, default);
        var copy = new MemoryStream();
        await range!.CopyToAsync(copy);

        copy.ToArray().Should().Equal(data[100..1100]);
        var outside = () => _store.OpenRangeAsync(DigestOf(data), 4000, 100, default).AsTask();
        await outside.Should().ThrowAsync<ArgumentOutOfRangeException>();
    }

    [Fact]
    public async Task Inline_content_gets_the_time_it_was_written()
    {
        var data = RandomNumberGenerator.GetBytes(10);
        var before = DateTimeOffset.UtcNow.AddSeconds(-1);

        await _store.PutAsync(DigestOf(data), data, default);

        _store.WrittenAt(DigestOf(data)).Should().BeOnOrAfter(before).And.BeOnOrBefore(DateTimeOffset.UtcNow.AddSeconds(1));
    }

    private long RowsInDatabase(string sql)
    {
        using var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={_layout.DatabasePath};Mode=ReadOnly;Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return (long)command.ExecuteScalar()!;
    }

    [Fact]
    public async Task Put_content_is_readable_at_once_and_reaches_the_database_with_no_other_write()
    {
        var data = RandomNumberGenerator.GetBytes(900);

        await _metadata.PutContentAsync(DigestOf(data), data, DateTimeOffset.UtcNow, default);

        _metadata.ReadContent(DigestOf(data)).Should().Equal(data);
        for (var i = 0; i < 500 && RowsInDatabase("SELECT count(*) FROM blob_content") == 0; i++) await Task.Delay(10);
        RowsInDatabase("SELECT count(*) FROM blob_content").Should().Be(1);
    }

    [Fact]
    public async Task When_the_link_is_committed_its_inline_content_is_committed_too()
    {
        var data = RandomNumberGenerator.GetBytes(900);
        RepositoryName.TryParse("inline/link", out var repo);
        Task link;
        using (_metadata.HoldWrites())
        {
            await _metadata.PutContentAsync(DigestOf(data), data, DateTimeOffset.UtcNow, default);
            link = _metadata.LinkBlobAsync(repo, DigestOf(data), data.Length, DateTimeOffset.UtcNow, default).AsTask();
        }

        await link;

        RowsInDatabase($"SELECT count(*) FROM blob_content WHERE digest = '{DigestOf(data)}'").Should().Be(1);
        RowsInDatabase($"SELECT count(*) FROM blobs WHERE digest = '{DigestOf(data)}'").Should().Be(1);
    }

    [Fact]
    public async Task The_verifier_hashes_inline_content_and_finds_it_corrupted()
    {
        var data = RandomNumberGenerator.GetBytes(600);
        await _store.PutAsync(DigestOf(data), data, default);
        await _metadata.LinkBlobAsync(RepositoryName.TryParse("v/app", out var repo) ? repo : default, DigestOf(data),
            600, DateTimeOffset.UtcNow, default);
        var verifier = new StorageVerifier(_store, _metadata);

        (await verifier.VerifyAsync(default)).Consistent.Should().BeTrue();
        using (var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={_layout.DatabasePath};Pooling=False"))
        {
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = "UPDATE blob_content SET content = zeroblob(600)";
            command.ExecuteNonQuery();
        }

        var report = await verifier.VerifyAsync(default);
        report.Problems.Should().ContainSingle().Which.Should().Contain("hashes to");
    }
}

/// <summary>The server's side: what a push keeps where, by default and with the setting off.</summary>
public sealed class InlineContentServerTests
{
    [Fact]
    public async Task A_small_image_is_kept_inline_and_served_whole_and_in_ranges()
    {
        await using var server = await RegistryServer.StartAsync();
        using var client = server.CreateClient();
        var layer = RandomNumberGenerator.GetBytes(5000);
        var big = RandomNumberGenerator.GetBytes(40_000);

        var image = await client.PushImageAsync("inline/app", "v1", layer);
        var bigDigest = await client.PushBlobAsync("inline/app", big);

        GcHelpers.Stored(server.StoragePath!, Http.Sha256(layer)).Should().BeTrue();
        File.Exists(GcHelpers.BlobFile(server.StoragePath!, Http.Sha256(layer))).Should().BeFalse();
        File.Exists(GcHelpers.BlobFile(server.StoragePath!, image.Digest)).Should().BeFalse();
        File.Exists(GcHelpers.BlobFile(server.StoragePath!, bigDigest)).Should().BeTrue();
        (await client.GetByteArrayAsync($"v2/inline/app/blobs/{Http.Sha256(layer)}")).Should().Equal(layer);
        (await client.GetByteArrayAsync($"v2/inline/app/manifests/{image.Digest}")).Should().Equal(image.Bytes);
        using var request = new HttpRequestMessage(HttpMethod.Get, $"v2/inline/app/blobs/{Http.Sha256(layer)}");
        request.Headers.Range = new RangeHeaderValue(10, 19);
        using var ranged = await client.SendAsync(request);
        ranged.StatusCode.Should().Be(HttpStatusCode.PartialContent);
        (await ranged.Content.ReadAsByteArrayAsync()).Should().Equal(layer[10..20]);
        using var head = await client.SendAsync(new HttpRequestMessage(HttpMethod.Head, $"v2/inline/app/blobs/{Http.Sha256(layer)}"));
        head.Content.Headers.ContentLength.Should().Be(5000);
    }

    [Fact]
    public async Task With_the_setting_at_0_every_blob_is_a_file()
    {
        await using var server = await RegistryServer.StartAsync(new Dictionary<string, string?>
        {
            ["Registry:Storage:InlineBytes"] = "0",
        });
        using var client = server.CreateClient();

        var image = await client.PushImageAsync("files/app", "v1", RandomNumberGenerator.GetBytes(100));

        File.Exists(GcHelpers.BlobFile(server.StoragePath!, image.Digest)).Should().BeTrue();
        GcHelpers.InlineCount(server.StoragePath!).Should().Be(0);
    }

    [Fact]
    public async Task Inline_content_survives_a_restart()
    {
        var storage = Directory.CreateTempSubdirectory("inline-restart-").FullName;
        try
        {
            var layer = RandomNumberGenerator.GetBytes(2000);
            (byte[] Bytes, string Digest) image;
            await using (var first = await RegistryServer.StartAsync(storagePath: storage))
            {
                using var client = first.CreateClient();
                image = await client.PushImageAsync("inline/restart", "v1", layer);
            }

            await using var second = await RegistryServer.StartAsync(storagePath: storage);
            using var again = second.CreateClient();
            (await again.GetByteArrayAsync("v2/inline/restart/manifests/v1")).Should().Equal(image.Bytes);
            (await again.GetByteArrayAsync($"v2/inline/restart/blobs/{Http.Sha256(layer)}")).Should().Equal(layer);
        }
        finally
        {
            Directory.Delete(storage, recursive: true);
        }
    }

    [Theory]
    [InlineData("-1")]
    [InlineData("1048577")]
    public async Task A_setting_out_of_range_is_refused_at_start(string value)
    {
        var start = () => RegistryServer.StartAsync(new Dictionary<string, string?> { ["Registry:Storage:InlineBytes"] = value });

        (await start.Should().ThrowAsync<Microsoft.Extensions.Options.OptionsValidationException>())
            .Which.Message.Should().Contain("Registry:Storage:InlineBytes");
    }
}
