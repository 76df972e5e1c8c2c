using Microsoft.Extensions.Options;
using Registry.Api.Configuration;
using Registry.Storage;
using Registry.Storage.Blobs;
using Registry.Storage.Gc;
using Registry.Storage.Metadata;
using Registry.Storage.Model;

namespace Registry.Api.Storage;

/// <summary>
/// The storage lifecycle of a running server. At start-up, before any request: takes the storage's shared lock,
/// finishes blob sweeps a stopped process left half done (tombstones), marks its interrupted runs, and removes what a
/// crash can leave behind (upload files that no session owns, half-written temporary files). Then every 10 minutes it
/// expires upload sessions and prunes the event outbox, and every <c>Registry:Gc:Interval</c> it runs garbage
/// collection, which purges expired sessions and stale files too.
/// </summary>
internal sealed class StorageJanitor(IBlobStore blobs, IUploadStore uploadStore, IEventOutbox outbox, IGarbageCollectionStore gcStore,
    GarbageCollector collector, GcRunner runner, StorageLayout layout, IOptions<RegistryOptions> options,
    TimeProvider time, ILogger<StorageJanitor> logger) : BackgroundService
{
    private FileStream? _lock;

    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        _lock = layout.TryLock(exclusive: false)
                ?? throw new InvalidOperationException(
                    $"the storage {layout.Root} is locked by an offline garbage collection (`gc`); wait for it to finish");
        layout.ClearTemp();
        await RemoveOrphanFilesAsync(cancellationToken);
        var finished = await collector.FinishTombstonesAsync(cancellationToken);
        if (finished > 0) logger.LogInformation("Finished the sweep of {Count} blobs left by a stopped process", finished);
        // Only when no replica is running one: a run another replica holds the gc lease for is not ours to mark.
        await runner.InterruptAbandonedRunsAsync(cancellationToken);
        await base.StartAsync(cancellationToken);
    }

    public override void Dispose()
    {
        _lock?.Dispose();
        base.Dispose();
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // Wakes for whichever comes first: upload purging (Registry:Uploads:PurgeInterval) or the GC schedule.
        var interval = options.Value.Gc.Interval;
        var purge = options.Value.Uploads.PurgeInterval;
        var period = interval > TimeSpan.Zero && interval < purge ? interval : purge;
        var nextGc = interval > TimeSpan.Zero ? time.GetUtcNow() + interval : DateTimeOffset.MaxValue;
        using var timer = new PeriodicTimer(period, time);
        do
        {
            try
            {
                await ExpireAsync(stoppingToken);
                await outbox.PruneEventsAsync(time.GetUtcNow() - options.Value.Events.Retention, stoppingToken);
                if (time.GetUtcNow() >= nextGc)
                {
                    nextGc = time.GetUtcNow() + interval;
                    await StartScheduledRunAsync(interval, stoppingToken);
                }
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogWarning(e, "Expiring upload sessions, pruning events or starting garbage collection failed; will retry");
            }
        } while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    /// <summary>
    /// Starts the scheduled run, unless another replica's schedule started one within the last half interval (each
    /// replica keeps the schedule; together they run about once per interval) or a run is in progress.
    /// </summary>
    private async Task StartScheduledRunAsync(TimeSpan interval, CancellationToken ct)
    {
        var since = time.GetUtcNow() - interval / 2;
        if ((await gcStore.ListGcRunsAsync(20, ct)).FirstOrDefault(r => r is { DryRun: false, Trigger: "schedule" } && r.StartedAt > since)
            is { } recent)
        {
            logger.LogInformation("Scheduled garbage collection skipped: run {Id} started at {Start}", recent.Id, recent.StartedAt);
            return;
        }
        var (id, started) = await runner.StartAsync(dryRun: false, trigger: "schedule");
        if (!started) logger.LogInformation("Scheduled garbage collection skipped: run {Id} is in progress", id);
    }

    /// <summary>Removes every session that started longer ago than the expiry (with purging off: none; dry run: logs them).</summary>
    public async Task<int> ExpireAsync(CancellationToken ct)
    {
        var uploads = options.Value.Uploads;
        if (!uploads.PurgeEnabled) return 0;
        var cutoff = time.GetUtcNow() - uploads.Expiry;
        var expired = await uploadStore.ListUploadsStartedBeforeAsync(cutoff, ct);
        if (uploads.PurgeDryRun)
        {
            if (expired.Count > 0) logger.LogInformation("Dry run: would expire {Count} upload sessions", expired.Count);
            return 0;
        }
        foreach (var id in expired)
        {
            await blobs.CancelUploadAsync(id, ct);
            await uploadStore.DeleteUploadAsync(id, ct);
        }
        if (expired.Count > 0) logger.LogInformation("Expired {Count} upload sessions", expired.Count);
        return expired.Count;
    }

    private async Task RemoveOrphanFilesAsync(CancellationToken ct)
    {
        if (!Directory.Exists(layout.UploadsRoot)) return;
        foreach (var file in Directory.EnumerateFiles(layout.UploadsRoot))
        {
            if (!UploadId.TryParse(Path.GetFileName(file), out var id) || await uploadStore.GetUploadAsync(id, ct) is null)
                File.Delete(file);
        }
    }
}
