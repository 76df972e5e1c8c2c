using System.Net;
using System.Security.Cryptography;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Registry.Api.Storage;
using Registry.Tests.Infrastructure;

namespace Registry.Tests.Api;

public class UploadSessionTests
{
    [Fact]
    public async Task An_upload_session_survives_a_restart_and_completes()
    {
        var data = RandomNumberGenerator.GetBytes(2_500_000);
        var storage = Directory.CreateTempSubdirectory("registry-restart-").FullName;
        using var cleanup = new TempFolder(storage);
        Uri location;
        await using (var first = await RegistryServer.StartAsync(new Dictionary<string, string?>(), storage))
        {
            using var client = first.CreateClient();
            location = await client.StartUploadAsync("restart/app");
            (await client.PatchAsync(location, Http.Chunk(data[..1_000_000], 0))).StatusCode.Should().Be(HttpStatusCode.Accepted);
            await first.StopAsync();
        }

        await using var second = await RegistryServer.StartAsync(new Dictionary<string, string?>(), storage);
        using var client2 = second.CreateClient();
        var status = await client2.GetAsync(location);
        status.StatusCode.Should().Be(HttpStatusCode.NoContent);
        status.Headers.GetValues("Range").Should().Equal("0-999999");
        (await client2.PatchAsync(location, Http.Chunk(data[1_000_000..], 1_000_000))).StatusCode.Should().Be(HttpStatusCode.Accepted);
        var put = await client2.PutAsync($"{location}?digest={Http.Sha256(data)}", null);
        put.StatusCode.Should().Be(HttpStatusCode.Created);
        (await client2.GetByteArrayAsync($"v2/restart/app/blobs/{Http.Sha256(data)}")).Should().Equal(data);
    }

    [Fact]
    public async Task A_session_used_under_another_repository_is_unknown()
    {
        await using var server = await RegistryServer.StartAsync(new Dictionary<string, string?>());
        using var client = server.CreateClient();
        var location = await client.StartUploadAsync("owner/repo");
        var id = location.ToString().Split('/')[^1];

        var response = await client.PatchAsync($"v2/other/repo/blobs/uploads/{id}", Http.Chunk([1, 2, 3], 0));

        response.StatusCode.Should().Be(HttpStatusCode.NotFound);
        (await response.ErrorCodeAsync()).Should().Be("BLOB_UPLOAD_UNKNOWN");
        (await client.GetAsync(location)).StatusCode.Should().Be(HttpStatusCode.NoContent);
    }

    [Fact]
    public async Task Beyond_the_session_cap_new_uploads_get_429()
    {
        await using var server = await RegistryServer.StartAsync(new Dictionary<string, string?>
        {
            ["Registry:Uploads:MaxSessions"] = "3",
        });
        using var client = server.CreateClient();
        for (var i = 0; i < 3; i++) await client.StartUploadAsync("cap/app");

        var response = await client.PostAsync("v2/cap/app/blobs/uploads/", null);

        response.StatusCode.Should().Be(HttpStatusCode.TooManyRequests);
        (await response.ErrorCodeAsync()).Should().Be("TOOMANYREQUESTS");
    }

