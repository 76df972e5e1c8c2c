using System.Buffers;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Registry.Bench;

/// <summary>
/// What this machine can do at best, measured in the same run: hashing, generating, disk with fsync, and HTTP over
/// loopback against a trivial Kestrel server in this process. A registry figure near its ceiling is bound by it.
/// </summary>
internal sealed class Ceilings(Options options, Recorder recorder)
{
    private const string Group = "ceiling";

    public async Task RunAsync(CancellationToken ct)
    {
        Cpu();
        Disk();
        await LoopbackAsync(ct);
    }

    private long CpuBytes => options.Quick ? 256L << 20 : 1L << 30;

    private void Cpu()
    {
        using (recorder.Phase("ceiling.sha256"))
        {
            var buffer = new byte[Prng.BlockSize];
            Prng.Fill(9, 0, buffer);
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            hash.AppendData(buffer); // warm-up
            hash.GetHashAndReset();
            var start = Stopwatch.GetTimestamp();
            for (long done = 0; done < CpuBytes; done += buffer.Length) hash.AppendData(buffer);
            hash.GetHashAndReset();
            recorder.Add(Group, "ceiling.sha256.MBps", "SHA-256, one core", CpuBytes / 1e6 / Stopwatch.GetElapsedTime(start).TotalSeconds,
                "MB/s", true);
        }
        using (recorder.Phase("ceiling.prng"))
        {
            var buffer = new byte[Prng.BlockSize];
            var start = Stopwatch.GetTimestamp();
            long block = 0;
            for (long done = 0; done < CpuBytes; done += buffer.Length) Prng.Fill(3, block++, buffer);
            recorder.Add(Group, "ceiling.prng.MBps", "load generator's data source (xoshiro256**), one core",
                CpuBytes / 1e6 / Stopwatch.GetElapsedTime(start).TotalSeconds, "MB/s", true);
        }
    }

