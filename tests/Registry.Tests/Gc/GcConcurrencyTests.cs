using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Registry.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Registry.Tests.Gc;

/// <summary>
/// Garbage collection in a loop while pushers, a mounter and a puller run, with no grace period and untagged deletion
/// on (the harshest settings): every acknowledged object must stay intact. Pushers also delete images and push the
/// same content again at once (a push deduplicated onto content being swept), push indexes whose children are untagged,
/// and referrers that are untagged. Short form here (5 s); long form: <c>REGISTRY_GC_STRESS_SECONDS=600</c>.
/// </summary>
public sealed class GcConcurrencyTests(ITestOutputHelper output)
{
    private const string ManifestType = "application/vnd.oci.image.manifest.v1+json";
    private const string IndexType = "application/vnd.oci.image.index.v1+json";

    private static readonly byte[][] SharedLayers =
        Enumerable.Range(0, 4).Select(i => Encoding.UTF8.GetBytes($"shared layer {i} " + new string('x', 2000 + i))).ToArray();

    internal sealed record Blob(string Digest, byte[] Data);

    /// <summary>An acknowledged image or index: where it lives, its bytes, what it references.</summary>
    internal sealed record Pushed(string Repo, string Tag, string Digest, byte[] Bytes, Blob[] Blobs, Pushed[] Children);

    internal sealed record Referrer(string Repo, string Subject, string Digest, byte[] Bytes);

    internal sealed class Ledger
    {
        public readonly ConcurrentBag<Pushed> Kept = new();
        public readonly ConcurrentBag<Referrer> Referrers = new();
        public int Acknowledged, Refused, Checks, LostObjects, LostChildren, LostReferrers, GcRuns, SweptBlobs, RunsBusy;
        public long Reclaimed;
        public readonly ConcurrentQueue<string> Problems = new();

        public void Lost(ref int counter, string what)
        {
            Interlocked.Increment(ref counter);
            Problems.Enqueue(what);
        }
    }

    [Fact]
    public async Task Collection_in_a_loop_under_pushes_mounts_and_pulls_loses_no_acknowledged_object()
    {
        var seconds = int.TryParse(Environment.GetEnvironmentVariable("REGISTRY_GC_STRESS_SECONDS"), out var s) ? s : 5;
        await using var server = await RegistryServer.StartAsync(Gc.Aggressive(("Registry:Gc:UntaggedAfter", "00:00:00")));
        using var client = server.CreateClient();
        var ledger = new Ledger();
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(seconds));

        var workers = new List<Task>();
        for (var i = 0; i < 3; i++) workers.Add(PusherAsync(client, $"gcstress/p{i}", ledger, stop.Token));
        workers.Add(MounterAsync(client, "gcstress/mounts", ledger, stop.Token));
        workers.Add(PullerAsync(client, ledger, stop.Token));
        workers.Add(CollectorAsync(client, ledger, stop.Token));
        await Task.WhenAll(workers);

        await CheckAllAsync(client, ledger);
        var blobs = Path.Combine(server.StoragePath!, "blobs");
        // A request the clients gave up on at the stop may still be publishing on the server: wait for quiet.
        var before = Gc.DiskUsage(blobs);
        var inlineBefore = Gc.InlineBytes(server.StoragePath!);
        for (var quiet = 0; quiet < 2;)
        {
            await Task.Delay(300);
            var now = Gc.DiskUsage(blobs);
            var inlineNow = Gc.InlineBytes(server.StoragePath!);
            quiet = now == before && inlineNow == inlineBefore ? quiet + 1 : 0;
            before = now;
            inlineBefore = inlineNow;
        }
        var last = await client.RunAsync();
        var after = Gc.DiskUsage(blobs);
        var inlineAfter = Gc.InlineBytes(server.StoragePath!);
        await CheckAllAsync(client, ledger);

