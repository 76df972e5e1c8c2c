namespace Registry.Storage.Metadata;

/// <summary>
/// Leases for a store that one process owns (SQLite): the same contract as the shared ones, kept in memory, so the
/// jobs that take a lease run the same code whatever the metadata store.
/// </summary>
public sealed class LocalLeaseStore(TimeProvider time) : ILeaseStore
{
    private readonly Dictionary<string, (string Holder, DateTimeOffset Expires)> _leases = new(StringComparer.Ordinal);

    public ValueTask<bool> TryAcquireLeaseAsync(string name, string holder, TimeSpan ttl, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        lock (_leases)
        {
            if (_leases.TryGetValue(name, out var lease) && lease.Holder != holder && lease.Expires > now)
                return ValueTask.FromResult(false);
            _leases[name] = (holder, now + ttl);
            return ValueTask.FromResult(true);
        }
    }

    public ValueTask ReleaseLeaseAsync(string name, string holder, CancellationToken ct)
    {
        lock (_leases)
            if (_leases.TryGetValue(name, out var lease) && lease.Holder == holder) _leases.Remove(name);
        return ValueTask.CompletedTask;
    }

    public ValueTask<string?> GetLeaseHolderAsync(string name, CancellationToken ct)
    {
        lock (_leases)
            return ValueTask.FromResult(_leases.TryGetValue(name, out var lease) && lease.Expires > time.GetUtcNow()
                ? lease.Holder : null);
    }
}
