namespace Registry.Storage.Metadata;

/// <summary>
/// Durable cursors of outbox consumers (webhooks): the id of the last event each has acknowledged. Writes MUST go
/// through the store's own writer (one transaction each, serialised with every other write) and MUST NOT count as a
/// change for <see cref="IEventOutbox.WaitForChangeAsync"/>, or every acknowledgement would wake every consumer.
/// </summary>
public interface IDeliveryCursors
{
    /// <summary>The cursor named <paramref name="name"/>, or null when it was never set.</summary>
    ValueTask<long?> GetCursorAsync(string name, CancellationToken ct);

    ValueTask SetCursorAsync(string name, long lastEventId, CancellationToken ct);
}
