using Registry.Storage.Gc;
using Registry.Storage.Metadata.Postgres;
using Registry.Storage.Model;
using Registry.Tests.Stack;
using static Registry.Tests.Contracts.Sample;

namespace Registry.Tests.Contracts;

/// <summary>
/// The pins of an implementation: the first pins it opens and every later one as another replica sees them (with
/// one process owning the storage, the same pins).
/// </summary>
public interface IBlobPinsBackend : IAsyncDisposable
{
    Task<IBlobPins> OpenAsync();
}

/// <summary>In-process pins (SQLite): one process owns the storage, so every replica is the same pins.</summary>
public sealed class LocalPinsBackend : IBlobPinsBackend
{
    private readonly BlobPins _pins = new();

    public Task<IBlobPins> OpenAsync() => Task.FromResult<IBlobPins>(_pins);

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}

/// <summary>Pins in PostgreSQL: each one opened is another replica's, on a store of its own over one database.</summary>
public sealed class PostgresPinsBackend : IBlobPinsBackend
{
    private readonly List<PostgresMetadataStore> _stores = [];
    private readonly List<PostgresBlobPins> _pins = [];
    private string? _connectionString;

    public Task<IBlobPins> OpenAsync() => OpenAsync(null, null).ContinueWith(t => (IBlobPins)t.Result);

    /// <summary>A replica's pins with the given time to live and renewal period (<see cref="Timeout.InfiniteTimeSpan"/>: never renewed).</summary>
    public async Task<PostgresBlobPins> OpenAsync(TimeSpan? ttl, TimeSpan? renewEvery)
    {
        _connectionString ??= await PostgresStack.CreateDatabaseAsync();
        var store = await PostgresMetadataStore.OpenAsync(_connectionString);
        _stores.Add(store);
        var pins = new PostgresBlobPins(store, $"replica-{_pins.Count}-{Guid.NewGuid():N}", ttl, renewEvery);
        _pins.Add(pins);
        return pins;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var pins in _pins) await pins.DisposeAsync();
        foreach (var store in _stores) await store.DisposeAsync();
    }
}

/// <summary>
/// What every <see cref="IBlobPins"/> promises: a sweep never takes a pinned digest, a pin never holds a digest being
/// swept (it waits for the sweep's end), and of a pin and a sweep asked for at once exactly one holds.
/// </summary>
public abstract class BlobPinsContract : IAsyncLifetime
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    protected IBlobPinsBackend Backend { get; private set; } = null!;

    /// <summary>The pins of one replica.</summary>
    protected IBlobPins Pins { get; private set; } = null!;

    protected abstract IBlobPinsBackend CreateBackend();

    /// <summary>The pins of another replica over the same metadata.</summary>
    protected Task<IBlobPins> OpenAnotherAsync() => Backend.OpenAsync();

    public async Task InitializeAsync()
    {
        Backend = CreateBackend();
        Pins = await Backend.OpenAsync();
    }

    public async Task DisposeAsync() => await Backend.DisposeAsync();

    protected static Digest NewDigest() => DigestOf(Guid.NewGuid().ToString());

    /// <summary>Waits until <paramref name="pin"/> completes, failing after a patience far beyond any sweep here.</summary>
    protected static async Task<BlobPin> Completes(Task<BlobPin> pin) => await pin.WaitAsync(Patience);

    [Fact]
    public async Task A_digest_nobody_pins_is_taken_for_a_sweep()
    {
        var digest = NewDigest();

        var taken = await Pins.BeginSweepAsync([digest], default);

        taken.Should().Equal(digest);
    }

    [Fact]
    public async Task A_digest_pinned_on_one_replica_is_not_taken_by_a_sweep_on_another()
    {
        var (pinned, free) = (NewDigest(), NewDigest());
        var sweeper = await OpenAnotherAsync();
        await using var pin = await Pins.PinAsync(pinned, default);

        var taken = await sweeper.BeginSweepAsync([pinned, free], default);

        taken.Should().Equal(free);
    }

    [Fact]
    public async Task A_digest_is_taken_only_once_every_pin_on_it_is_dropped()
    {
        var digest = NewDigest();
        var sweeper = await OpenAnotherAsync();
        var first = await Pins.PinAsync(digest, default);
        var second = await (await OpenAnotherAsync()).PinAsync(digest, default);

        await first.DisposeAsync();
        var whileOneHolds = await sweeper.BeginSweepAsync([digest], default);
        await second.DisposeAsync();
        var afterBoth = await sweeper.BeginSweepAsync([digest], default);

        (whileOneHolds, afterBoth).Should().BeEquivalentTo((Array.Empty<Digest>(), new[] { digest }));
    }

    [Fact]
    public async Task A_pin_asked_for_while_another_replica_sweeps_the_digest_waits_until_the_sweep_ends()
    {
        var digest = NewDigest();
        var sweeper = await OpenAnotherAsync();
        (await sweeper.BeginSweepAsync([digest], default)).Should().Equal(digest);

        var pin = Pins.PinAsync(digest, default).AsTask();
        await Task.Delay(300);
        var waitedDuringSweep = !pin.IsCompleted;
        await sweeper.EndSweepAsync([digest], default);
        await using var held = await Completes(pin);

        waitedDuringSweep.Should().BeTrue("the sweep held the digest");
        held.Digest.Should().Be(digest);
    }

    [Fact]
    public async Task A_digest_another_replica_is_sweeping_is_not_taken_by_a_second_sweep()
    {
        var digest = NewDigest();
        var first = await OpenAnotherAsync();
        (await first.BeginSweepAsync([digest], default)).Should().Equal(digest);

        var second = await Pins.BeginSweepAsync([digest], default);

        second.Should().BeEmpty();
    }

    [Fact]
    public async Task A_pin_of_another_digest_does_not_wait_for_a_sweep()
    {
        var (swept, other) = (NewDigest(), NewDigest());
        var sweeper = await OpenAnotherAsync();
        (await sweeper.BeginSweepAsync([swept], default)).Should().Equal(swept);

        await using var pin = await Completes(Pins.PinAsync(other, default).AsTask());

        pin.Digest.Should().Be(other);
    }

    [Fact]
    public async Task Of_pins_and_sweeps_of_the_same_digests_asked_for_at_once_exactly_one_holds_each_digest()
    {
        var digests = Enumerable.Range(0, 40).Select(_ => NewDigest()).ToArray();
        var sweeper = await OpenAnotherAsync();

        // Every digest is pinned and swept at the same time, each pin and the sweeps of single digests racing.
        var pins = digests.Select(d => Task.Run(() => Pins.PinAsync(d, default).AsTask())).ToArray();
        var sweeps = digests.Select(d => Task.Run(async () => (await sweeper.BeginSweepAsync([d], default)).Count == 1)).ToArray();
        var taken = await Task.WhenAll(sweeps);
        await Task.Delay(300);
        var pinnedWhileSwept = digests.Where((_, i) => taken[i] && pins[i].IsCompleted).ToList();
        await sweeper.EndSweepAsync(digests.Where((_, i) => taken[i]).ToList(), default);
        foreach (var pin in await Task.WhenAll(pins.Select(Completes))) await pin.DisposeAsync();

        pinnedWhileSwept.Should().BeEmpty("a sweep and a pin never both hold a digest");
    }
}

