using System.Buffers;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Registry.Bench;

/// <summary>
/// The CI-shaped phases (issue #13): a runner farm pulling a new base image at once (<c>ci-pull</c>), and a pipeline
/// pushing many small artifacts (<c>ci-push</c>).
/// </summary>
internal sealed class CiBenchmarks(Options options, RegistryClient client, Recorder recorder)
{
    private const string Group = "registry";
    private const string ImageRepo = "bench/ci/base";
    private const string ArtifactRepo = "bench/ci/artifacts";
    private const string LayerMediaType = "application/vnd.oci.image.layer.v1.tar+gzip";
    private const string ConfigMediaType = "application/vnd.oci.image.config.v1+json";

    /// <summary>Layer sizes of the base image, largest first as in a typical distro base + runtime + app stack.</summary>
    private static readonly int[] LayerMiB = [30, 12, 6, 3, 2];

    /// <summary>Downloads one pull runs at once: docker's and containerd's default (max-concurrent-downloads 3).</summary>
    private const int DownloadsPerPull = 3;

    public async Task PullFarmAsync(CancellationToken ct)
    {
        var pulls = options.CiPulls;
        var rounds = options.Quick ? 1 : 3;
        // --quick divides the layers by 8 (54 MiB -> ~7 MiB per pull).
        var layers = LayerMiB.Select(m => options.Quick ? (m << 20) / 8 : m << 20).ToArray();
        var blobs = new List<(string Digest, long Size)>();
        using (var setup = recorder.Phase("ci.pull.setup"))
        {
            for (var i = 0; i < layers.Length; i++)
            {
                var seed = 500UL + (ulong)i;
                var digest = Prng.Digest(seed, layers[i]);
                if (!await client.PushMonolithicAsync(setup, ImageRepo, new GeneratedContent(seed, 0, layers[i]), digest, ct))
                    return;
                blobs.Add((digest, layers[i]));
            }
            var config = Config(blobs.Select(b => b.Digest), 0);
            var configDigest = Prng.Digest(config);
            if (!await client.PushSmallAsync(setup, ImageRepo, config, configDigest, ct)) return;
            var manifest = Manifest(configDigest, config.Length, blobs, "base");
            if (!await client.PutManifestAsync(setup, ImageRepo, "latest", manifest, ct)) return;
        }
        var imageBytes = blobs.Sum(b => b.Size);
        var walls = new List<double>();
        var perPull = new Latencies();
        long totalBytes = 0;
        using (var phase = recorder.Phase("ci.pull"))
        {
            for (var round = 0; round < rounds; round++)
            {
                long roundBytes = 0;
                var start = Stopwatch.GetTimestamp();
                var tasks = Enumerable.Range(0, pulls).Select(_ => Task.Run(async () =>
                {
                    var t0 = Stopwatch.GetTimestamp();
                    var read = await PullImageAsync(phase, ct);
                    if (read is not { } n) return;
                    if (n < imageBytes)
                    {
                        phase.Error($"a pull read {n} bytes of layers, expected {imageBytes}");
                        return;
                    }
                    lock (perPull) perPull.Add(Stopwatch.GetTimestamp() - t0);
                    Interlocked.Add(ref roundBytes, n);
                }, ct)).ToArray();
                await Task.WhenAll(tasks);
                if (phase.Record.Errors > 0) return;
                walls.Add(Stopwatch.GetElapsedTime(start).TotalSeconds);
                totalBytes = roundBytes;
            }
        }
        var wall = walls.Order().ElementAt(walls.Count / 2);
        var note = $"median of {walls.Count}; 5 layers, {DownloadsPerPull} downloads per pull";
        recorder.Add(Group, "ci.pull.wall_s", $"ci: {pulls} pulls of a {imageBytes >> 20} MiB image at once, all done",
            wall, "s", false, note);
        recorder.Add(Group, "ci.pull.MBps", $"ci: {pulls} pulls at once, aggregate", totalBytes / 1e6 / wall, "MB/s", true);
        recorder.AddLatency(Group, "ci.pull.per_pull", $"ci: one of {pulls} pulls (manifest, config, layers)", perPull);
    }

