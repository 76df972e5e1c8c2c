using Registry.Storage.Metadata;
using Registry.Storage.Model;

namespace Registry.Api.Observability;

/// <summary>
/// The store's counts for the gauges, so a scrape never queries the database. Counting starts with the first scrape
/// (a registry nobody monitors never counts, and start-up never waits for a count of a large store), then repeats
/// in the background after each committed change, at most once per <see cref="MinimumInterval"/>: counting every
/// row of a large store on every push would cost more than the push.
/// </summary>
public sealed class StorageStatistics(IEventOutbox outbox, IVerificationStore store, TimeProvider time, IHostApplicationLifetime lifetime,
    ILogger<StorageStatistics> logger)
{
    public static readonly TimeSpan MinimumInterval = TimeSpan.FromSeconds(2);

    private volatile StoreStatistics? _current;
    private int _started;

    /// <summary>The latest snapshot; null until the first one is read (the first call starts the counting).</summary>
    public StoreStatistics? Current
    {
        get
        {
            if (Interlocked.Exchange(ref _started, 1) == 0)
                _ = Task.Run(() => RefreshLoopAsync(lifetime.ApplicationStopping));
            return _current;
        }
    }

    private async Task RefreshLoopAsync(CancellationToken stopping)
    {
        while (!stopping.IsCancellationRequested)
        {
            try
            {
                var changed = outbox.WaitForChangeAsync(stopping);
                _current = await store.GetStatisticsAsync(stopping);
                await Task.Delay(MinimumInterval, time, stopping);
                await changed;
            }
            catch (Exception) when (stopping.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                logger.LogWarning(e, "Reading the storage statistics failed; will retry");
                try
                {
                    await Task.Delay(MinimumInterval, time, stopping);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }
}