public sealed class LocalBlobPinsContract : BlobPinsContract
{
    protected override IBlobPinsBackend CreateBackend() => new LocalPinsBackend();
}

public sealed class PostgresBlobPinsContract : BlobPinsContract
{
    protected override IBlobPinsBackend CreateBackend() => new PostgresPinsBackend();

    private PostgresPinsBackend Replicas => (PostgresPinsBackend)Backend;

    private static async Task<IReadOnlyList<Digest>> EventuallyTakenAsync(IBlobPins sweeper, Digest digest)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            var taken = await sweeper.BeginSweepAsync([digest], default);
            if (taken.Count > 0 || DateTime.UtcNow > deadline) return taken;
            await Task.Delay(100);
        }
    }

    [Fact]
    public async Task The_pins_of_a_replica_that_was_killed_stop_counting_after_their_time_to_live()
    {
        var digest = NewDigest();
        // Never renewed and never disposed: what a replica killed with kill -9 leaves in the database.
        var killed = await Replicas.OpenAsync(TimeSpan.FromSeconds(1), Timeout.InfiniteTimeSpan);
        await killed.PinAsync(digest, default);

        var atOnce = await Pins.BeginSweepAsync([digest], default);
        var later = await EventuallyTakenAsync(Pins, digest);

        (atOnce, later).Should().BeEquivalentTo((Array.Empty<Digest>(), new[] { digest }));
    }

    [Fact]
    public async Task A_pin_renewed_while_held_outlives_its_time_to_live()
    {
        var digest = NewDigest();
        var holder = await Replicas.OpenAsync(TimeSpan.FromSeconds(1), TimeSpan.FromMilliseconds(200));
        await using var pin = await holder.PinAsync(digest, default);

        await Task.Delay(TimeSpan.FromSeconds(2.5));
        var taken = await Pins.BeginSweepAsync([digest], default);

        taken.Should().BeEmpty();
    }

    [Fact]
    public async Task A_replica_that_stops_drops_its_pins_and_sweeps_at_once()
    {
        var (pinned, swept) = (NewDigest(), NewDigest());
        var stopping = await Replicas.OpenAsync(null, null);
        await stopping.PinAsync(pinned, default);
        (await stopping.BeginSweepAsync([swept], default)).Should().Equal(swept);

        await stopping.DisposeAsync();
        var taken = await Pins.BeginSweepAsync([pinned], default);
        await using var pin = await Completes(Pins.PinAsync(swept, default).AsTask());

        taken.Should().Equal(pinned);
    }

    [Fact]
    public async Task A_sweep_of_a_replica_that_was_killed_stops_holding_back_pins_after_its_time_to_live()
    {
        var digest = NewDigest();
        var killed = await Replicas.OpenAsync(TimeSpan.FromSeconds(1), Timeout.InfiniteTimeSpan);
        (await killed.BeginSweepAsync([digest], default)).Should().Equal(digest);

        await using var pin = await Completes(Pins.PinAsync(digest, default).AsTask());

        pin.Digest.Should().Be(digest);
    }
}
