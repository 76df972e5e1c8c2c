using Registry.Storage.Model;

namespace Registry.Storage.Gc;

/// <summary>
/// Keeps garbage collection and pushes of the same digest apart, in the one process that owns the storage. A push
/// pins the digest from before it looks at the content store (is the blob there? publish it) until its metadata
/// commit (link, manifest row) is durable; the sweeper takes a digest only when nobody holds a pin, and a pin asked
/// for while the digest is being swept waits until its file is gone (the push then writes the content again). So a
/// push never answers 201 for a file that a sweep decided to delete.
/// </summary>
public sealed class BlobPins
{
    private readonly object _gate = new();
    private readonly Dictionary<Digest, int> _pins = new();
    private readonly Dictionary<Digest, TaskCompletionSource> _sweeping = new();

    /// <summary>Pins <paramref name="digest"/> until the returned lease is disposed.</summary>
    public async ValueTask<Lease> PinAsync(Digest digest, CancellationToken ct)
    {
        while (true)
        {
            Task wait;
            lock (_gate)
            {
                if (!_sweeping.TryGetValue(digest, out var sweep))
                {
                    _pins[digest] = _pins.GetValueOrDefault(digest) + 1;
                    return new Lease(this, digest);
                }
                wait = sweep.Task;
            }
            await wait.WaitAsync(ct);
        }
    }

    private void Unpin(Digest digest)
    {
        lock (_gate)
        {
            if (_pins[digest] == 1) _pins.Remove(digest);
            else _pins[digest]--;
        }
    }

    /// <summary>Marks the digests nobody has pinned as being swept and returns them; pins on them wait from now on.</summary>
    public IReadOnlyList<Digest> BeginSweep(IEnumerable<Digest> digests)
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
        return taken;
    }

    /// <summary>Ends the sweep of digests taken by <see cref="BeginSweep"/>: waiting pins go on.</summary>
    public void EndSweep(IEnumerable<Digest> digests)
    {
        var done = new List<TaskCompletionSource>();
        lock (_gate)
        {
            foreach (var digest in digests)
                if (_sweeping.Remove(digest, out var sweep)) done.Add(sweep);
        }
        foreach (var sweep in done) sweep.TrySetResult();
    }

    /// <summary>Number of digests pinned right now (for tests and diagnostics).</summary>
    public int PinnedCount
    {
        get { lock (_gate) return _pins.Count; }
    }

    public readonly struct Lease(BlobPins pins, Digest digest) : IDisposable
    {
        public void Dispose() => pins?.Unpin(digest);
    }
}
