using System.Net;
using System.Net.Sockets;
using System.Text;
using Registry.Tests.Infrastructure;

namespace Registry.Tests.Reliability;

/// <summary>
/// A client that trickles a body below Kestrel's minimum data rate (240 B/s after a 5 s grace period) is cut off, and
/// nothing of what it sent stays in the upload session.
/// </summary>
public class SlowClientTests(RegistryFixture fixture) : IClassFixture<RegistryFixture>
{
    [Fact]
    public async Task A_trickling_upload_is_cut_off_and_leaves_the_session_as_it_was()
    {
        var client = fixture.Client;
        var location = await client.StartUploadAsync(RegistryFixture.NewRepo("slow"));
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(IPAddress.Loopback, fixture.Server.BaseAddress.Port);
        await socket.SendAsync(Encoding.ASCII.GetBytes(
            $"PATCH {location} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/octet-stream\r\n" +
            "Content-Length: 100000\r\n\r\n"));

        var cutOff = false;
        var started = DateTime.UtcNow;
        while (DateTime.UtcNow - started < TimeSpan.FromSeconds(30))
        {
            try
            {
                await socket.SendAsync(new byte[] { 1 });
                // Readable means the server answered or closed the connection: either way it stopped waiting.
                if (socket.Poll(0, SelectMode.SelectRead))
                {
                    cutOff = true;
                    break;
                }
            }
            catch (SocketException)
            {
                cutOff = true;
                break;
            }
            await Task.Delay(500);
        }

        cutOff.Should().BeTrue("the server must drop a client sending 2 B/s");
        (DateTime.UtcNow - started).Should().BeLessThan(TimeSpan.FromSeconds(30));
        var status = await client.GetAsync(location);
        status.StatusCode.Should().Be(HttpStatusCode.NoContent);
        status.Headers.GetValues("Range").Should().Equal("0-0");
    }
}