    [Fact]
    public async Task Sessions_expire_and_their_bytes_are_removed()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.Parse("2026-01-01T00:00:00Z"));
        await using var server = await RegistryServer.StartAsync(new Dictionary<string, string?>
        {
            ["Registry:Uploads:Expiry"] = "01:00:00",
        }, services: s => s.AddSingleton<TimeProvider>(clock));
        using var client = server.CreateClient();
        var old = await client.StartUploadAsync("expiry/app");
        await client.PatchAsync(old, Http.Chunk([1, 2, 3], 0));
        clock.Advance(TimeSpan.FromMinutes(59));
        var fresh = await client.StartUploadAsync("expiry/app");
        clock.Advance(TimeSpan.FromMinutes(2));

        // The janitor's own timer runs on the same clock and may have expired it already; this makes sure.
        await server.Services.GetRequiredService<StorageJanitor>().ExpireAsync(default);

        (await client.GetAsync(old)).StatusCode.Should().Be(HttpStatusCode.NotFound);
        (await client.GetAsync(fresh)).StatusCode.Should().Be(HttpStatusCode.NoContent);
        Directory.EnumerateFiles(Path.Combine(server.StoragePath!, "uploads")).Should().HaveCount(1);
    }

    [Fact]
    public async Task A_single_request_upload_opens_no_session_and_leaves_no_file()
    {
        await using var server = await RegistryServer.StartAsync(new Dictionary<string, string?>
        {
            ["Registry:Uploads:MaxSessions"] = "1",
        });
        using var client = server.CreateClient();
        await client.StartUploadAsync("single/app"); // the only session allowed
        var data = RandomNumberGenerator.GetBytes(300_000);
        var digest = Http.Sha256(data);

        var response = await client.PostAsync($"v2/single/app/blobs/uploads/?digest={digest}", new ByteArrayContent(data));

        response.StatusCode.Should().Be(HttpStatusCode.Created, "a single request is not a session and is not capped as one");
        response.Headers.Location!.ToString().Should().Be($"/v2/single/app/blobs/{digest}");
        (await client.GetByteArrayAsync($"v2/single/app/blobs/{digest}")).Should().Equal(data);
        Directory.EnumerateFiles(Path.Combine(server.StoragePath!, "uploads")).Should().HaveCount(1, "only the open session's");
        Directory.EnumerateFiles(Path.Combine(server.StoragePath!, "tmp")).Should().BeEmpty();
    }

    [Fact]
    public async Task A_single_request_for_stored_content_is_still_verified()
    {
        await using var server = await RegistryServer.StartAsync(new Dictionary<string, string?>());
        using var client = server.CreateClient();
        var data = RandomNumberGenerator.GetBytes(70_000);
        var digest = await client.PushBlobAsync("dedup/one", data);

        var again = await client.PostAsync($"v2/dedup/two/blobs/uploads/?digest={digest}", new ByteArrayContent(data));
        again.StatusCode.Should().Be(HttpStatusCode.Created);
        (await client.GetByteArrayAsync($"v2/dedup/two/blobs/{digest}")).Should().Equal(data);

        var other = RandomNumberGenerator.GetBytes(70_000);
        var lie = await client.PostAsync($"v2/dedup/three/blobs/uploads/?digest={digest}", new ByteArrayContent(other));
        lie.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        (await lie.ErrorCodeAsync()).Should().Be("DIGEST_INVALID");
        (await client.SendAsync(new HttpRequestMessage(HttpMethod.Head, $"v2/dedup/three/blobs/{digest}")))
            .StatusCode.Should().Be(HttpStatusCode.NotFound, "the wrong bytes must not link the blob");
        (await client.GetByteArrayAsync($"v2/dedup/one/blobs/{digest}")).Should().Equal(data);
        Directory.EnumerateFiles(Path.Combine(server.StoragePath!, "tmp")).Should().BeEmpty();
    }

    [Fact]
    public async Task A_wrong_digest_discards_the_upload_and_stores_nothing()
    {
        await using var server = await RegistryServer.StartAsync(new Dictionary<string, string?>());
        using var client = server.CreateClient();
        var data = RandomNumberGenerator.GetBytes(5000);
        var location = await client.StartUploadAsync("mismatch/app");
        await client.PatchAsync(location, Http.Chunk(data, 0));
        var wrong = Http.Sha256([1]);

        var response = await client.PutAsync($"{location}?digest={wrong}", null);

        response.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        (await response.ErrorCodeAsync()).Should().Be("DIGEST_INVALID");
        (await client.GetAsync(location)).StatusCode.Should().Be(HttpStatusCode.NotFound);
        Directory.EnumerateFiles(Path.Combine(server.StoragePath!, "uploads")).Should().BeEmpty();
        Directory.EnumerateFiles(Path.Combine(server.StoragePath!, "blobs"), "*", SearchOption.AllDirectories).Should().BeEmpty();
        Registry.Tests.Gc.Gc.InlineCount(server.StoragePath!).Should().Be(0, "5000 bytes would have been kept inline");
    }

    [Fact]
    public async Task A_streamed_patch_in_chunked_transfer_encoding_is_appended()
    {
        await using var server = await RegistryServer.StartAsync(new Dictionary<string, string?>());
        using var client = server.CreateClient();
        var data = RandomNumberGenerator.GetBytes(3_000_000);
        var location = await client.StartUploadAsync("chunked/app");
        var content = new StreamContent(new NonSeekableStream(data));
        content.Headers.ContentLength = null;

        var patch = await client.PatchAsync(location, content);
        var put = await client.PutAsync($"{patch.Headers.Location}?digest={Http.Sha256(data)}", null);

        patch.StatusCode.Should().Be(HttpStatusCode.Accepted);
        patch.Headers.GetValues("Range").Should().Equal("0-2999999");
        put.StatusCode.Should().Be(HttpStatusCode.Created);
        (await client.GetByteArrayAsync($"v2/chunked/app/blobs/{Http.Sha256(data)}")).Should().Equal(data);
    }

    private sealed class TempFolder(string path) : IDisposable
    {
        public void Dispose() => Directory.Delete(path, recursive: true);
    }

    /// <summary>A stream whose length is unknown, so HttpClient sends Transfer-Encoding: chunked.</summary>
    private sealed class NonSeekableStream(byte[] data) : MemoryStream(data)
    {
        public override bool CanSeek => false;
    }
}
