using System.Collections.Concurrent;
using Npgsql;
using Registry.Storage.Gc;
using Registry.Storage.Model;

namespace Registry.Storage.Metadata.Postgres;

/// <summary>
/// <see cref="IBlobPins"/> that every replica sharing the PostgreSQL database sees: pins and sweeps are rows with a
/// lease (holder = this process, expiry renewed every <see cref="RenewEvery"/> while held), so the pins of a replica
/// that was killed stop counting <see cref="Ttl"/> after its last renewal. A pin asked for while its digest is being
/// swept polls until the sweep row is gone. Costs per pinned push: one transaction to pin (its statement and the
/// commit: two round trips) and one statement to drop it.
/// </summary>
public sealed class PostgresBlobPins : IBlobPins, IAsyncDisposable
{
    private readonly PostgresMetadataStore _store;
    private readonly ConcurrentDictionary<long, byte> _pins = new();
    private readonly ConcurrentDictionary<Digest, byte> _sweeps = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _renewal;
    private long _next;
    private int _disposed;

    /// <param name="store">The shared store.</param>
    /// <param name="holder">This process, unique among every replica and every start of it.</param>
    /// <param name="ttl">How long a pin or sweep counts after its last renewal (default 60 s).</param>
    /// <param name="renewEvery">How often they are renewed (default 10 s); MUST be well within <paramref name="ttl"/>.</param>
    public PostgresBlobPins(PostgresMetadataStore store, string holder, TimeSpan? ttl = null, TimeSpan? renewEvery = null)
    {
        _store = store;
        Holder = holder;
        Ttl = ttl ?? TimeSpan.FromSeconds(60);
        RenewEvery = renewEvery ?? TimeSpan.FromSeconds(10);
        // An infinite period never renews (a test's stand-in for a replica that was killed).
        _renewal = RenewEvery == Timeout.InfiniteTimeSpan ? Task.CompletedTask : RenewAsync(_stop.Token);
    }

    public string Holder { get; }

    public TimeSpan Ttl { get; }

    public TimeSpan RenewEvery { get; }

    /// <summary>How often a pin waiting for a sweep looks again.</summary>
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(50);

    public async ValueTask<BlobPin> PinAsync(Digest digest, CancellationToken ct)
    {
        var id = Interlocked.Increment(ref _next);
        // Renewed from now on: a pin row may be committed before this method returns.
        _pins[id] = 0;
        try
        {
            while (!await _store.TryInsertPinAsync(Holder, id, digest, Ttl, ct))
                await Task.Delay(Poll, ct);
            return new BlobPin(this, digest, id);
        }
        catch
        {
            _pins.TryRemove(id, out _);
            throw;
        }
    }

    public async ValueTask UnpinAsync(BlobPin pin)
    {
        if (!_pins.TryRemove(pin.Id, out _)) return;
        try
        {
            await _store.DeletePinAsync(Holder, pin.Id, CancellationToken.None);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or ObjectDisposedException or InvalidOperationException)
        {
            // No longer renewed: the row expires after the time to live.
        }
    }

    public async ValueTask<IReadOnlyList<Digest>> BeginSweepAsync(IReadOnlyCollection<Digest> digests, CancellationToken ct)
    {
        if (digests.Count == 0) return [];
        // Renewed from before the insert, as pins are; digests not taken are dropped again at once.
        var wanted = digests.Where(d => _sweeps.TryAdd(d, 0)).ToList();
        try
        {
            var taken = await _store.TryInsertSweepsAsync(Holder, wanted, Ttl, ct);
            var set = taken.ToHashSet();
            foreach (var digest in wanted.Where(d => !set.Contains(d))) _sweeps.TryRemove(digest, out _);
            return taken;
        }
        catch
        {
            foreach (var digest in wanted) _sweeps.TryRemove(digest, out _);
            throw;
        }
    }

    public async ValueTask EndSweepAsync(IReadOnlyCollection<Digest> digests, CancellationToken ct)
    {
        if (digests.Count == 0) return;
        foreach (var digest in digests) _sweeps.TryRemove(digest, out _);
        await _store.DeleteSweepsAsync(Holder, digests, ct);
    }

    private async Task RenewAsync(CancellationToken ct)
    {
        using var timer = new PeriodicTimer(RenewEvery);
        try
        {
            while (await timer.WaitForNextTickAsync(ct))
            {
                try
                {
                    await _store.RenewPinsAsync(Holder, _pins.Keys.ToArray(), _sweeps.Keys.Select(d => d.ToString()).ToArray(),
                        Ttl, ct);
                }
                catch (Exception e) when (e is NpgsqlException or TimeoutException)
                {
                    // The database is unreachable: so are the sweeps that would look at these pins. Try again next tick.
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    /// <summary>Stops renewing and drops this process's pins and sweeps (a process that is killed has them expire).</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        await _stop.CancelAsync();
        await _renewal;
        _stop.Dispose();
        try
        {
            await _store.DeleteHolderPinsAsync(Holder, CancellationToken.None);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or ObjectDisposedException)
        {
        }
    }
}
