using System.Collections.Concurrent;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Registry.Tests.Infrastructure;

/// <summary>
/// A real HTTP receiver on a loopback port that records every delivery, answers 503 to the first
/// <see cref="FailFirst"/> attempts, and can be stopped and started again on the same port.
/// </summary>
public sealed class WebhookReceiver : IAsyncDisposable
{
    private WebApplication? _app;
    private int _attempts;

    public WebhookReceiver(int port) => Port = port;

    public int Port { get; }
    public string Url => $"http://127.0.0.1:{Port}/hook";
    public int FailFirst { get; set; }
    public int Attempts => _attempts;

    /// <summary>Acknowledged deliveries: event id, action, repository, and the delivery's headers.</summary>
    public ConcurrentQueue<(long Id, string Action, string Repository, string? Authorization)> Received { get; } = new();

    public static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }

    public async Task StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls($"http://127.0.0.1:{Port}");
        builder.Logging.ClearProviders();
        _app = builder.Build();
        _app.MapPost("/hook", async (HttpContext context) =>
        {
            if (Interlocked.Increment(ref _attempts) <= FailFirst) return Results.StatusCode(503);
            using var body = await JsonDocument.ParseAsync(context.Request.Body);
            var root = body.RootElement;
            context.Request.Headers["Registry-Event-Id"].ToString().Should().Be(root.GetProperty("id").GetInt64().ToString());
            Received.Enqueue((root.GetProperty("id").GetInt64(), root.GetProperty("action").GetString()!,
                root.GetProperty("repository").GetString()!, context.Request.Headers.Authorization.FirstOrDefault()));
            return Results.Ok();
        });
        await _app.StartAsync();
    }

    public async Task StopAsync()
    {
        if (_app is null) return;
        await _app.StopAsync();
        await _app.DisposeAsync();
        _app = null;
    }

    public ValueTask DisposeAsync() => new(StopAsync());
}
