using System.Collections.Concurrent;
using System.Text.Json;
using Registry.Storage.Blobs;
using Registry.Storage.Model;

namespace Registry.Api.Extensions.TagDetails;

internal sealed record Platform(string? Os, string? Architecture, string? Variant)
{
    public void WriteTo(Utf8JsonWriter writer)
    {
        writer.WriteStartObject();
        if (Os is not null) writer.WriteString("os", Os);
        if (Architecture is not null) writer.WriteString("architecture", Architecture);
        if (Variant is not null) writer.WriteString("variant", Variant);
        writer.WriteEndObject();
    }
}

/// <summary>
/// What tag details shows of a manifest: its total size (the manifest and every distinct blob and child manifest it
/// reaches, each counted once), its platforms and its config's creation time.
/// </summary>
internal sealed record ManifestSummary(long TotalSize, IReadOnlyList<Platform> Platforms, string? Created);

/// <summary>Bytes of stored documents one request has read to compute summaries (cached summaries cost nothing).</summary>
internal sealed class ParseBudget(long limit)
{
    public long Spent { get; private set; }

    public bool Exhausted => Spent >= limit;

    public void Spend(long bytes) => Spent += bytes;
}

/// <summary>
/// Summaries computed from the stored manifest and config bytes. Content under a digest never changes, so a summary
/// is cached by digest (bounded; cleared when full).
/// </summary>
internal sealed class ManifestSummaries(IBlobStore blobs)
{
    private const int MaxCached = 10_000;
    private const int MaxDocumentSize = 4 * 1024 * 1024;
    private readonly ConcurrentDictionary<Digest, ManifestSummary> _cache = new();

    public async Task<ManifestSummary> GetAsync(Digest digest, ParseBudget budget, CancellationToken ct)
    {
        if (_cache.TryGetValue(digest, out var cached)) return cached;
        var counted = new HashSet<Digest>();
        var summary = await SummariseAsync(digest, counted, depth: 0, budget, ct);
        // A summary cut short by the budget (an index whose children did not all fit) is not kept.
        if (budget.Exhausted) return summary;
        if (_cache.Count >= MaxCached) _cache.Clear();
        _cache[digest] = summary;
        return summary;
    }

    private async Task<ManifestSummary> SummariseAsync(Digest digest, HashSet<Digest> counted, int depth,
        ParseBudget budget, CancellationToken ct)
    {
        using var document = await ReadJsonAsync(digest, budget, ct);
        long total = 0;
        if (counted.Add(digest)) total += await SizeAsync(digest, ct);
        if (document is null) return new ManifestSummary(total, [], null);
        var root = document.RootElement;

        var platforms = new List<Platform>();
        string? created = null;
        if (root.TryGetProperty("manifests", out var children) && children.ValueKind == JsonValueKind.Array)
        {
            foreach (var child in children.EnumerateArray())
            {
                if (child.TryGetProperty("platform", out var platform)) platforms.Add(ReadPlatform(platform));
                if (depth < 2 && !budget.Exhausted && ReadDigest(child) is { } childDigest && !counted.Contains(childDigest))
                    total += (await SummariseAsync(childDigest, counted, depth + 1, budget, ct)).TotalSize;
            }
        }
        else
        {
            if (root.TryGetProperty("config", out var config) && ReadDigest(config) is { } configDigest)
            {
                total += CountOnce(config, configDigest, counted);
                using var configDocument = await ReadJsonAsync(configDigest, budget, ct);
                if (configDocument?.RootElement is { ValueKind: JsonValueKind.Object } configRoot)
                {
                    var platform = ReadPlatform(configRoot);
                    if (platform.Os is not null || platform.Architecture is not null) platforms.Add(platform);
                    if (configRoot.TryGetProperty("created", out var c) && c.ValueKind == JsonValueKind.String)
                        created = c.GetString();
                }
            }
            if (root.TryGetProperty("layers", out var layers) && layers.ValueKind == JsonValueKind.Array)
                foreach (var layer in layers.EnumerateArray())
                    if (ReadDigest(layer) is { } layerDigest) total += CountOnce(layer, layerDigest, counted);
        }
        return new ManifestSummary(total, platforms, created);
    }

    private static long CountOnce(JsonElement descriptor, Digest digest, HashSet<Digest> counted) =>
        counted.Add(digest) && descriptor.TryGetProperty("size", out var size) && size.TryGetInt64(out var value) ? value : 0;

    private static Digest? ReadDigest(JsonElement descriptor) =>
        descriptor.ValueKind == JsonValueKind.Object && descriptor.TryGetProperty("digest", out var d)
        && d.ValueKind == JsonValueKind.String && Digest.TryParse(d.GetString(), out var digest) ? digest : null;

    private static Platform ReadPlatform(JsonElement element) => new(
        String(element, "os"), String(element, "architecture"), String(element, "variant"));

    private static string? String(JsonElement element, string name) =>
        element.ValueKind == JsonValueKind.Object && element.TryGetProperty(name, out var value)
        && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    private async Task<long> SizeAsync(Digest digest, CancellationToken ct) =>
        (await blobs.OpenAsync(digest, ct))?.Length ?? 0;

    private async Task<JsonDocument?> ReadJsonAsync(Digest digest, ParseBudget budget, CancellationToken ct)
    {
        if (await blobs.OpenAsync(digest, ct) is not { Length: <= MaxDocumentSize } content) return null;
        budget.Spend(content.Length);
        await using var stream = content.OpenStream();
        try
        {
            return await JsonDocument.ParseAsync(stream, cancellationToken: ct);
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
