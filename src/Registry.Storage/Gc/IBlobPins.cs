using Registry.Storage.Model;

namespace Registry.Storage.Gc;

/// <summary>
/// Keeps garbage collection and pushes of the same digest apart, across every process that shares the metadata
/// (docs/storage.md, "The race, and how it is closed"). A push pins the digest from before it looks at the content
/// store (is the blob there? publish it) until its metadata commit (link, manifest row) is durable; a sweep takes a
/// digest only when nobody holds a pin on it, and a pin asked for while the digest is being swept waits until the sweep
/// of it ends (its file is gone, so the push writes the content again). So a push never answers 201 for a file that a
/// sweep decided to delete.
/// <para>
/// Implementations MUST make a pin visible to every sweep before <see cref="PinAsync"/> returns, and a sweep visible to
/// every pin before <see cref="BeginSweepAsync"/> returns; a pin and a sweep of the same digest MUST never both be held.
/// Pins and sweeps held by a process that died MUST stop counting after a bounded time.
/// </para>
/// </summary>
public interface IBlobPins
{
    /// <summary>Pins <paramref name="digest"/> until the returned pin is disposed; waits while the digest is being swept.</summary>
    ValueTask<BlobPin> PinAsync(Digest digest, CancellationToken ct);

    /// <summary>
    /// Marks the digests nobody has pinned (and nobody is sweeping) as being swept by this caller and returns them; pins
    /// on them wait from now until <see cref="EndSweepAsync"/>.
    /// </summary>
    ValueTask<IReadOnlyList<Digest>> BeginSweepAsync(IReadOnlyCollection<Digest> digests, CancellationToken ct);

    /// <summary>Ends the sweep of digests taken by <see cref="BeginSweepAsync"/>: waiting pins go on. Idempotent.</summary>
    ValueTask EndSweepAsync(IReadOnlyCollection<Digest> digests, CancellationToken ct);

    /// <summary>Drops a pin <see cref="PinAsync"/> gave. MUST NOT throw: a pin that cannot be dropped expires.</summary>
    ValueTask UnpinAsync(BlobPin pin);
}

/// <summary>A held pin (see <see cref="IBlobPins"/>); disposing it drops the pin.</summary>
public readonly struct BlobPin(IBlobPins pins, Digest digest, long id) : IAsyncDisposable
{
    public Digest Digest { get; } = digest;

    /// <summary>Which pin of its owner this is (several pins may hold one digest).</summary>
    public long Id { get; } = id;

    public ValueTask DisposeAsync() => pins?.UnpinAsync(this) ?? ValueTask.CompletedTask;
}
