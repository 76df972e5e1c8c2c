using Microsoft.Extensions.Options;
using Registry.Api.Configuration;
using Registry.Storage;
using Registry.Storage.Blobs;
using Registry.Storage.Metadata;
using Registry.Storage.Model;

namespace Registry.Api.Storage;

/// <summary>
/// Expires upload sessions that were never finished, prunes the event outbox, and at start-up removes what a crash can leave behind: upload
/// files that no session owns (a crash between the two steps of opening a session) and half-written manifests and
/// single-request blobs (temporary files).
/// </summary>
internal sealed class StorageJanitor(IBlobStore blobs, IMetadataStore metadata, StorageLayout layout,
    IOptions<RegistryOptions> options, TimeProvider time, ILogger<StorageJanitor> logger) : BackgroundService
{
    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        layout.ClearTemp();
        await RemoveOrphanFilesAsync(cancellationToken);
        await base.StartAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.Uploads.PurgeInterval, time);
        do
        {
            try
            {
                await ExpireAsync(stoppingToken);
                await metadata.PruneEventsAsync(time.GetUtcNow() - options.Value.Events.Retention, stoppingToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogWarning(e, "Expiring upload sessions or pruning events failed; will retry");
            }
        } while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    /// <summary>Removes every session that started longer ago than the expiry (with purging off: none; dry run: logs them).</summary>
    public async Task<int> ExpireAsync(CancellationToken ct)
    {
        var uploads = options.Value.Uploads;
        if (!uploads.PurgeEnabled) return 0;
        var cutoff = time.GetUtcNow() - uploads.Expiry;
        var expired = await metadata.ListUploadsStartedBeforeAsync(cutoff, ct);
        if (uploads.PurgeDryRun)
        {
            if (expired.Count > 0) logger.LogInformation("Dry run: would expire {Count} upload sessions", expired.Count);
            return 0;
        }
        foreach (var id in expired)
        {
            await blobs.CancelUploadAsync(id, ct);
            await metadata.DeleteUploadAsync(id, ct);
        }
        if (expired.Count > 0) logger.LogInformation("Expired {Count} upload sessions", expired.Count);
        return expired.Count;
    }

    private async Task RemoveOrphanFilesAsync(CancellationToken ct)
    {
        if (!Directory.Exists(layout.UploadsRoot)) return;
        foreach (var file in Directory.EnumerateFiles(layout.UploadsRoot))
        {
            if (!UploadId.TryParse(Path.GetFileName(file), out var id) || await metadata.GetUploadAsync(id, ct) is null)
                File.Delete(file);
        }
    }
}
