using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;

namespace Registry.Bench;

/// <summary>
/// The mixed soak load (issue #5): <see cref="Concurrency"/> workers for <see cref="Duration"/>, each picking at random
/// among manifest HEAD/GET, blob GET (whole or a range), small monolithic pushes, chunked pushes, manifest pushes that
/// move tags, tag lists, catalog pages and deletes. Every answer is checked (status, and bytes for pulls); anything
/// unexpected is an error. With a server pid, its RSS is sampled every <see cref="SampleEvery"/>.
/// </summary>
internal sealed class Soak(Uri url, TimeSpan duration, int concurrency, int? pid)
{
    public TimeSpan Duration => duration;
    public int Concurrency => concurrency;
    public TimeSpan SampleEvery { get; init; } = TimeSpan.FromSeconds(10);

    public sealed record Result(long Operations, long Errors, IReadOnlyList<string> FirstErrors,
        IReadOnlyList<(double Seconds, double RssMiB)> RssCurve, IReadOnlyDictionary<string, long> ByKind);

    private const string ManifestType = "application/vnd.oci.image.manifest.v1+json";
    private const int Repositories = 8;
    private readonly ConcurrentBag<(string Repo, string Digest, byte[] Data)> _blobs = new();
    private readonly ConcurrentQueue<string> _errors = new();
    private readonly ConcurrentDictionary<string, long> _byKind = new();
    private long _operations, _errorCount;

