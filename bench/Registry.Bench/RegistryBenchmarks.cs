using System.Buffers;
using System.Diagnostics;
using System.Text;
using System.Text.Json;

namespace Registry.Bench;

/// <summary>The registry phases, in order: big blob push and pull, small blobs, manifests, reads, tags, catalog, then the CI-shaped ones.</summary>
internal sealed class RegistryBenchmarks(Options options, RegistryClient client, Recorder recorder)
{
    private const string Group = "registry";
    private const string BigRepo = "bench/big";
    private const string SmallRepo = "bench/small";
    private const string ManifestRepo = "bench/manifests";
    private const string TagRepo = "bench/tags";
    private const int SmallSize = 4096;
    private const int RangeSize = 1 << 20;

    private string? _bigDigest;
    private byte[]? _baseManifest; // a manifest whose config and layer are in ManifestRepo
    private (string Config, int ConfigSize, string Layer) _baseBlobs;

    public async Task RunAsync(CancellationToken ct)
    {
        using (var phase = recorder.Phase("ping"))
        {
            if (!await client.PingAsync(phase, ct))
                throw new InvalidOperationException($"{client.BaseUri} does not answer GET /v2/ with 200: "
                                                    + phase.Record.ErrorSamples.FirstOrDefault());
        }
        if (options.Runs("push")) await PushAsync(ct);
        if (options.Runs("pull")) await PullAsync(ct);
        if (options.Runs("small")) await SmallBlobsAsync(ct);
        if (options.Runs("manifests")) await ManifestPushAsync(ct);
        if (options.Runs("reads")) await ManifestReadsAsync(ct);
        if (options.Runs("tags")) await TagsAsync(ct);
        if (options.Runs("catalog")) await CatalogAsync(ct);
        var ci = new CiBenchmarks(options, client, recorder);
        if (options.Runs("ci-pull")) await ci.PullFarmAsync(ct);
        if (options.Runs("ci-push")) await ci.PushArtifactsAsync(ct);
    }

    private static double MBps(long bytes, double seconds) => bytes / 1e6 / seconds;

    private string SizeLabel => $"{options.BlobSize >> 20} MiB";

    private async Task PushAsync(CancellationToken ct)
    {
        const ulong monolithicSeed = 1, chunkedSeed = 2;
        var size = options.BlobSize;
        Console.Error.WriteLine($"           computing the digests of two {SizeLabel} blobs (not timed) ...");
        var monolithicDigest = Prng.Digest(monolithicSeed, size);
        var chunkedDigest = Prng.Digest(chunkedSeed, size);

        using (var phase = recorder.Phase("push.monolithic"))
        {
            var start = Stopwatch.GetTimestamp();
            if (await client.PushMonolithicAsync(phase, BigRepo, new GeneratedContent(monolithicSeed, 0, size),
                    monolithicDigest, ct))
            {
                _bigDigest = monolithicDigest;
                recorder.Add(Group, "push.monolithic.MBps", $"push {SizeLabel} monolithic (POST + one PUT)",
                    MBps(size, Stopwatch.GetElapsedTime(start).TotalSeconds), "MB/s", true);
            }
        }
        using (var phase = recorder.Phase("push.chunked"))
        {
            var start = Stopwatch.GetTimestamp();
            if (await client.PushChunkedAsync(phase, BigRepo, chunkedSeed, size, options.ChunkSize, chunkedDigest, ct))
                recorder.Add(Group, "push.chunked.MBps",
                    $"push {SizeLabel} chunked ({options.ChunkSize >> 20} MiB PATCHes)",
                    MBps(size, Stopwatch.GetElapsedTime(start).TotalSeconds), "MB/s", true);
        }
    }

    private async Task PullAsync(CancellationToken ct)
    {
        if (_bigDigest is null)
        {
            // pull without push (--only pull): push the blob first, untimed.
            using var setup = recorder.Phase("pull.setup");
            var digest = Prng.Digest(1, options.BlobSize);
            if (await client.PushMonolithicAsync(setup, BigRepo, new GeneratedContent(1, 0, options.BlobSize), digest, ct))
                _bigDigest = digest;
        }
        if (_bigDigest is not { } blob) return;
        using (var phase = recorder.Phase("pull.full"))
        {
            // The median of 3 pulls (1 with --quick): the blob was just written, so it is read from the page cache.
            var rates = new List<double>();
            for (var i = 0; i < (options.Quick ? 1 : 3); i++)
            {
                var start = Stopwatch.GetTimestamp();
                var read = await client.PullAsync(phase, BigRepo, blob, null, ct);
                if (read is null) break;
                if (read != options.BlobSize)
                {
                    phase.Error($"GET blob returned {read} bytes, expected {options.BlobSize}");
                    break;
                }
                rates.Add(MBps(read.Value, Stopwatch.GetElapsedTime(start).TotalSeconds));
            }
            if (rates.Count > 0)
                recorder.Add(Group, "pull.MBps", $"pull {SizeLabel} (GET, read and discard)", rates.Order().ElementAt(rates.Count / 2),
                    "MB/s", true, $"median of {rates.Count}");
        }
        using (var phase = recorder.Phase("pull.range"))
        {
            var from = options.BlobSize / 2;
            var latencies = await Load.RepeatAsync(phase, 10, 500, options.LatencyTime, async () =>
            {
                var read = await client.PullAsync(phase, BigRepo, blob, (from, from + RangeSize - 1), ct);
                if (read == RangeSize || read is null) return read is not null;
                phase.Error($"range GET returned {read} bytes, expected {RangeSize}");
                return false;
            }, ct);
            recorder.AddLatency(Group, "pull.range", "GET Range 1 MiB in the middle", latencies);
        }
    }

