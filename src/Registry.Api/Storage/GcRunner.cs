using Microsoft.Extensions.Options;
using Registry.Api.Configuration;
using Registry.Storage.Gc;
using Registry.Storage.Metadata;

namespace Registry.Api.Storage;

/// <summary>
/// Runs garbage collection one run at a time, for the schedule, the admin endpoint and the <c>gc</c> command: each run
/// is recorded in the metadata (running, then its report) and logged.
/// </summary>
internal sealed class GcRunner(GarbageCollector collector, IGarbageCollectionStore store, IOptions<RegistryOptions> options,
    TimeProvider time, ILogger<GcRunner> logger, IHostApplicationLifetime lifetime,
    Observability.RegistryMetrics? metrics = null)
{
    private readonly SemaphoreSlim _one = new(1, 1);
    private long _runningId;

    /// <summary>The settings of a run, from <c>Registry:Gc</c> and <c>Registry:Uploads:Expiry</c>.</summary>
    public GcSettings Settings
    {
        get
        {
            var gc = options.Value.Gc;
            return new GcSettings(gc.GracePeriod, gc.UntaggedAfter,
                gc.Policies.Select(p => new CleanupPolicy(p.Repositories, p.Tags, p.KeepLast, p.OlderThan, p.Protect)).ToList(),
                options.Value.Uploads.Expiry);
        }
    }

    /// <summary>
    /// Why collection is refused on this configuration, or null when it may run. With shared metadata (PostgreSQL)
    /// other replicas may be pushing: a blob one of them has just published and not yet linked is protected only by
    /// that replica's in-process pins, so a run here could delete it. Until runs hold a lease and pins are shared,
    /// collection is off there (schedule, endpoint and command).
    /// </summary>
    public string? Unavailable => options.Value.Metadata.IsPostgres
        ? "garbage collection is not available with Registry:Metadata:Kind=postgres yet: replicas sharing the metadata " +
          "protect the blobs they are pushing only in their own process, so a run could delete another replica's push"
        : null;

    /// <summary>
    /// Starts a run in the background and returns its id; if one is running already, returns that one's id and false.
    /// </summary>
    public async Task<(long Id, bool Started)> StartAsync(bool dryRun, string trigger)
    {
        if (Unavailable is { } why) throw new InvalidOperationException(why);
        if (!await _one.WaitAsync(0))
        {
            var runningId = Interlocked.Read(ref _runningId);
            // A run whose report is recorded is over (it only lets go of the lock now): the caller need not retry.
            if ((await store.GetGcRunAsync(runningId, CancellationToken.None))?.Status == GcRunStatus.Running)
                return (runningId, false);
            await _one.WaitAsync();
        }
        long id;
        try
        {
            id = await store.StartGcRunAsync(dryRun, trigger, time.GetUtcNow(), CancellationToken.None);
            Interlocked.Exchange(ref _runningId, id);
        }
        catch
        {
            _one.Release();
            throw;
        }
        _ = Task.Run(() => ExecuteAsync(id, dryRun, lifetime.ApplicationStopping));
        return (id, true);
    }

    /// <summary>Runs one collection to its end (waiting for a run in progress first) and returns its record.</summary>
    public async Task<GcRunRecord> RunAsync(bool dryRun, string trigger, CancellationToken ct)
    {
        if (Unavailable is { } why) throw new InvalidOperationException(why);
        await _one.WaitAsync(ct);
        long id;
        try
        {
            id = await store.StartGcRunAsync(dryRun, trigger, time.GetUtcNow(), ct);
        }
        catch
        {
            _one.Release();
            throw;
        }
        Interlocked.Exchange(ref _runningId, id);
        await ExecuteAsync(id, dryRun, ct);
        return (await store.GetGcRunAsync(id, CancellationToken.None))!;
    }

    /// <summary>Runs the collection recorded as <paramref name="id"/>; the caller holds <see cref="_one"/>.</summary>
    private async Task ExecuteAsync(long id, bool dryRun, CancellationToken ct)
    {
        try
        {
            var report = await collector.CollectAsync(Settings, dryRun, ct);
            await store.PruneGcRunsAsync(options.Value.Gc.KeepReports, CancellationToken.None);
            await store.FinishGcRunAsync(id, GcRunStatus.Succeeded, report.ToJson(), time.GetUtcNow(), CancellationToken.None);
            logger.LogInformation("Garbage collection run {Id}: {Report}", id, report);
            if (!dryRun)
                metrics?.GcRunCompleted(succeeded: true, report.SweptBlobs + report.SweptOrphanFiles,
                    report.BytesReclaimed + report.UploadBytesReclaimed);
        }
        catch (Exception e)
        {
            logger.LogError(e, "Garbage collection run {Id} failed", id);
            if (!dryRun) metrics?.GcRunCompleted(succeeded: false, 0, 0);
            try
            {
                await store.FinishGcRunAsync(id, GcRunStatus.Failed, ErrorJson(e), time.GetUtcNow(), CancellationToken.None);
            }
            catch (Exception again)
            {
                logger.LogError(again, "Could not record the failure of garbage collection run {Id}", id);
            }
        }
        finally
        {
            _one.Release();
        }
    }

    private static string ErrorJson(Exception e)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var writer = new System.Text.Json.Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("error", e is OperationCanceledException ? "the registry stopped during the run" : e.Message);
            writer.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
    }
}