    /// <summary>One client's pull: the manifest by tag, then config and layers, <see cref="DownloadsPerPull"/> at a time.</summary>
    private async Task<long?> PullImageAsync(Phase phase, CancellationToken ct)
    {
        var manifest = await client.GetManifestAsync(phase, ImageRepo, "latest", ct);
        if (manifest is null) return null;
        List<(string Digest, long Size)> layers = [];
        string config;
        using (var json = JsonDocument.Parse(manifest))
        {
            config = json.RootElement.GetProperty("config").GetProperty("digest").GetString()!;
            foreach (var layer in json.RootElement.GetProperty("layers").EnumerateArray())
                layers.Add((layer.GetProperty("digest").GetString()!, layer.GetProperty("size").GetInt64()));
        }
        if (await client.PullAsync(phase, ImageRepo, config, null, ct) is null) return null;
        long bytes = 0;
        var failed = false;
        using var slots = new SemaphoreSlim(DownloadsPerPull);
        await Task.WhenAll(layers.Select(async layer =>
        {
            await slots.WaitAsync(ct);
            try
            {
                var read = await client.PullAsync(phase, ImageRepo, layer.Digest, null, ct);
                if (read != layer.Size)
                {
                    if (read is not null) phase.Error($"GET layer {layer.Digest} returned {read} bytes, expected {layer.Size}");
                    failed = true;
                    return;
                }
                Interlocked.Add(ref bytes, read.Value);
            }
            finally
            {
                slots.Release();
            }
        }));
        return failed ? null : bytes;
    }

    public async Task PushArtifactsAsync(CancellationToken ct)
    {
        var count = options.CiArtifacts;
        var rounds = options.Quick ? 1 : 3;
        var rates = new List<double>();
        var latencies = new Latencies();
        using (var phase = recorder.Phase("ci.push"))
        {
            for (var round = 0; round < rounds; round++)
            {
                var result = await Load.ForCountAsync(phase, options.Writers, count, async sequence =>
                {
                    var index = round * count + sequence; // distinct content across rounds
                    var layer = Prng.Small(9000, index, 10 * 1024);
                    var layerDigest = Prng.Digest(layer);
                    var config = Config([layerDigest], index);
                    var configDigest = Prng.Digest(config);
                    if (!await client.PushSmallAsync(phase, ArtifactRepo, config, configDigest, ct)) return false;
                    if (!await client.PushSmallAsync(phase, ArtifactRepo, layer, layerDigest, ct)) return false;
                    var manifest = Manifest(configDigest, config.Length, [(layerDigest, layer.Length)],
                        index.ToString(CultureInfo.InvariantCulture));
                    return await client.PutManifestAsync(phase, ArtifactRepo, $"a{index:D6}", manifest, ct);
                }, ct);
                if (result.Failed > 0) return;
                rates.Add(result.PerSecond);
                latencies.AddRange(result.Latencies);
            }
        }
        recorder.Add(Group, "ci.push.per_s", $"ci: push {count} small artifacts, {options.Writers} workers",
            rates.Order().ElementAt(rates.Count / 2), "artifacts/s", true,
            $"median of {rates.Count}; 1 KiB config + 10 KiB layer + manifest each");
        recorder.AddLatency(Group, "ci.push.artifact", "ci: push one small artifact (3 requests)", latencies);
    }

    /// <summary>An image config of exactly 1 KiB naming the layers, made distinct by <paramref name="index"/>.</summary>
    private static byte[] Config(IEnumerable<string> diffIds, long index)
    {
        var head = "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Labels\":{\"bench.index\":\""
                   + index.ToString(CultureInfo.InvariantCulture) + "\"}},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":["
                   + string.Join(',', diffIds.Select(d => $"\"{d}\"")) + "]},\"comment\":\"";
        const string tail = "\"}";
        var padding = Math.Max(0, 1024 - head.Length - tail.Length);
        return Encoding.UTF8.GetBytes(head + new string('x', padding) + tail);
    }

    private static byte[] Manifest(string configDigest, int configSize, IEnumerable<(string Digest, long Size)> layers,
        string annotation)
    {
        var buffer = new ArrayBufferWriter<byte>(1024);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteNumber("schemaVersion", 2);
            writer.WriteString("mediaType", RegistryClient.ManifestMediaType);
            writer.WriteStartObject("config");
            writer.WriteString("mediaType", ConfigMediaType);
            writer.WriteString("digest", configDigest);
            writer.WriteNumber("size", configSize);
            writer.WriteEndObject();
            writer.WriteStartArray("layers");
            foreach (var (digest, size) in layers)
            {
                writer.WriteStartObject();
                writer.WriteString("mediaType", LayerMediaType);
                writer.WriteString("digest", digest);
                writer.WriteNumber("size", size);
                writer.WriteEndObject();
            }
            writer.WriteEndArray();
            writer.WriteStartObject("annotations");
            writer.WriteString("org.example.bench.ci", annotation);
            writer.WriteEndObject();
            writer.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }
}