    private async Task SmallBlobsAsync(CancellationToken ct)
    {
        using var phase = recorder.Phase("push.small");
        var fallbacks = Interlocked.Read(ref client.SinglePostFallbacks);
        var result = await Load.ForDurationAsync(phase, options.Writers, options.Duration, async sequence =>
        {
            var data = Prng.Small(1000, sequence, SmallSize);
            return await client.PushSmallAsync(phase, SmallRepo, data, Prng.Digest(data), ct);
        }, ct);
        fallbacks = Interlocked.Read(ref client.SinglePostFallbacks) - fallbacks;
        var note = fallbacks > 0 ? $"POST ?digest= answered 202 {fallbacks} times: POST + PUT each" : "single POST ?digest=";
        recorder.Add(Group, "push.small.per_s", $"push 4 KiB blobs, {options.Writers} workers", result.PerSecond,
            "blobs/s", true, note);
        recorder.AddLatency(Group, "push.small", "push 4 KiB blob", result.Latencies);
    }

    /// <summary>Pushes a config and a 4 KiB layer to <paramref name="repo"/>; a manifest referencing them.</summary>
    private async Task<(string Config, int ConfigSize, string Layer)?> PushBaseBlobsAsync(Phase phase, string repo,
        CancellationToken ct)
    {
        var layer = Prng.Small(77, 0, SmallSize);
        var layerDigest = Prng.Digest(layer);
        var config = Encoding.UTF8.GetBytes(
            $$$"""{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["{{{layerDigest}}}"]}}""");
        var configDigest = Prng.Digest(config);
        if (!await client.PushSmallAsync(phase, repo, config, configDigest, ct)) return null;
        if (!await client.PushSmallAsync(phase, repo, layer, layerDigest, ct)) return null;
        return (configDigest, config.Length, layerDigest);
    }

