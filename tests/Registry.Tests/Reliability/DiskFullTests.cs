using System.Diagnostics;
using System.Net;
using System.Text.Json;
using Registry.CrashHarness;
using Registry.Tests.Infrastructure;

namespace Registry.Tests.Reliability;

/// <summary>
/// A full disk (issue #5): the registry's whole storage, SQLite database included, on an 8 MiB tmpfs. A push that does
/// not fit answers 507 INSUFFICIENT_STORAGE promptly, keeps nothing of itself, breaks nothing that was there before,
/// and pushes work again once space is freed. Mounting needs root: CI runs as root, and without it these tests fail
/// (they never skip).
/// </summary>
public sealed class DiskFullTests : IAsyncLifetime
{
    private const int MiB = 1 << 20;
    /// <summary>A push that does not fit must be answered within this (not hang).</summary>
    private static readonly TimeSpan Prompt = TimeSpan.FromSeconds(10);

    private readonly string _mount = Directory.CreateTempSubdirectory("registry-diskfull-").FullName;
    private bool _mounted;
    private RegistryServer? _server;
    private HttpClient? _client;

    private string Filler => Path.Combine(_mount, "filler.bin");
    private HttpClient Client => _client!;

    public async Task InitializeAsync()
    {
        var (code, text) = await RunAsync("mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", _mount);
        if (code != 0)
            throw new InvalidOperationException(
                $"the disk-full tests need a tmpfs mounted at {_mount}, which failed (`mount` exit {code}: {text.Trim()}). " +
                $"They must run as root (running as '{Environment.UserName}') with CAP_SYS_ADMIN, as CI does.");
        _mounted = true;
    }

    public async Task DisposeAsync()
    {
        _client?.Dispose();
        if (_server is not null) await _server.DisposeAsync();
        if (_mounted)
        {
            var (code, _) = await RunAsync("umount", _mount);
            if (code != 0) await RunAsync("umount", "-l", _mount);
        }
        try { Directory.Delete(_mount, recursive: true); } catch (IOException) { }
    }

    private async Task StartAsync()
    {
        _server = await RegistryServer.StartAsync(storagePath: _mount);
        _client = _server.CreateClient();
    }

    [Fact]
    public async Task A_monolithic_push_that_does_not_fit_answers_507_keeps_nothing_and_works_once_space_is_freed()
    {
        WriteFiller(3 * MiB);
        await StartAsync();
        var repo = "full/mono";
        var small = Data(1 * MiB, 1);
        var big = Data(5 * MiB, 2);
        await Client.PushBlobAsync(repo, small);

        var response = await TimedAsync(() =>
            Client.PostAsync($"v2/{repo}/blobs/uploads/?digest={Http.Sha256(big)}", new ByteArrayContent(big)));

        await ShouldBeStorageFullAsync(response);
        NoPartialFiles(big);
        (await Client.GetByteArrayAsync($"v2/{repo}/blobs/{Http.Sha256(small)}")).Should().Equal(small);

        File.Delete(Filler);
        await Client.PushBlobAsync(repo, big);
        (await Client.GetByteArrayAsync($"v2/{repo}/blobs/{Http.Sha256(big)}")).Should().Equal(big);
        await VerifyConsistentAsync();
    }

    [Fact]
    public async Task A_post_put_push_that_does_not_fit_answers_507_and_keeps_nothing()
    {
        WriteFiller(3 * MiB);
        await StartAsync();
        var repo = "full/postput";
        var small = Data(1 * MiB, 3);
        var big = Data(5 * MiB, 4);
        await Client.PushBlobAsync(repo, small);
        var location = await Client.StartUploadAsync(repo);

        var response = await TimedAsync(() =>
            Client.PutAsync($"{location}?digest={Http.Sha256(big)}", new ByteArrayContent(big)));

        await ShouldBeStorageFullAsync(response);
        // The session may stay open (empty) or be gone; either way none of the bytes are kept.
        foreach (var file in Directory.EnumerateFiles(Path.Combine(_mount, "uploads")))
            new FileInfo(file).Length.Should().Be(0, "nothing of a failed append is kept");
        NoPartialFiles(big, uploadsMayHoldEmptySessions: true);
        (await Client.GetByteArrayAsync($"v2/{repo}/blobs/{Http.Sha256(small)}")).Should().Equal(small);

        File.Delete(Filler);
        await Client.PushBlobAsync(repo, big);
        await VerifyConsistentAsync();
    }

