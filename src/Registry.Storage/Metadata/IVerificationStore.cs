using Registry.Storage.Model;

namespace Registry.Storage.Metadata;

/// <summary>What verification (<see cref="StorageVerifier"/>) and monitoring read of the metadata as a whole.</summary>
public interface IVerificationStore
{
    /// <summary>
    /// One consistent snapshot of the store's counts. It MAY read every row (slow on a large store): callers cache it
    /// rather than asking per request.
    /// </summary>
    ValueTask<StoreStatistics> GetStatisticsAsync(CancellationToken ct);

    /// <summary>Every manifest of every repository (for verification).</summary>
    IAsyncEnumerable<(RepositoryName Repository, Digest Digest)> ListManifestsAsync(CancellationToken ct);

    /// <summary>The store's own consistency checks; empty when all is well.</summary>
    ValueTask<IReadOnlyList<string>> CheckIntegrityAsync(CancellationToken ct);

    /// <summary>Every blob digest the metadata knows (manifests' bytes included), with its recorded size.</summary>
    IAsyncEnumerable<(Digest Digest, long Size)> ListBlobsAsync(CancellationToken ct);
}
