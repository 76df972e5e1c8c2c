using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Registry.Tests.Infrastructure;

namespace Registry.Tests.Api;

/// <summary>
/// Blob GETs on plain HTTP/1.1 are sent by the kernel (sendfile) while Kestrel keeps the connection: the bytes on the
/// wire, keep-alive and pipelining, connections closed after one response, HEAD and Range, clients that vanish
/// mid-body, and TLS, which takes the copy path.
/// Each test has a server of its own, so the sendfile counter it reads is its own.
/// </summary>
public class SendFileTests
{
    private const string SentFromFile = "registry_http_sent_sendfile_bytes_total";

    [Fact]
    public async Task Whole_and_ranged_blob_gets_are_sent_from_the_file_by_the_kernel()
    {
        await using var server = await RegistryServer.StartAsync();
        using var client = server.CreateClient();
        var (path, data) = await PushAsync(client, 5_000_000);
        var range = new HttpRequestMessage(HttpMethod.Get, path);
        range.Headers.Range = new System.Net.Http.Headers.RangeHeaderValue(1_000, 1_999_999);

        (await client.GetByteArrayAsync(path)).Should().Equal(data);
        var partial = await client.SendAsync(range);
        (await client.SendAsync(new HttpRequestMessage(HttpMethod.Head, path))).StatusCode.Should().Be(HttpStatusCode.OK);

        partial.StatusCode.Should().Be(HttpStatusCode.PartialContent);
        (await partial.Content.ReadAsByteArrayAsync()).Should().Equal(data[1_000..2_000_000]);
        var text = await Metrics.ScrapeAsync(client);
        Metrics.Sum(text, SentFromFile).Should().Be(5_000_000 + 1_999_000, "HEAD sends no body");
        Metrics.Sum(text, "registry_http_sent_bytes_total", ("operation", "blob_get")).Should().Be(6_999_000);
    }

    [Fact]
    public async Task One_connection_carries_pipelined_blob_range_head_and_ordinary_responses_byte_for_byte()
    {
        await using var server = await RegistryServer.StartAsync();
        using var client = server.CreateClient();
        var (path, data) = await PushAsync(client, 300_000);
        string Get(string target, string extra = "") => Request(server, "GET", target, extra: extra);

        using var socket = await ConnectAsync(server);
        await using var stream = new NetworkStream(socket);
        // All five requests in one write: Kestrel answers them in order on the one connection.
        var requests = Get(path) + Get(path, "Range: bytes=7-70006\r\n") + Request(server, "HEAD", path)
            + Get("v2/") + Get(path);
        await stream.WriteAsync(Encoding.ASCII.GetBytes(requests));
        var reader = new RawResponses(stream);

        var whole = await reader.NextAsync();
        var ranged = await reader.NextAsync();
        var head = await reader.NextAsync(head: true);
        var root = await reader.NextAsync();
        var again = await reader.NextAsync();

        whole.Status.Should().Be(200);
        whole.Body.Should().Equal(data);
        ranged.Status.Should().Be(206);
        ranged.Headers.Should().Contain("Content-Range: bytes 7-70006/300000");
        ranged.Body.Should().Equal(data[7..70_007]);
        head.Status.Should().Be(200);
        head.Headers.Should().Contain("Content-Length: 300000");
        head.Body.Should().BeEmpty();
        root.Status.Should().Be(200);
        again.Body.Should().Equal(data);
        Metrics.Sum(await Metrics.ScrapeAsync(client), SentFromFile).Should().Be(300_000 * 2 + 70_000);
    }

