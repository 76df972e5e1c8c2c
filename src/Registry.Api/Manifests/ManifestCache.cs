using System.Collections.Concurrent;
using Registry.Storage.Blobs;
using Registry.Storage.Model;

namespace Registry.Api.Manifests;

/// <summary>
/// Manifest bytes by digest, kept in memory: content under a digest never changes, so nothing ever needs
/// invalidating. Bounded by total size; when full it starts over (manifests are small and re-read cheaply).
/// </summary>
internal sealed class ManifestCache(IBlobStore blobs)
{
    private const long MaxBytes = 32 * 1024 * 1024;
    private readonly ConcurrentDictionary<Digest, byte[]> _entries = new();
    private long _bytes;

    /// <summary>The manifest's bytes, or null when the blob store does not hold them.</summary>
    public async ValueTask<byte[]?> GetAsync(Digest digest, CancellationToken ct)
    {
        if (_entries.TryGetValue(digest, out var cached)) return cached;
        if (await blobs.OpenAsync(digest, ct) is not { } content) return null;
        byte[] bytes;
        await using (var stream = content.OpenStream())
        {
            bytes = new byte[content.Length];
            await stream.ReadExactlyAsync(bytes, ct);
        }
        if (Interlocked.Add(ref _bytes, bytes.Length) > MaxBytes)
        {
            _entries.Clear();
            Interlocked.Exchange(ref _bytes, bytes.Length);
        }
        _entries[digest] = bytes;
        return bytes;
    }
}