    [Fact]
    public async Task A_chunk_that_does_not_fit_answers_507_keeps_the_session_at_its_last_chunk_and_the_upload_resumes()
    {
        WriteFiller(3 * MiB);
        await StartAsync();
        var repo = "full/chunked";
        var before = Data(512 * 1024, 5);
        await Client.PushBlobAsync(repo, before);
        var big = Data(5 * MiB, 6);
        var location = await Client.StartUploadAsync(repo);
        var first = await Client.PatchAsync(location, Http.Chunk(big[..MiB], 0));
        first.StatusCode.Should().Be(HttpStatusCode.Accepted);

        var response = await TimedAsync(() => Client.PatchAsync(location, Http.Chunk(big[MiB..], MiB)));

        await ShouldBeStorageFullAsync(response);
        var sessionFile = Directory.EnumerateFiles(Path.Combine(_mount, "uploads")).Should().ContainSingle().Subject;
        new FileInfo(sessionFile).Length.Should().Be(MiB, "the failed chunk is dropped whole; the first one stays");
        NoPartialFiles(big, uploadsMayHoldEmptySessions: true, sessionBytes: MiB);
        var status = await Client.GetAsync(location);
        status.StatusCode.Should().Be(HttpStatusCode.NoContent);
        status.Headers.GetValues("Range").Single().Should().Be($"0-{MiB - 1}");
        (await Client.GetByteArrayAsync($"v2/{repo}/blobs/{Http.Sha256(before)}")).Should().Equal(before);

        File.Delete(Filler);
        (await Client.PatchAsync(location, Http.Chunk(big[MiB..], MiB))).StatusCode.Should().Be(HttpStatusCode.Accepted);
        var put = await Client.PutAsync($"{location}?digest={Http.Sha256(big)}", null);
        put.StatusCode.Should().Be(HttpStatusCode.Created, await put.Content.ReadAsStringAsync());
        (await Client.GetByteArrayAsync($"v2/{repo}/blobs/{Http.Sha256(big)}")).Should().Equal(big);
        Directory.EnumerateFiles(Path.Combine(_mount, "uploads")).Should().BeEmpty();
        await VerifyConsistentAsync();
    }

    [Fact]
    public async Task A_streamed_patch_without_length_that_does_not_fit_answers_507_and_keeps_nothing()
    {
        WriteFiller(3 * MiB);
        await StartAsync();
        var repo = "full/streamed";
        var big = Data(5 * MiB, 10);
        var location = await Client.StartUploadAsync(repo);
        // Chunked transfer encoding, no Content-Length or Content-Range: what docker and buildah send.
        var body = new StreamContent(new UnseekableStream(big));
        body.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/octet-stream");

        var response = await TimedAsync(() => Client.PatchAsync(location, body));

        await ShouldBeStorageFullAsync(response);
        foreach (var file in Directory.EnumerateFiles(Path.Combine(_mount, "uploads")))
            new FileInfo(file).Length.Should().Be(0, "nothing of a failed append is kept");
        NoPartialFiles(big, uploadsMayHoldEmptySessions: true);

        File.Delete(Filler);
        var retry = await Client.PatchAsync(location, Http.Chunk(big, 0));
        retry.StatusCode.Should().Be(HttpStatusCode.Accepted, await retry.Content.ReadAsStringAsync());
        (await Client.PutAsync($"{location}?digest={Http.Sha256(big)}", null)).StatusCode.Should().Be(HttpStatusCode.Created);
        await VerifyConsistentAsync();
    }

    /// <summary>Hides the length, so that HttpClient sends the body with chunked transfer encoding.</summary>
    private sealed class UnseekableStream(byte[] data) : MemoryStream(data)
    {
        public override bool CanSeek => false;
    }