    [Theory]
    [InlineData("HTTP/1.1", "Connection: close\r\n")]
    [InlineData("HTTP/1.0", "")]
    public async Task A_connection_closed_after_one_response_delivers_the_whole_blob_first(string version, string extra)
    {
        await using var server = await RegistryServer.StartAsync();
        using var client = server.CreateClient();
        var (path, data) = await PushAsync(client, 3_000_000);

        using var socket = await ConnectAsync(server);
        await using var stream = new NetworkStream(socket);
        await stream.WriteAsync(Encoding.ASCII.GetBytes(Request(server, "GET", path, version, extra)));
        var response = await new RawResponses(stream).NextAsync();
        var after = await stream.ReadAsync(new byte[1]);

        response.Status.Should().Be(200);
        response.Body.Should().Equal(data);
        after.Should().Be(0, "the server closes the connection once the body is out");
        Metrics.Sum(await Metrics.ScrapeAsync(client), SentFromFile).Should().Be(3_000_000);
    }

    [Fact]
    public async Task Clients_that_vanish_mid_blob_leave_no_open_file_and_the_server_serving()
    {
        await using var server = await RegistryServer.StartAsync();
        using var client = server.CreateClient();
        var (path, data) = await PushAsync(client, 64 * 1024 * 1024);
        var blobFile = BlobFile(server, data);

        // Ten clients read the headers and a little of the body, then reset the connection.
        await Task.WhenAll(Enumerable.Range(0, 10).Select(async _ =>
        {
            using var socket = await ConnectAsync(server);
            await using var stream = new NetworkStream(socket);
            await stream.WriteAsync(Encoding.ASCII.GetBytes(Request(server, "GET", path)));
            var some = new byte[256 * 1024];
            await stream.ReadAtLeastAsync(some, some.Length);
            socket.LingerState = new LingerOption(true, 0);
        }));

        await Extensions.EventsTests.Eventually(() => OpenHandlesTo(blobFile) == 0, "the aborted responses to close the blob file");
        (await client.GetByteArrayAsync(path)).Should().Equal(data);
        await Extensions.EventsTests.Eventually(() => OpenHandlesTo(blobFile) == 0, "the last response to close it");
    }

    [Fact]
    public async Task A_client_that_stops_reading_mid_blob_is_dropped_at_the_minimum_response_data_rate()
    {
        await using var server = await RegistryServer.StartAsync(services: services =>
            services.Configure<KestrelServerOptions>(kestrel =>
                kestrel.Limits.MinResponseDataRate = new MinDataRate(500_000, TimeSpan.FromSeconds(2))));
        using var client = server.CreateClient();
        var (path, data) = await PushAsync(client, 64 * 1024 * 1024);
        var blobFile = BlobFile(server, data);
        using var socket = await ConnectAsync(server, receiveBuffer: 4096);
        await using var stream = new NetworkStream(socket);

        await stream.WriteAsync(Encoding.ASCII.GetBytes(Request(server, "GET", path)));
        await Extensions.EventsTests.Eventually(() => OpenHandlesTo(blobFile) == 1, "the response to open the blob");
        await Extensions.EventsTests.Eventually(() => OpenHandlesTo(blobFile) == 0, "the server to give up on the client");

        long received = 0;
        var buffer = new byte[1024 * 1024];
        try
        {
            for (int read; (read = await stream.ReadAsync(buffer)) > 0;) received += read;
        }
        catch (IOException)
        {
            // reset by the server: just as much a drop
        }
        received.Should().BeLessThan(data.Length);
    }

    [Fact]
    public async Task Over_tls_blob_gets_are_copied_through_the_tls_stream()
    {
        using var authority = await TestCertificateAuthority.CreateAsync();
        await using var server = await RegistryServer.StartAsync(tls: authority);
        using var client = server.CreateClient();
        var (path, data) = await PushAsync(client, 3_000_000);

        (await client.GetByteArrayAsync(path)).Should().Equal(data);

        var text = await Metrics.ScrapeAsync(client);
        Metrics.Sum(text, SentFromFile).Should().Be(0);
        Metrics.Sum(text, "registry_http_sent_bytes_total", ("operation", "blob_get")).Should().Be(3_000_000);
    }

    private static async Task<(string Path, byte[] Data)> PushAsync(HttpClient client, int size)
    {
        var repo = RegistryFixture.NewRepo("sendfile");
        var data = RandomNumberGenerator.GetBytes(size);
        return ($"v2/{repo}/blobs/{await client.PushBlobAsync(repo, data)}", data);
    }

