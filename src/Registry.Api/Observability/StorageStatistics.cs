using Registry.Storage.Metadata;
using Registry.Storage.Model;

namespace Registry.Api.Observability;

/// <summary>
/// The store's counts for the gauges, so a scrape never queries the database: read once after start-up, then again
/// after each committed change, at most once per <see cref="MinimumInterval"/> (counting every row of a large store
/// on every push would cost more than the push).
/// </summary>
public sealed class StorageStatistics(IMetadataStore store, TimeProvider time, ILogger<StorageStatistics> logger)
    : BackgroundService
{
    public static readonly TimeSpan MinimumInterval = TimeSpan.FromSeconds(2);

    private volatile StoreStatistics? _current;

    /// <summary>The latest snapshot; null until the first one is read.</summary>
    public StoreStatistics? Current => _current;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // Off the start-up path: the first request does not wait for a count of the whole store.
        await Task.Yield();
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var changed = store.WaitForChangeAsync(stoppingToken);
                _current = await store.GetStatisticsAsync(stoppingToken);
                await Task.Delay(MinimumInterval, time, stoppingToken);
                await changed;
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                logger.LogWarning(e, "Reading the storage statistics failed; will retry");
                try
                {
                    await Task.Delay(MinimumInterval, time, stoppingToken);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }
}