    private void Disk()
    {
        Directory.CreateDirectory(options.ScratchDir);
        var path = Path.Combine(options.ScratchDir, $"registry-bench-{Environment.ProcessId}.tmp");
        using (recorder.Phase("ceiling.disk"))
        {
            var buffer = new byte[Prng.BlockSize];
            try
            {
                var start = Stopwatch.GetTimestamp();
                using (var file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 0))
                {
                    long block = 0;
                    for (long done = 0; done < options.DiskBytes; done += buffer.Length)
                    {
                        Prng.Fill(5, block++, buffer);
                        file.Write(buffer);
                    }
                    file.Flush(flushToDisk: true);
                }
                recorder.Add(Group, "ceiling.disk.MBps", $"disk write {options.DiskBytes >> 20} MiB + fsync",
                    options.DiskBytes / 1e6 / Stopwatch.GetElapsedTime(start).TotalSeconds, "MB/s", true,
                    options.ScratchDir);
            }
            finally
            {
                File.Delete(path);
            }
        }
        using (recorder.Phase("ceiling.fsync"))
        {
            // What a registry that fsyncs every small blob pays: create, write 4 KiB, fsync, close, rename.
            var count = options.Quick ? 50 : 300;
            var data = Prng.Small(6, 0, 4096);
            var latencies = new Latencies();
            var start = Stopwatch.GetTimestamp();
            for (var i = 0; i < count; i++)
            {
                var t0 = Stopwatch.GetTimestamp();
                using (var file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 0))
                {
                    file.Write(data);
                    file.Flush(flushToDisk: true);
                }
                File.Move(path, path + ".done", overwrite: true);
                latencies.Add(Stopwatch.GetTimestamp() - t0);
            }
            var seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
            File.Delete(path + ".done");
            recorder.Add(Group, "ceiling.fsync.per_s", "4 KiB file write + fsync + rename, one thread", count / seconds,
                "files/s", true, $"p50 {Report.Format(latencies.Percentile(50))} ms");
        }
    }

    private async Task LoopbackAsync(CancellationToken ct)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Listen(IPAddress.Loopback, 0);
            kestrel.Limits.MaxRequestBodySize = null;
            kestrel.AddServerHeader = false;
        });
        await using var app = builder.Build();
        var payload = new byte[Prng.BlockSize];
        Prng.Fill(8, 0, payload);
        app.Run(context => Serve(context, payload));
        await app.StartAsync(ct);
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        var baseUri = new Uri(address.TrimEnd('/') + "/");
        using var http = RegistryClient.CreateHttpClient();
        var size = options.LoopbackBytes;
        // Warm-up (not timed): connections and both sides' code paths.
        (await http.PostAsync(new Uri(baseUri, "upload"), new GeneratedContent(4, 0, 8 << 20), ct)).Dispose();
        (await http.GetAsync(new Uri(baseUri, $"download?size={8 << 20}"), ct)).Dispose();

        using (var phase = recorder.Phase("ceiling.loopback.upload"))
        {
            var start = Stopwatch.GetTimestamp();
            using var response = await http.PostAsync(new Uri(baseUri, "upload"), new GeneratedContent(4, 0, size), ct);
            phase.Request();
            if (response.StatusCode == HttpStatusCode.OK)
                recorder.Add(Group, "ceiling.loopback.upload.MBps", $"loopback HTTP upload {size >> 20} MiB (body discarded)",
                    size / 1e6 / Stopwatch.GetElapsedTime(start).TotalSeconds, "MB/s", true);
            else phase.Error($"upload: {(int)response.StatusCode}");
        }
        using (var phase = recorder.Phase("ceiling.loopback.download"))
        {
            var start = Stopwatch.GetTimestamp();
            using var response = await http.GetAsync(new Uri(baseUri, $"download?size={size}"),
                HttpCompletionOption.ResponseHeadersRead, ct);
            phase.Request();
            await using var stream = await response.Content.ReadAsStreamAsync(ct);
            var buffer = ArrayPool<byte>.Shared.Rent(1 << 20);
            long total = 0;
            int n;
            while ((n = await stream.ReadAsync(buffer, ct)) > 0) total += n;
            ArrayPool<byte>.Shared.Return(buffer);
            if (total == size)
                recorder.Add(Group, "ceiling.loopback.download.MBps", $"loopback HTTP download {size >> 20} MiB",
                    size / 1e6 / Stopwatch.GetElapsedTime(start).TotalSeconds, "MB/s", true);
            else phase.Error($"download: {total} bytes");
        }
        using (var phase = recorder.Phase("ceiling.loopback.small"))
        {
            var ok = new Uri(baseUri, "ok");
            async Task<bool> Get(long _)
            {
                using var response = await http.GetAsync(ok, ct);
                phase.Request();
                return response.StatusCode == HttpStatusCode.OK;
            }
            await Load.ForDurationAsync(phase, options.Readers, TimeSpan.FromSeconds(options.Quick ? 0.3 : 1), Get, ct);
            var result = await Load.ForDurationAsync(phase, options.Readers, options.Duration, Get, ct);
            recorder.Add(Group, "ceiling.loopback.small.per_s",
                $"loopback HTTP GET of an empty 200, {options.Readers} connections", result.PerSecond, "req/s", true);
            recorder.AddLatency(Group, "ceiling.loopback.small", "loopback empty GET", result.Latencies);
        }
        await app.StopAsync(CancellationToken.None);
    }

    private static async Task Serve(HttpContext context, byte[] payload)
    {
        switch (context.Request.Path.Value)
        {
            case "/upload":
                var reader = context.Request.BodyReader;
                while (true)
                {
                    var read = await reader.ReadAsync(context.RequestAborted);
                    reader.AdvanceTo(read.Buffer.End);
                    if (read.IsCompleted) break;
                }
                context.Response.StatusCode = 200;
                context.Response.ContentLength = 0;
                break;
            case "/download":
                var size = long.Parse(context.Request.Query["size"].ToString(), CultureInfo.InvariantCulture);
                context.Response.ContentLength = size;
                context.Response.ContentType = "application/octet-stream";
                for (long sent = 0; sent < size; sent += payload.Length)
                    await context.Response.Body.WriteAsync(payload.AsMemory(0, (int)Math.Min(payload.Length, size - sent)),
                        context.RequestAborted);
                break;
            default:
                context.Response.StatusCode = 200;
                context.Response.ContentLength = 0;
                break;
        }
    }
}
