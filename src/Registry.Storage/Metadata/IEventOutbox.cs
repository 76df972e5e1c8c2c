using Registry.Storage.Model;

namespace Registry.Storage.Metadata;

/// <summary>
/// The outbox: every change of <see cref="IManifestStore"/> and <see cref="ILinkStore"/> appends its events
/// (repository creation, manifest push, tag creation, update and deletion, manifest and blob deletion) in the same
/// transaction, so the events are exactly the changes. Consumers page with <see cref="ReadEventsAsync"/> from the last
/// id they saw: ids MUST increase in commit order, so that a reader at "id > cursor" never skips an event that
/// commits later with a smaller id (with several writers a plain sequence does not give that).
/// </summary>
public interface IEventOutbox
{
    /// <summary>Events with an id above <paramref name="afterId"/>, oldest first, at most <paramref name="limit"/>.</summary>
    ValueTask<IReadOnlyList<RegistryEvent>> ReadEventsAsync(long afterId, int limit, CancellationToken ct);

    /// <summary>The newest event's id, 0 when there is none.</summary>
    ValueTask<long> LatestEventIdAsync(CancellationToken ct);

    /// <summary>
    /// Completes when the next change is committed (a hint to read events again, not a guarantee of one). A shared
    /// store MUST also complete it for changes other processes commit.
    /// </summary>
    Task WaitForChangeAsync(CancellationToken ct);

    /// <summary>Removes events older than <paramref name="before"/>; returns how many.</summary>
    ValueTask<int> PruneEventsAsync(DateTimeOffset before, CancellationToken ct);
}