        output.WriteLine($"{seconds} s: gc runs {ledger.GcRuns}, blobs swept {ledger.SweptBlobs}, bytes reclaimed " +
                         $"{ledger.Reclaimed}; pushes acknowledged {ledger.Acknowledged}, refused and retried " +
                         $"{ledger.Refused}; checks {ledger.Checks}; lost objects {ledger.LostObjects}, lost index " +
                         $"children {ledger.LostChildren}, lost referrers {ledger.LostReferrers}; final run reclaimed " +
                         $"{last.BytesReclaimed()} bytes, du {before} -> {after}, and {last.InlineBytesReclaimed()} " +
                         $"inline bytes, {inlineBefore} -> {inlineAfter}");
        foreach (var problem in ledger.Problems.Take(20)) output.WriteLine(problem);
        (ledger.LostObjects, ledger.LostChildren, ledger.LostReferrers).Should().Be((0, 0, 0), string.Join("; ", ledger.Problems.Take(5)));
        ledger.GcRuns.Should().BeGreaterThan(1);
        ledger.SweptBlobs.Should().BeGreaterThan(0, "the workload makes garbage and the runs must collect it");
        (before - after).Should().Be(last.BytesReclaimed());
        (inlineBefore - inlineAfter).Should().Be(last.InlineBytesReclaimed());
    }

    private static HttpContent Json(byte[] bytes, string mediaType)
    {
        var content = new ByteArrayContent(bytes);
        content.Headers.ContentType = new MediaTypeHeaderValue(mediaType);
        return content;
    }

    private static byte[] ImageManifest(Blob config, Blob layer, string? subject = null) => Encoding.UTF8.GetBytes($$"""
        {"schemaVersion":2,"mediaType":"{{ManifestType}}",
         "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{{config.Digest}}","size":{{config.Data.Length}}},
         "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{{layer.Digest}}","size":{{layer.Data.Length}}}]{{(subject is null ? "" : $$""","subject":{"mediaType":"{{ManifestType}}","digest":"{{subject}}","size":1}""")}}}
        """);

    private static Blob NewBlob(byte[] data) => new(Http.Sha256(data), data);

    private static Blob RandomConfig() => NewBlob(Encoding.UTF8.GetBytes($$"""{"architecture":"amd64","os":"linux","nonce":"{{Guid.NewGuid()}}"}"""));

    /// <summary>Pushes the blobs then the manifest; null if the manifest was refused (a blob was collected in between).</summary>
    private static async Task<bool> PushBlobsAsync(HttpClient client, string repo, IEnumerable<Blob> blobs, CancellationToken ct)
    {
        foreach (var blob in blobs)
        {
            var response = await client.PostAsync($"v2/{repo}/blobs/uploads/?digest={blob.Digest}", new ByteArrayContent(blob.Data), ct);
            if (response.StatusCode != HttpStatusCode.Created) throw new InvalidOperationException($"blob push: {response.StatusCode}");
        }
        return true;
    }

    private static async Task<bool> PutManifestAsync(HttpClient client, string repo, string reference, byte[] bytes,
        string mediaType, Ledger ledger, CancellationToken ct)
    {
        var response = await client.PutAsync($"v2/{repo}/manifests/{reference}", Json(bytes, mediaType), ct);
        if (response.StatusCode == HttpStatusCode.Created) return true;
        var body = await response.Content.ReadAsStringAsync(ct);
        if (response.StatusCode == HttpStatusCode.BadRequest && body.Contains("MANIFEST_BLOB_UNKNOWN"))
        {
            // Allowed: with no grace period a run may unlink a blob between its 201 and the manifest. Never a 201.
            Interlocked.Increment(ref ledger.Refused);
            return false;
        }
        throw new InvalidOperationException($"manifest push: {response.StatusCode} {body}");
    }

    /// <summary>Blobs, then manifest, retried from the blobs when refused; true once acknowledged.</summary>
    private static async Task<bool> PushImageAsync(HttpClient client, string repo, string reference, Blob config, Blob layer,
        byte[] manifest, Ledger ledger, CancellationToken ct)
    {
        for (var attempt = 0; attempt < 20 && !ct.IsCancellationRequested; attempt++)
        {
            await PushBlobsAsync(client, repo, [config, layer], ct);
            if (await PutManifestAsync(client, repo, reference, manifest, ManifestType, ledger, ct)) return true;
        }
        return false;
    }

    internal static async Task PusherAsync(HttpClient client, string repo, Ledger ledger, CancellationToken ct)
    {
        var n = 0;
        try
        {
            while (!ct.IsCancellationRequested)
            {
                n++;
                var config = RandomConfig();
                var layer = n % 2 == 0 ? NewBlob(SharedLayers[n % SharedLayers.Length]) : NewBlob(RandomNumberGenerator.GetBytes(n % 4 == 1 ? 20_000 : 3000));
                var manifest = ImageManifest(config, layer);
                var digest = Http.Sha256(manifest);
                switch (n % 4)
                {
                    case 0:
                    case 1:
                        if (await PushImageAsync(client, repo, $"k{n}", config, layer, manifest, ledger, ct))
                            Acknowledge(ledger, new Pushed(repo, $"k{n}", digest, manifest, [config, layer], []));
                        break;
                    case 2:
                        // Garbage, then the same content again at once: the push finds content a run is about to sweep.
                        if (!await PushImageAsync(client, repo, digest, config, layer, manifest, ledger, ct)) break;
                        await client.DeleteAsync($"v2/{repo}/manifests/{digest}", ct);
                        if (await PushImageAsync(client, repo, $"e{n}", config, layer, manifest, ledger, ct))
                            Acknowledge(ledger, new Pushed(repo, $"e{n}", digest, manifest, [config, layer], []));
                        break;
                    default:
                        await PushIndexAsync(client, repo, $"i{n}", ledger, ct);
                        await PushReferrerAsync(client, repo, ledger, ct);
                        break;
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    private static void Acknowledge(Ledger ledger, Pushed pushed)
    {
        Interlocked.Increment(ref ledger.Acknowledged);
        ledger.Kept.Add(pushed);
    }

    /// <summary>Two untagged children by digest, then a tagged index of them; children pushed again if one was collected.</summary>
    private static async Task PushIndexAsync(HttpClient client, string repo, string tag, Ledger ledger, CancellationToken ct)
    {
        var children = new List<Pushed>();
        for (var i = 0; i < 2; i++)
        {
            var config = RandomConfig();
            var layer = NewBlob(RandomNumberGenerator.GetBytes(1500));
            var manifest = ImageManifest(config, layer);
            children.Add(new Pushed(repo, "", Http.Sha256(manifest), manifest, [config, layer], []));
        }
        var index = Encoding.UTF8.GetBytes($$"""
            {"schemaVersion":2,"mediaType":"{{IndexType}}","manifests":[{{string.Join(",", children.Select(c =>
                $$"""{"mediaType":"{{ManifestType}}","digest":"{{c.Digest}}","size":{{c.Bytes.Length}}}"""))}}]}
            """);
        for (var attempt = 0; attempt < 20 && !ct.IsCancellationRequested; attempt++)
        {
            var pushedAll = true;
            foreach (var child in children)
                pushedAll &= await PushImageAsync(client, repo, child.Digest, child.Blobs[0], child.Blobs[1], child.Bytes, ledger, ct);
            if (!pushedAll) continue;
            if (await PutManifestAsync(client, repo, tag, index, IndexType, ledger, ct))
            {
                Acknowledge(ledger, new Pushed(repo, tag, Http.Sha256(index), index, [], children.ToArray()));
                return;
            }
        }
    }

    /// <summary>An untagged artifact whose subject is one of this repository's kept images.</summary>
    private static async Task PushReferrerAsync(HttpClient client, string repo, Ledger ledger, CancellationToken ct)
    {
        var subject = ledger.Kept.FirstOrDefault(k => k.Repo == repo && k.Children.Length == 0);
        if (subject is null) return;
        var config = RandomConfig();
        var layer = NewBlob(RandomNumberGenerator.GetBytes(200));
        var manifest = ImageManifest(config, layer, subject.Digest);
        var digest = Http.Sha256(manifest);
        if (await PushImageAsync(client, repo, digest, config, layer, manifest, ledger, ct))
        {
            Interlocked.Increment(ref ledger.Acknowledged);
            ledger.Referrers.Add(new Referrer(repo, subject.Digest, digest, manifest));
        }
    }

    /// <summary>Mounts a kept image's blobs from its repository (or uploads them when the mount becomes a session), then tags it here.</summary>
    internal static async Task MounterAsync(HttpClient client, string repo, Ledger ledger, CancellationToken ct)
    {
        var n = 0;
        try
        {
            while (!ct.IsCancellationRequested)
            {
                var source = ledger.Kept.Where(k => k.Children.Length == 0).Skip(Random.Shared.Next(Math.Max(1, ledger.Kept.Count))).FirstOrDefault();
                if (source is null)
                {
                    await Task.Delay(20, ct);
                    continue;
                }
                n++;
                foreach (var blob in source.Blobs)
                {
                    var mount = await client.PostAsync($"v2/{repo}/blobs/uploads/?mount={blob.Digest}&from={source.Repo}", null, ct);
                    if (mount.StatusCode == HttpStatusCode.Created) continue;
                    mount.StatusCode.Should().Be(HttpStatusCode.Accepted);
                    var put = await client.PutAsync(new Uri(client.BaseAddress!, mount.Headers.Location!.ToString() + $"?digest={blob.Digest}"),
                        new ByteArrayContent(blob.Data), ct);
                    put.StatusCode.Should().Be(HttpStatusCode.Created);
                }
                if (await PutManifestAsync(client, repo, $"m{n}", source.Bytes, ManifestType, ledger, ct))
                    Acknowledge(ledger, source with { Repo = repo, Tag = $"m{n}" });
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    internal static async Task PullerAsync(HttpClient client, Ledger ledger, CancellationToken ct)
    {
        try
        {
            while (!ct.IsCancellationRequested)
            {
                var kept = ledger.Kept.ToArray();
                if (kept.Length == 0)
                {
                    await Task.Delay(20, ct);
                    continue;
                }
                await CheckAsync(client, kept[Random.Shared.Next(kept.Length)], ledger, ct);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    internal static async Task CollectorAsync(HttpClient client, Ledger ledger, CancellationToken ct)
    {
        try
        {
            while (!ct.IsCancellationRequested)
            {
                var response = await client.PostAsync("v2/_registry/gc/runs?dryRun=false", null, ct);
                if (response.StatusCode == HttpStatusCode.TooManyRequests)
                {
                    // Another replica's collector is running one: one run at a time across replicas.
                    Interlocked.Increment(ref ledger.RunsBusy);
                    await Task.Delay(20, ct);
                    continue;
                }
                response.StatusCode.Should().Be(HttpStatusCode.Accepted, await response.Content.ReadAsStringAsync(ct));
                var run = await client.WaitForRunAsync(response.Headers.Location!.ToString());
                Interlocked.Increment(ref ledger.GcRuns);
                Interlocked.Add(ref ledger.SweptBlobs, run.Swept("blobs"));
                Interlocked.Add(ref ledger.Reclaimed, run.AllBytesReclaimed());
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    internal static async Task CheckAllAsync(HttpClient client, Ledger ledger)
    {
        foreach (var pushed in ledger.Kept) await CheckAsync(client, pushed, ledger, CancellationToken.None);
        foreach (var referrer in ledger.Referrers)
        {
            Interlocked.Increment(ref ledger.Checks);
            var manifest = await client.GetAsync($"v2/{referrer.Repo}/manifests/{referrer.Digest}");
            var listed = await client.GetStringAsync($"v2/{referrer.Repo}/referrers/{referrer.Subject}");
            if (manifest.StatusCode != HttpStatusCode.OK || !listed.Contains(referrer.Digest))
                ledger.Lost(ref ledger.LostReferrers, $"referrer {referrer.Repo}@{referrer.Digest}: {manifest.StatusCode}");
        }
    }

    private static async Task CheckAsync(HttpClient client, Pushed pushed, Ledger ledger, CancellationToken ct)
    {
        Interlocked.Increment(ref ledger.Checks);
        if (!await ManifestIntactAsync(client, pushed.Repo, pushed.Tag, pushed.Bytes, ct)
            || !await ManifestIntactAsync(client, pushed.Repo, pushed.Digest, pushed.Bytes, ct))
            ledger.Lost(ref ledger.LostObjects, $"manifest {pushed.Repo}:{pushed.Tag}");
        foreach (var blob in pushed.Blobs)
            if (!await BlobIntactAsync(client, pushed.Repo, blob, ct))
                ledger.Lost(ref ledger.LostObjects, $"blob {pushed.Repo}@{blob.Digest} of {pushed.Tag}");
        foreach (var child in pushed.Children)
        {
            var intact = await ManifestIntactAsync(client, pushed.Repo, child.Digest, child.Bytes, ct);
            foreach (var blob in child.Blobs) intact &= await BlobIntactAsync(client, pushed.Repo, blob, ct);
            if (!intact) ledger.Lost(ref ledger.LostChildren, $"child {pushed.Repo}@{child.Digest} of {pushed.Tag}");
        }
    }

    private static async Task<bool> ManifestIntactAsync(HttpClient client, string repo, string reference, byte[] bytes, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"v2/{repo}/manifests/{reference}");
        request.Headers.Accept.ParseAdd(ManifestType);
        request.Headers.Accept.ParseAdd(IndexType);
        var response = await client.SendAsync(request, ct);
        return response.StatusCode == HttpStatusCode.OK && (await response.Content.ReadAsByteArrayAsync(ct)).AsSpan().SequenceEqual(bytes);
    }

    private static async Task<bool> BlobIntactAsync(HttpClient client, string repo, Blob blob, CancellationToken ct)
    {
        var response = await client.GetAsync($"v2/{repo}/blobs/{blob.Digest}", ct);
        return response.StatusCode == HttpStatusCode.OK && Http.Sha256(await response.Content.ReadAsByteArrayAsync(ct)) == blob.Digest;
    }
}