    [Fact]
    public async Task A_manifest_push_on_a_full_disk_answers_507_and_leaves_no_temp_file()
    {
        await StartAsync();
        var repo = "full/manifest";
        var config = "{\"architecture\":\"amd64\",\"os\":\"linux\"}"u8.ToArray();
        var layer = Data(100_000, 7);
        await Client.PushBlobAsync(repo, config);
        await Client.PushBlobAsync(repo, layer);
        var manifest = System.Text.Encoding.UTF8.GetBytes($$"""
            {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
             "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{{Http.Sha256(config)}}","size":{{config.Length}} },
             "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{{Http.Sha256(layer)}}","size":{{layer.Length}} }]}
            """);
        FillDisk();

        var response = await TimedAsync(() => Client.PutManifestAsync(repo, "v1", manifest));

        await ShouldBeStorageFullAsync(response);
        Directory.EnumerateFiles(Path.Combine(_mount, "tmp")).Should().BeEmpty("a manifest that could not be written leaves nothing");
        (await Client.GetAsync($"v2/{repo}/manifests/v1")).StatusCode.Should().Be(HttpStatusCode.NotFound);
        (await Client.GetByteArrayAsync($"v2/{repo}/blobs/{Http.Sha256(layer)}")).Should().Equal(layer);

        File.Delete(Filler);
        (await Client.PutManifestAsync(repo, "v1", manifest)).StatusCode.Should().Be(HttpStatusCode.Created);
        (await Client.GetByteArrayAsync($"v2/{repo}/manifests/v1")).Should().Equal(manifest);
        await VerifyConsistentAsync();
    }

    [Fact]
    public async Task Starting_an_upload_on_a_completely_full_disk_answers_507_and_leaves_no_session_file()
    {
        await StartAsync();
        var repo = "full/metadata";
        var small = Data(64 * 1024, 8);
        await Client.PushBlobAsync(repo, small);
        FillDisk();

        // Opening a session writes an empty file and a metadata row: the row is what a full disk refuses
        // (SQLite: "database or disk is full").
        var start = await TimedAsync(() => Client.PostAsync($"v2/{repo}/blobs/uploads/", null));
        await ShouldBeStorageFullAsync(start);
        var other = Data(64 * 1024, 9);
        var monolithic = await TimedAsync(() =>
            Client.PostAsync($"v2/{repo}/blobs/uploads/?digest={Http.Sha256(other)}", new ByteArrayContent(other)));
        await ShouldBeStorageFullAsync(monolithic);
        Directory.EnumerateFiles(Path.Combine(_mount, "uploads")).Should()
            .BeEmpty("a session that could not be recorded must not leave its file behind");
        NoPartialFiles(other);
        (await Client.GetByteArrayAsync($"v2/{repo}/blobs/{Http.Sha256(small)}")).Should().Equal(small);

        File.Delete(Filler);
        await Client.PushBlobAsync(repo, other);
        await VerifyConsistentAsync();
    }

    [Fact]
    public async Task A_small_push_kept_inline_on_a_full_disk_answers_507_and_records_nothing()
    {
        await StartAsync();
        var repo = "full/inline";
        var kept = Data(64 * 1024, 10);
        await Client.PushBlobAsync(repo, kept);
        FillDisk();
        var small = Data(2000, 11);

        var response = await TimedAsync(() =>
            Client.PostAsync($"v2/{repo}/blobs/uploads/?digest={Http.Sha256(small)}", new ByteArrayContent(small)));

        await ShouldBeStorageFullAsync(response);
        (await Client.SendAsync(new HttpRequestMessage(HttpMethod.Head, $"v2/{repo}/blobs/{Http.Sha256(small)}")))
            .StatusCode.Should().Be(System.Net.HttpStatusCode.NotFound);
        Registry.Tests.Gc.Gc.InlineCount(_mount).Should().Be(0);
        NoPartialFiles(small);

        File.Delete(Filler);
        await Client.PushBlobAsync(repo, small);
        (await Client.GetByteArrayAsync($"v2/{repo}/blobs/{Http.Sha256(small)}")).Should().Equal(small);
        await VerifyConsistentAsync();
    }

    // --- helpers ---

