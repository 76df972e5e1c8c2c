using Registry.Storage.Model;

namespace Registry.Storage.Gc;

/// <summary>
/// Pins in the one process that owns the storage (SQLite): <see cref="IBlobPins"/> kept in memory. Pins and sweeps end
/// with the process, which is what "stop counting after a bounded time" needs here.
/// </summary>
public sealed class BlobPins : IBlobPins
{
    private readonly object _gate = new();
    private readonly Dictionary<Digest, int> _pins = new();
    private readonly Dictionary<Digest, TaskCompletionSource> _sweeping = new();
    private long _next;

    public async ValueTask<BlobPin> PinAsync(Digest digest, CancellationToken ct)
    {
        while (true)
        {
            Task wait;
            lock (_gate)
            {
                if (!_sweeping.TryGetValue(digest, out var sweep))
                {
                    _pins[digest] = _pins.GetValueOrDefault(digest) + 1;
                    return new BlobPin(this, digest, ++_next);
                }
                wait = sweep.Task;
            }
            await wait.WaitAsync(ct);
        }
    }

    public ValueTask UnpinAsync(BlobPin pin)
    {
        lock (_gate)
        {
            if (_pins.TryGetValue(pin.Digest, out var count))
            {
                if (count == 1) _pins.Remove(pin.Digest);
                else _pins[pin.Digest] = count - 1;
            }
        }
        return ValueTask.CompletedTask;
    }

    public ValueTask<IReadOnlyList<Digest>> BeginSweepAsync(IReadOnlyCollection<Digest> digests, CancellationToken ct)
    {
        var taken = new List<Digest>();
        lock (_gate)
        {
            foreach (var digest in digests)
            {
                if (_pins.ContainsKey(digest) || _sweeping.ContainsKey(digest)) continue;
                _sweeping[digest] = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                taken.Add(digest);
            }
        }
        return ValueTask.FromResult<IReadOnlyList<Digest>>(taken);
    }

    public ValueTask EndSweepAsync(IReadOnlyCollection<Digest> digests, CancellationToken ct)
    {
        var done = new List<TaskCompletionSource>();
        lock (_gate)
        {
            foreach (var digest in digests)
                if (_sweeping.Remove(digest, out var sweep)) done.Add(sweep);
        }
        foreach (var sweep in done) sweep.TrySetResult();
        return ValueTask.CompletedTask;
    }

    /// <summary>Number of digests pinned right now (for tests and diagnostics).</summary>
    public int PinnedCount
    {
        get { lock (_gate) return _pins.Count; }
    }
}
