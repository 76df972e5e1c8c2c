namespace Registry.Storage.Metadata;

/// <summary>
/// Named leases shared by every replica of one metadata store, so that a job that must run once across the
/// deployment (a garbage collection run, the webhook dispatcher) runs on one replica at a time. A lease is held by
/// one holder until it is released or its time to live passes without a renewal; the clock that decides expiry is
/// the store's own, so replicas with skewed clocks agree. Holders MUST renew well within the time to live and MUST
/// stop the job when a renewal fails.
/// </summary>
public interface ILeaseStore
{
    /// <summary>
    /// Takes the lease <paramref name="name"/> for <paramref name="holder"/>, or renews it when that holder already has
    /// it, for <paramref name="ttl"/> from now; false (and no change) while another holder's lease is unexpired.
    /// </summary>
    ValueTask<bool> TryAcquireLeaseAsync(string name, string holder, TimeSpan ttl, CancellationToken ct);

    /// <summary>Gives the lease up if <paramref name="holder"/> has it; a lease held by another is left alone.</summary>
    ValueTask ReleaseLeaseAsync(string name, string holder, CancellationToken ct);

    /// <summary>Who holds the lease now, or null when nobody does (never taken, released or expired).</summary>
    ValueTask<string?> GetLeaseHolderAsync(string name, CancellationToken ct);
}