    /// <summary>A raw connection to the server; <paramref name="receiveBuffer"/> set before connecting, when given.</summary>
    private static async Task<Socket> ConnectAsync(RegistryServer server, int? receiveBuffer = null)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        if (receiveBuffer is { } size) socket.ReceiveBufferSize = size;
        await socket.ConnectAsync(IPAddress.Loopback, server.BaseAddress.Port);
        return socket;
    }

    /// <summary>One request's head, as a client writes it on a raw connection.</summary>
    private static string Request(RegistryServer server, string method, string target, string version = "HTTP/1.1",
        string extra = "") =>
        $"{method} /{target} {version}\r\nHost: {server.BaseAddress.Authority}\r\n{extra}\r\n";

    /// <summary>The blob's file in the server's storage.</summary>
    private static string BlobFile(RegistryServer server, byte[] data) =>
        Directory.GetFiles(server.StoragePath!, Http.Sha256(data)[7..], SearchOption.AllDirectories)
            .Should().ContainSingle().Subject;

    /// <summary>Open descriptors of this process (the server runs in it) on <paramref name="file"/>.</summary>
    private static int OpenHandlesTo(string file) =>
        new DirectoryInfo("/proc/self/fd").GetFiles().Count(fd =>
        {
            try
            {
                return fd.LinkTarget == file;
            }
            catch (IOException)
            {
                return false; // closed while listed
            }
        });

    private sealed record RawResponse(int Status, string[] Headers, byte[] Body);

    /// <summary>HTTP/1.1 responses read one after another off a connection, bodies by Content-Length.</summary>
    private sealed class RawResponses(Stream stream)
    {
        private readonly List<byte> _buffered = [];

        public async Task<RawResponse> NextAsync(bool head = false)
        {
            int end;
            while ((end = IndexOfHeaderEnd()) < 0) await FillAsync();
            var lines = Encoding.ASCII.GetString(_buffered.GetRange(0, end).ToArray()).Split("\r\n");
            _buffered.RemoveRange(0, end + 4);
            var length = lines.Skip(1).Where(l => l.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase))
                .Select(l => int.Parse(l[15..].Trim())).SingleOrDefault();
            var body = head ? []
                : lines.Contains("Transfer-Encoding: chunked") ? await ChunkedAsync()
                : await TakeAsync(length);
            var status = lines[0].Split(' ');
            if (status.Length < 2) throw new InvalidDataException($"not a status line: '{lines[0]}'");
            return new RawResponse(int.Parse(status[1]), lines[1..], body);
        }

        private async Task<byte[]> TakeAsync(int count)
        {
            while (_buffered.Count < count) await FillAsync();
            var bytes = _buffered.GetRange(0, count).ToArray();
            _buffered.RemoveRange(0, count);
            return bytes;
        }

        private async Task<byte[]> ChunkedAsync()
        {
            var body = new List<byte>();
            while (true)
            {
                int end;
                while ((end = IndexOf("\r\n"u8)) < 0) await FillAsync();
                var size = Convert.ToInt32(Encoding.ASCII.GetString((await TakeAsync(end + 2))[..end]), 16);
                body.AddRange(await TakeAsync(size));
                (await TakeAsync(2)).Should().Equal("\r\n"u8.ToArray());
                if (size == 0) return [.. body];
            }
        }

        private int IndexOfHeaderEnd() => IndexOf("\r\n\r\n"u8);

        private int IndexOf(ReadOnlySpan<byte> marker) =>
            System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_buffered).IndexOf(marker);

        private async Task FillAsync()
        {
            var chunk = new byte[64 * 1024];
            var read = await stream.ReadAsync(chunk);
            if (read == 0) throw new EndOfStreamException("the server closed the connection mid-response");
            _buffered.AddRange(chunk.AsSpan(0, read));
        }
    }
}