    public async Task<Result> RunAsync(CancellationToken ct)
    {
        using var http = RegistryClient.CreateHttpClient();
        http.BaseAddress = url;
        for (var r = 0; r < Repositories; r++)
            if (!await PushImageAsync(http, new Random(r), Repo(r), "seed", ct))
                throw new InvalidOperationException($"cannot seed {Repo(r)} on {url}");

        var curve = new List<(double, double)>();
        var clock = Stopwatch.StartNew();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        stop.CancelAfter(duration);
        var sampler = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                if (pid is { } p && ReadRssMiB(p) is { } rss) lock (curve) curve.Add((clock.Elapsed.TotalSeconds, rss));
                try { await Task.Delay(SampleEvery, stop.Token); } catch (OperationCanceledException) { }
            }
        }, CancellationToken.None);
        var workers = Enumerable.Range(0, concurrency).Select(i => Task.Run(() => WorkAsync(http, i, stop.Token), CancellationToken.None));
        await Task.WhenAll(workers);
        await sampler;
        if (pid is { } last && ReadRssMiB(last) is { } end) curve.Add((clock.Elapsed.TotalSeconds, end));
        return new Result(_operations, _errorCount, _errors.Take(20).ToList(), curve, _byKind);
    }

    private static string Repo(int i) => $"soak/repo{i}";

    private async Task WorkAsync(HttpClient http, int worker, CancellationToken ct)
    {
        var random = new Random(1000 + worker);
        while (!ct.IsCancellationRequested)
        {
            var repo = Repo(random.Next(Repositories));
            var roll = random.Next(100);
            var kind = roll switch
            {
                < 20 => "manifest.head",
                < 30 => "manifest.get",
                < 40 => "blob.get",
                < 55 => "blob.push",
                < 62 => "blob.chunked",
                < 77 => "manifest.push",
                < 87 => "tags.list",
                < 92 => "catalog",
                _ => "delete",
            };
            bool ok;
            try
            {
                ok = kind switch
                {
                    "manifest.head" => await ExpectAsync(http, HttpMethod.Head, $"v2/{repo}/manifests/seed", ct),
                    "manifest.get" => await ExpectAsync(http, HttpMethod.Get, $"v2/{repo}/manifests/seed", ct),
                    "blob.get" => await PullAsync(http, random, ct),
                    "blob.push" => await PushBlobAsync(http, random, repo, 4096, ct),
                    "blob.chunked" => await PushChunkedAsync(http, random, repo, ct),
                    "manifest.push" => await PushImageAsync(http, random, repo, $"t{random.Next(20)}", ct),
                    "tags.list" => await ExpectAsync(http, HttpMethod.Get, $"v2/{repo}/tags/list?n=50", ct),
                    "catalog" => await ExpectAsync(http, HttpMethod.Get, "v2/_catalog?n=5", ct),
                    _ => await DeleteTagAsync(http, random, repo, ct),
                };
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is HttpRequestException or IOException or TaskCanceledException)
            {
                ok = Fail(kind, e.Message);
            }
            Interlocked.Increment(ref _operations);
            _byKind.AddOrUpdate(kind, 1, (_, n) => n + 1);
            if (!ok) Interlocked.Increment(ref _errorCount);
        }
    }

    private bool Fail(string what, string detail)
    {
        if (_errors.Count < 100) _errors.Enqueue($"{what}: {detail}");
        return false;
    }

    private async Task<bool> ExpectAsync(HttpClient http, HttpMethod method, string path, CancellationToken ct)
    {
        using var response = await http.SendAsync(new HttpRequestMessage(method, path), ct);
        await response.Content.ReadAsByteArrayAsync(ct);
        return response.StatusCode == HttpStatusCode.OK || Fail($"{method} {path}", ((int)response.StatusCode).ToString());
    }

    private async Task<bool> PullAsync(HttpClient http, Random random, CancellationToken ct)
    {
        var blobs = _blobs.ToArray();
        if (blobs.Length == 0) return true;
        var (repo, digest, data) = blobs[random.Next(blobs.Length)];
        var request = new HttpRequestMessage(HttpMethod.Get, $"v2/{repo}/blobs/{digest}");
        var (from, to) = (0, data.Length - 1);
        if (random.Next(2) == 0)
        {
            from = random.Next(data.Length);
            to = random.Next(from, data.Length);
            request.Headers.Range = new RangeHeaderValue(from, to);
        }
        using var response = await http.SendAsync(request, ct);
        var body = await response.Content.ReadAsByteArrayAsync(ct);
        if (response.StatusCode is not (HttpStatusCode.OK or HttpStatusCode.PartialContent))
            return Fail($"GET blob {digest}", ((int)response.StatusCode).ToString());
        return body.AsSpan().SequenceEqual(data.AsSpan(from, to - from + 1)) || Fail($"GET blob {digest}", "wrong bytes");
    }

    private async Task<bool> PushBlobAsync(HttpClient http, Random random, string repo, int size, CancellationToken ct)
    {
        var data = new byte[size];
        random.NextBytes(data);
        var digest = Sha256(data);
        using var response = await http.PostAsync($"v2/{repo}/blobs/uploads/?digest={digest}", new ByteArrayContent(data), ct);
        if (response.StatusCode != HttpStatusCode.Created) return Fail("POST blob", ((int)response.StatusCode).ToString());
        if (_blobs.Count < 2000) _blobs.Add((repo, digest, data));
        return true;
    }

    private async Task<bool> PushChunkedAsync(HttpClient http, Random random, string repo, CancellationToken ct)
    {
        var data = new byte[3 * 65536];
        random.NextBytes(data);
        using var start = await http.PostAsync($"v2/{repo}/blobs/uploads/", null, ct);
        if (start.StatusCode != HttpStatusCode.Accepted) return Fail("POST upload", ((int)start.StatusCode).ToString());
        var location = start.Headers.Location!;
        for (var offset = 0; offset < data.Length; offset += 65536)
        {
            var chunk = new ByteArrayContent(data, offset, 65536);
            chunk.Headers.TryAddWithoutValidation("Content-Range", $"{offset}-{offset + 65535}");
            using var patch = await http.PatchAsync(location, chunk, ct);
            if (patch.StatusCode != HttpStatusCode.Accepted) return Fail("PATCH", ((int)patch.StatusCode).ToString());
            location = patch.Headers.Location!;
        }
        var separator = location.OriginalString.Contains('?') ? '&' : '?';
        using var put = await http.PutAsync($"{location}{separator}digest={Sha256(data)}", null, ct);
        return put.StatusCode == HttpStatusCode.Created || Fail("PUT upload", ((int)put.StatusCode).ToString());
    }

    private async Task<bool> PushImageAsync(HttpClient http, Random random, string repo, string tag, CancellationToken ct)
    {
        var config = Encoding.UTF8.GetBytes($$"""{"architecture":"amd64","os":"linux","n":{{random.NextInt64()}}}""");
        var configDigest = Sha256(config);
        using (var response = await http.PostAsync($"v2/{repo}/blobs/uploads/?digest={configDigest}", new ByteArrayContent(config), ct))
            if (response.StatusCode != HttpStatusCode.Created) return Fail("POST config", ((int)response.StatusCode).ToString());
        var manifest = Encoding.UTF8.GetBytes($$"""
            {"schemaVersion":2,"mediaType":"{{ManifestType}}","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{{configDigest}}","size":{{config.Length}}},"layers":[]}
            """);
        var content = new ByteArrayContent(manifest);
        content.Headers.ContentType = new MediaTypeHeaderValue(ManifestType);
        using var put = await http.PutAsync($"v2/{repo}/manifests/{tag}", content, ct);
        return put.StatusCode == HttpStatusCode.Created || Fail("PUT manifest", ((int)put.StatusCode).ToString());
    }

    private async Task<bool> DeleteTagAsync(HttpClient http, Random random, string repo, CancellationToken ct)
    {
        using var response = await http.DeleteAsync($"v2/{repo}/manifests/t{random.Next(20)}", ct);
        // Another worker may have deleted or not yet pushed it.
        return response.StatusCode is HttpStatusCode.Accepted or HttpStatusCode.NotFound
               || Fail("DELETE tag", ((int)response.StatusCode).ToString());
    }

    private static string Sha256(byte[] data) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(data));

    private static double? ReadRssMiB(int pid)
    {
        try
        {
            var line = File.ReadLines($"/proc/{pid}/status").FirstOrDefault(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
            return line is null ? null : long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) / 1024.0;
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary><c>soak --url URL [--pid N] [--seconds S] [--concurrency C]</c>; exit code 0 only with zero errors.</summary>
    public static async Task<int> MainAsync(string[] args)
    {
        Uri? target = null;
        int? serverPid = null;
        var seconds = 600;
        var workers = 64;
        for (var i = 0; i + 1 < args.Length; i += 2)
        {
            switch (args[i])
            {
                case "--url": target = new Uri(args[i + 1].TrimEnd('/') + "/"); break;
                case "--pid": serverPid = int.Parse(args[i + 1]); break;
                case "--seconds": seconds = int.Parse(args[i + 1]); break;
                case "--concurrency": workers = int.Parse(args[i + 1]); break;
                default: Console.Error.WriteLine($"unknown option {args[i]}"); return 2;
            }
        }
        if (target is null)
        {
            Console.Error.WriteLine("soak --url URL [--pid N] [--seconds S] [--concurrency C]");
            return 2;
        }
        var soak = new Soak(target, TimeSpan.FromSeconds(seconds), workers, serverPid);
        var result = await soak.RunAsync(CancellationToken.None);
        Console.WriteLine($"soak: {seconds} s at concurrency {workers} against {target}");
        foreach (var (kind, count) in result.ByKind.OrderBy(k => k.Key)) Console.WriteLine($"  {kind,-15} {count,10}");
        Console.WriteLine("  RSS curve (s, MiB): " + string.Join("  ", result.RssCurve.Select(p => $"{p.Seconds:0}:{p.RssMiB:0.0}")));
        foreach (var error in result.FirstErrors) Console.WriteLine($"  error: {error}");
        Console.WriteLine($"operations {result.Operations}, errors {result.Errors}");
        return result.Errors == 0 ? 0 : 3;
    }
}
