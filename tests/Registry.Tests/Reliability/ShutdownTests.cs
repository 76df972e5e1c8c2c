using System.Net;
using System.Security.Cryptography;
using Registry.CrashHarness;
using Registry.Tests.Conformance;
using Xunit.Abstractions;

namespace Registry.Tests.Reliability;

/// <summary>
/// SIGTERM, as a container runtime or systemd sends it, to the real server as a child process: it stops accepting,
/// lets requests in flight finish within <c>Registry:ShutdownTimeout</c>, exits 0, and an upload it had to cut off
/// resumes on the restarted server from the <c>Range</c> it reports, with nothing acknowledged lost.
/// </summary>
public class ShutdownTests(ITestOutputHelper output)
{
    private const int ChunkSize = 16 * 1024 * 1024;
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);

    private static string ServerPath
    {
        get
        {
            var path = Path.Combine(AppContext.BaseDirectory, "Registry.Api.dll");
            File.Exists(path).Should().BeTrue($"the server assembly should be next to the tests at {path}");
            return path;
        }
    }

    [Fact]
    public async Task SIGTERM_during_a_256_MiB_chunked_upload_exits_0_and_the_upload_resumes_after_restart()
    {
        var storage = Directory.CreateTempSubdirectory("registry-shutdown-").FullName;
        try
        {
            var blob = new byte[256 * 1024 * 1024];
            new Random(256).NextBytes(blob);
            var digest = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(blob));
            const string repo = "shutdown/resume";

            long acknowledged;
            Uri location;
            using (var server = await ServerProcess.StartAsync(ServerPath, storage, StartTimeout,
                       ["--Registry:ShutdownTimeout=00:00:02"]))
            using (var client = Client(server))
            {
                location = await client.StartUploadAsync(repo);
                acknowledged = 0;
                for (var i = 0; i < 4; i++)
                {
                    var patch = await client.PatchAsync(location, Oci.Chunk(blob[(int)acknowledged..((int)acknowledged + ChunkSize)], acknowledged));
                    patch.StatusCode.Should().Be(HttpStatusCode.Accepted);
                    acknowledged = RangeEnd(patch) + 1;
                    location = patch.Headers.Location ?? location;
                }

                // The fifth chunk trickles in far slower than the 2 s deadline allows; SIGTERM arrives while it is sent.
                var slow = new PacedContent(blob.AsMemory((int)acknowledged, ChunkSize), piece: 256 * 1024,
                    pause: TimeSpan.FromMilliseconds(100));
                slow.Headers.ContentType = new("application/octet-stream");
                slow.Headers.TryAddWithoutValidation("Content-Range", $"{acknowledged}-{acknowledged + ChunkSize - 1}");
                var cutOff = client.PatchAsync(location, slow);
                await slow.HalfwayThere(TimeSpan.FromSeconds(30));
                server.Terminate();

                (await server.WaitForExitAsync(TimeSpan.FromSeconds(60))).Should().BeTrue("the server should exit within its shutdown timeout");
                server.ExitCode.Should().Be(0, string.Join(Environment.NewLine, server.Log));
                var outcome = await Record.ExceptionAsync(() => cutOff);
                output.WriteLine($"the cut-off chunk: {outcome?.GetType().Name ?? "answered"}");
                server.Failures.Should().BeEmpty();
            }

            using (var server = await ServerProcess.StartAsync(ServerPath, storage, StartTimeout))
            using (var client = Client(server))
            {
                var status = await client.GetAsync(location);
                status.StatusCode.Should().Be(HttpStatusCode.NoContent);
                var resumeAt = RangeEnd(status) + 1;
                resumeAt.Should().BeGreaterThanOrEqualTo(acknowledged, "every acknowledged chunk must survive the shutdown");
                location = status.Headers.Location ?? location;

                for (var offset = resumeAt; offset < blob.Length; offset += ChunkSize)
                {
                    var end = (int)Math.Min(offset + ChunkSize, blob.Length);
                    var patch = await client.PatchAsync(location, Oci.Chunk(blob[(int)offset..end], offset));
                    patch.StatusCode.Should().Be(HttpStatusCode.Accepted, await patch.Content.ReadAsStringAsync());
                    location = patch.Headers.Location ?? location;
                }
                var put = await client.PutAsync(location.WithQuery($"digest={digest}"), null);
                put.StatusCode.Should().Be(HttpStatusCode.Created, await put.Content.ReadAsStringAsync());

                using var get = await client.GetAsync($"v2/{repo}/blobs/{digest}", HttpCompletionOption.ResponseHeadersRead);
                get.StatusCode.Should().Be(HttpStatusCode.OK);
                await using var body = await get.Content.ReadAsStreamAsync();
                ("sha256:" + Convert.ToHexStringLower(await SHA256.HashDataAsync(body))).Should().Be(digest);
            }
        }
        finally
        {
            Directory.Delete(storage, recursive: true);
        }
    }

    [Fact]
    public async Task SIGTERM_lets_a_chunk_in_flight_finish_acknowledges_it_then_exits_0()
    {
        var storage = Directory.CreateTempSubdirectory("registry-shutdown-").FullName;
        try
        {
            using var server = await ServerProcess.StartAsync(ServerPath, storage, StartTimeout);
            using var client = Client(server);
            var chunk = RandomNumberGenerator.GetBytes(4 * 1024 * 1024);
            var location = await client.StartUploadAsync("shutdown/drain");

            // About 1.6 s on the wire, well within the default 30 s.
            var slow = new PacedContent(chunk, piece: 128 * 1024, pause: TimeSpan.FromMilliseconds(50));
            slow.Headers.ContentType = new("application/octet-stream");
            slow.Headers.TryAddWithoutValidation("Content-Range", $"0-{chunk.Length - 1}");
            var inFlight = client.PatchAsync(location, slow);
            await slow.HalfwayThere(TimeSpan.FromSeconds(30));
            server.Terminate();

            var patch = await inFlight;
            patch.StatusCode.Should().Be(HttpStatusCode.Accepted);
            RangeEnd(patch).Should().Be(chunk.Length - 1);
            (await server.WaitForExitAsync(TimeSpan.FromSeconds(60))).Should().BeTrue();
            server.ExitCode.Should().Be(0, string.Join(Environment.NewLine, server.Log));
            server.Failures.Should().BeEmpty();
        }
        finally
        {
            Directory.Delete(storage, recursive: true);
        }
    }

    private static HttpClient Client(ServerProcess server) =>
        new(new SocketsHttpHandler { AllowAutoRedirect = false, UseProxy = false })
        {
            BaseAddress = server.BaseAddress,
            Timeout = TimeSpan.FromMinutes(5),
        };

    /// <summary>The last offset of <c>Range: 0-&lt;end&gt;</c>.</summary>
    private static long RangeEnd(HttpResponseMessage response)
    {
        response.Headers.TryGetValues("Range", out var values).Should().BeTrue("the response should carry Range");
        var range = values!.Single();
        range.Should().StartWith("0-");
        return long.Parse(range[2..], System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>A body sent piece by piece with a pause after each; tells when half of it is on the wire.</summary>
    private sealed class PacedContent(ReadOnlyMemory<byte> data, int piece, TimeSpan pause) : HttpContent
    {
        private readonly TaskCompletionSource _halfway = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public async Task HalfwayThere(TimeSpan timeout) => await _halfway.Task.WaitAsync(timeout);

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        {
            for (var offset = 0; offset < data.Length; offset += piece)
            {
                await stream.WriteAsync(data.Slice(offset, Math.Min(piece, data.Length - offset)));
                await stream.FlushAsync();
                if (offset + piece >= data.Length / 2) _halfway.TrySetResult();
                await Task.Delay(pause);
            }
        }

        protected override bool TryComputeLength(out long length)
        {
            length = data.Length;
            return true;
        }
    }
}
