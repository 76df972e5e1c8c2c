using System.Security.Cryptography;
using Registry.Storage.Blobs;
using Registry.Storage.Metadata;
using Registry.Storage.Model;

namespace Registry.Storage;

/// <summary>What <see cref="StorageVerifier"/> found: problems make the storage inconsistent; notes do not.</summary>
public sealed record VerifyReport(int BlobsHashed, int ManifestsChecked, IReadOnlyList<string> Problems,
    IReadOnlyList<string> Notes)
{
    public bool Consistent => Problems.Count == 0;
}

/// <summary>
/// Re-hashes every blob and checks the metadata against the blob store: what an operator runs after a crash, and what
/// the crash harness runs after every kill.
/// </summary>
public sealed class StorageVerifier(IBlobStore blobs, IVerificationStore metadata)
{
    public async Task<VerifyReport> VerifyAsync(CancellationToken ct)
    {
        var problems = new List<string>(await metadata.CheckIntegrityAsync(ct));
        var notes = new List<string>();

        var stored = new Dictionary<Digest, long>();
        var hashed = 0;
        await foreach (var digest in blobs.EnumerateBlobsAsync(ct))
        {
            if (await blobs.OpenAsync(digest, ct) is not { } content) continue;
            await using var stream = content.OpenStream();
            var actual = Digest.FromHash(digest.Algorithm,
                await CryptographicOperations.HashDataAsync(Digest.HashName(digest.Algorithm), stream, ct));
            hashed++;
            if (actual != digest) problems.Add($"blob {digest} holds content that hashes to {actual}");
            stored[digest] = content.Length;
        }

        var known = new HashSet<Digest>();
        await foreach (var (digest, size) in metadata.ListBlobsAsync(ct))
        {
            known.Add(digest);
            if (!stored.TryGetValue(digest, out var length)) problems.Add($"blob {digest} is recorded but missing from the store");
            else if (length != size) problems.Add($"blob {digest} is recorded with {size} bytes but holds {length}");
        }

        var manifests = 0;
        await foreach (var (repository, digest) in metadata.ListManifestsAsync(ct))
        {
            manifests++;
            if (!stored.ContainsKey(digest)) problems.Add($"manifest {repository}@{digest} has no content in the store");
        }

        var unreferenced = stored.Keys.Count(d => !known.Contains(d));
        if (unreferenced > 0)
            notes.Add($"{unreferenced} blob(s) in the store are not recorded (an interrupted push; garbage collection reclaims them)");
        return new VerifyReport(hashed, manifests, problems, notes);
    }
}