    private static byte[] Data(int length, int seed)
    {
        var data = new byte[length];
        new Random(seed).NextBytes(data);
        return data;
    }

    private void WriteFiller(int length)
    {
        using var file = File.Create(Filler);
        file.Write(Data(length, 99));
        file.Flush(flushToDisk: true);
    }

    /// <summary>Grows the filler until the file system refuses another byte.</summary>
    private void FillDisk()
    {
        using var file = new FileStream(Filler, FileMode.Append, FileAccess.Write, FileShare.None, 1, FileOptions.None);
        var block = new byte[4096];
        try
        {
            while (true) file.Write(block);
        }
        catch (IOException)
        {
            // ENOSPC: full.
        }
        new DriveInfo(_mount).AvailableFreeSpace.Should().BeLessThan(4096, "the tmpfs should be full");
    }

    private static async Task<HttpResponseMessage> TimedAsync(Func<Task<HttpResponseMessage>> request)
    {
        var clock = Stopwatch.StartNew();
        var call = request();
        var finished = await Task.WhenAny(call, Task.Delay(Prompt));
        finished.Should().Be(call, $"a push that does not fit must be answered within {Prompt.TotalSeconds:0} s, not hang");
        var response = await call;
        clock.Elapsed.Should().BeLessThan(Prompt);
        return response;
    }

    private static async Task ShouldBeStorageFullAsync(HttpResponseMessage response)
    {
        var body = await response.Content.ReadAsStringAsync();
        ((int)response.StatusCode).Should().Be(507, $"a full disk is 507 INSUFFICIENT_STORAGE; got {(int)response.StatusCode} {body}");
        response.Content.Headers.ContentType?.MediaType.Should().Be("application/json");
        using var document = JsonDocument.Parse(body);
        document.RootElement.GetProperty("errors")[0].GetProperty("code").GetString().Should().Be("INSUFFICIENT_STORAGE");
    }

    /// <summary>Nothing of <paramref name="data"/> under blobs/ and tmp/; under uploads/ only what a session acknowledged.</summary>
    private void NoPartialFiles(byte[] data, bool uploadsMayHoldEmptySessions = false, long sessionBytes = 0)
    {
        var hex = Http.Sha256(data)["sha256:".Length..];
        Directory.EnumerateFiles(Path.Combine(_mount, "blobs"), "*", SearchOption.AllDirectories)
            .Should().NotContain(f => Path.GetFileName(f) == hex, "a blob that did not fit must not be published");
        Directory.EnumerateFiles(Path.Combine(_mount, "tmp")).Should().BeEmpty();
        foreach (var file in Directory.EnumerateFiles(Path.Combine(_mount, "uploads")))
        {
            uploadsMayHoldEmptySessions.Should().BeTrue($"no upload file should remain after a failed single-request push: {file}");
            new FileInfo(file).Length.Should().BeOneOf(0, sessionBytes);
        }
        // Every published blob is whole: its content hashes to its name.
        foreach (var file in Directory.EnumerateFiles(Path.Combine(_mount, "blobs"), "*", SearchOption.AllDirectories)
                     .Where(f => f.Contains($"{Path.DirectorySeparatorChar}sha256{Path.DirectorySeparatorChar}")))
            Http.Sha256(File.ReadAllBytes(file)).Should().Be("sha256:" + Path.GetFileName(file));
    }

    private async Task VerifyConsistentAsync()
    {
        await _server!.StopAsync();
        var verify = await ServerProcess.VerifyAsync(Path.Combine(AppContext.BaseDirectory, "Registry.Api.dll"), _mount,
            TimeSpan.FromMinutes(1));
        verify.ExitCode.Should().Be(0, verify.Output);
        verify.Summary.Should().Contain(" 0 problems");
    }

    private static async Task<(int Code, string Output)> RunAsync(string file, params string[] arguments)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in arguments) info.ArgumentList.Add(argument);
        try
        {
            using var process = Process.Start(info)!;
            var output = process.StandardOutput.ReadToEndAsync();
            var error = process.StandardError.ReadToEndAsync();
            await process.WaitForExitAsync();
            return (process.ExitCode, await output + await error);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return (-1, e.Message);
        }
    }
}