    private static byte[] Manifest(string configDigest, int configSize, string? layerDigest, string? annotation,
        string configMediaType = "application/vnd.oci.image.config.v1+json")
    {
        var buffer = new ArrayBufferWriter<byte>(512);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteNumber("schemaVersion", 2);
            writer.WriteString("mediaType", RegistryClient.ManifestMediaType);
            writer.WriteStartObject("config");
            writer.WriteString("mediaType", configMediaType);
            writer.WriteString("digest", configDigest);
            writer.WriteNumber("size", configSize);
            writer.WriteEndObject();
            writer.WriteStartArray("layers");
            if (layerDigest is not null)
            {
                writer.WriteStartObject();
                writer.WriteString("mediaType", "application/vnd.oci.image.layer.v1.tar");
                writer.WriteString("digest", layerDigest);
                writer.WriteNumber("size", SmallSize);
                writer.WriteEndObject();
            }
            writer.WriteEndArray();
            if (annotation is not null)
            {
                writer.WriteStartObject("annotations");
                writer.WriteString("org.example.bench.sequence", annotation);
                writer.WriteEndObject();
            }
            writer.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    private async Task<byte[]?> BaseManifestAsync(Phase phase, CancellationToken ct)
    {
        if (_baseManifest is not null) return _baseManifest;
        if (await PushBaseBlobsAsync(phase, ManifestRepo, ct) is not { } blobs) return null;
        _baseBlobs = blobs;
        var manifest = Manifest(blobs.Config, blobs.ConfigSize, blobs.Layer, null);
        if (!await client.PutManifestAsync(phase, ManifestRepo, "latest", manifest, ct)) return null;
        return _baseManifest = manifest;
    }

    private async Task ManifestPushAsync(CancellationToken ct)
    {
        using var phase = recorder.Phase("push.manifests");
        if (await BaseManifestAsync(phase, ct) is null) return;
        var blobs = _baseBlobs;
        var result = await Load.ForDurationAsync(phase, options.Writers, options.Duration, async sequence =>
        {
            var manifest = Manifest(blobs.Config, blobs.ConfigSize, blobs.Layer,
                sequence.ToString(System.Globalization.CultureInfo.InvariantCulture));
            return await client.PutManifestAsync(phase, ManifestRepo, $"m{sequence}", manifest, ct);
        }, ct);
        recorder.Add(Group, "push.manifests.per_s", $"push distinct manifests (by tag), {options.Writers} workers",
            result.PerSecond, "manifests/s", true);
        recorder.AddLatency(Group, "push.manifests", "push manifest", result.Latencies);
    }

    private async Task ManifestReadsAsync(CancellationToken ct)
    {
        using (var setup = recorder.Phase("reads.setup"))
        {
            if (await BaseManifestAsync(setup, ct) is null) return;
            // Warm-up: open the connections and let both sides' code paths warm.
            var warm = TimeSpan.FromSeconds(options.Quick ? 0.3 : 1);
            await Load.ForDurationAsync(setup, options.Readers, warm,
                _ => client.ManifestAsync(setup, HttpMethod.Get, ManifestRepo, "latest", ct), ct);
        }
        foreach (var method in new[] { HttpMethod.Head, HttpMethod.Get })
        {
            var name = method.Method.ToLowerInvariant();
            using var phase = recorder.Phase($"manifest.{name}");
            var result = await Load.ForDurationAsync(phase, options.Readers, options.Duration,
                _ => client.ManifestAsync(phase, method, ManifestRepo, "latest", ct), ct);
            recorder.Add(Group, $"manifest.{name}.per_s", $"manifest {method.Method} by tag, {options.Readers} connections",
                result.PerSecond, "req/s", true);
            recorder.AddLatency(Group, $"manifest.{name}", $"manifest {method.Method}", result.Latencies);
        }
    }

    private async Task TagsAsync(CancellationToken ct)
    {
        byte[] manifest;
        using (var setup = recorder.Phase("tags.setup"))
        {
            if (await PushBaseBlobsAsync(setup, TagRepo, ct) is not { } blobs) return;
            manifest = Manifest(blobs.Config, blobs.ConfigSize, blobs.Layer, null);
        }
        var created = 0;
        foreach (var count in options.TagCounts)
        {
            using (var phase = recorder.Phase($"tags.create.{count}"))
            {
                var from = created;
                var result = await Load.ForCountAsync(phase, options.Writers, count - from,
                    sequence => client.PutManifestAsync(phase, TagRepo, $"t{from + sequence:D6}", manifest, ct), ct);
                created = count;
                recorder.Add(Group, $"tags.create.{count}.per_s",
                    $"tag one manifest under {from}..{count} ({options.Writers} workers)", result.PerSecond, "tags/s", true);
                if (result.Failed > 0) continue;
            }
            using (var phase = recorder.Phase($"tags.list.{count}"))
            {
                var latencies = await Load.RepeatAsync(phase, 5, 500, options.LatencyTime, async () =>
                {
                    var list = await client.ListAllAsync(phase, $"/v2/{TagRepo}/tags/list?n={count}", "tags", true, ct);
                    if (list is not { } l) return false;
                    if (l.Entries == count) return true;
                    phase.Error($"tags list returned {l.Entries} tags in {l.Pages} pages, expected {count}");
                    return false;
                }, ct);
                recorder.AddLatency(Group, $"tags.list.{count}", $"tags list of {count} tags (all pages)", latencies);
            }
        }
    }

    private async Task CatalogAsync(CancellationToken ct)
    {
        var repositories = options.Repositories;
        using (var phase = recorder.Phase("catalog.create"))
        {
            var result = await Load.ForCountAsync(phase, options.Writers, repositories, async sequence =>
            {
                var repo = $"bench/catalog/r{sequence:D6}";
                var config = Encoding.UTF8.GetBytes($$"""{"bench":"{{repo}}"}""");
                var digest = Prng.Digest(config);
                if (!await client.PushSmallAsync(phase, repo, config, digest, ct)) return false;
                return await client.PutManifestAsync(phase, repo, "latest",
                    Manifest(digest, config.Length, null, null, "application/vnd.oci.image.config.v1+json"), ct);
            }, ct);
            recorder.Add(Group, "catalog.create.per_s",
                $"create repositories (blob + manifest each, {options.Writers} workers)", result.PerSecond, "repos/s", true);
            if (result.Failed > 0) return;
        }
        using (var phase = recorder.Phase("catalog.first"))
        {
            var latencies = await Load.RepeatAsync(phase, 10, 1000, options.LatencyTime, async () =>
            {
                var list = await client.ListAllAsync(phase, "/v2/_catalog?n=100", "repositories", false, ct);
                if (list is not { } l) return false;
                if (l.Entries == 100) return true;
                phase.Error($"catalog first page returned {l.Entries} entries, expected 100");
                return false;
            }, ct);
            recorder.AddLatency(Group, "catalog.first100", $"catalog first page ?n=100 of {repositories}+ repos", latencies);
        }
        using (var phase = recorder.Phase("catalog.walk"))
        {
            var pages = 0;
            var latencies = await Load.RepeatAsync(phase, 3, 200, options.LatencyTime, async () =>
            {
                var list = await client.ListAllAsync(phase, "/v2/_catalog?n=1000", "repositories", true, ct);
                if (list is not { } l) return false;
                pages = l.Pages;
                if (l.Entries >= repositories) return true;
                phase.Error($"catalog walk returned {l.Entries} repositories in {l.Pages} pages, expected {repositories}+");
                return false;
            }, ct);
            recorder.AddLatency(Group, "catalog.walk", $"catalog full walk ?n=1000 + Link ({pages} pages)", latencies);
        }
    }
}
