using Microsoft.Extensions.Options;
using Registry.Api.Configuration;
using Registry.Storage.Gc;
using Registry.Storage.Metadata;

namespace Registry.Api.Storage;

/// <summary>
/// Runs garbage collection one run at a time, for the schedule, the admin endpoint and the <c>gc</c> command: each run
/// is recorded in the metadata (running, then its report) and logged. One at a time across replicas too: a run holds
/// the <c>gc</c> lease (<see cref="ILeaseStore"/>; in memory with SQLite), renewed while it runs; a run that loses
/// it (this process stalled past the time to live and another replica took over) stops.
/// </summary>
internal sealed class GcRunner(GarbageCollector collector, IGarbageCollectionStore store, ILeaseStore leases,
    IOptions<RegistryOptions> options, TimeProvider time, ILogger<GcRunner> logger, IHostApplicationLifetime lifetime,
    Observability.RegistryMetrics? metrics = null)
{
    /// <summary>The lease a run holds.</summary>
    public const string LeaseName = "gc";

    private static readonly TimeSpan LeaseTtl = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan RenewEvery = TimeSpan.FromSeconds(10);

    private readonly SemaphoreSlim _one = new(1, 1);
    private readonly string _holder = $"{Environment.MachineName}/{Environment.ProcessId}/{Guid.NewGuid():N}";
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
    /// Starts a run in the background and returns its id; if one is running already (here or on another replica),
    /// returns that one's id (null when another replica holds the lease but its run is not visible yet) and false.
    /// </summary>
    public async Task<(long? Id, bool Started)> StartAsync(bool dryRun, string trigger)
    {
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
            if (!await leases.TryAcquireLeaseAsync(LeaseName, _holder, LeaseTtl, CancellationToken.None))
            {
                _one.Release();
                return (await RunningElsewhereAsync(), false);
            }
            id = await BeginAsync(dryRun, trigger, CancellationToken.None);
        }
        catch
        {
            _one.Release();
            throw;
        }
        _ = Task.Run(() => ExecuteAsync(id, dryRun, lifetime.ApplicationStopping));
        return (id, true);
    }

    /// <summary>
    /// Runs one collection to its end (waiting for a run in progress first, on this replica or another) and returns its
    /// record.
    /// </summary>
    public async Task<GcRunRecord> RunAsync(bool dryRun, string trigger, CancellationToken ct)
    {
        await _one.WaitAsync(ct);
        long id;
        try
        {
            while (!await leases.TryAcquireLeaseAsync(LeaseName, _holder, LeaseTtl, ct))
                await Task.Delay(TimeSpan.FromSeconds(1), time, ct);
            id = await BeginAsync(dryRun, trigger, ct);
        }
        catch
        {
            _one.Release();
            throw;
        }
        await ExecuteAsync(id, dryRun, ct);
        return (await store.GetGcRunAsync(id, CancellationToken.None))!;
    }

    /// <summary>
    /// Marks the runs that processes which stopped left "running" as interrupted, if no replica is running one now
    /// (this one holds neither <see cref="_one"/> nor the lease otherwise); returns how many, or null when a run is live.
    /// </summary>
    public async Task<int?> InterruptAbandonedRunsAsync(CancellationToken ct)
    {
        if (!await _one.WaitAsync(0, ct)) return null;
        try
        {
            if (!await leases.TryAcquireLeaseAsync(LeaseName, _holder, LeaseTtl, ct)) return null;
            try
            {
                return await store.InterruptGcRunsAsync(time.GetUtcNow(), ct);
            }
            finally
            {
                await leases.ReleaseLeaseAsync(LeaseName, _holder, CancellationToken.None);
            }
        }
        finally
        {
            _one.Release();
        }
    }

    /// <summary>With the lease: what is still "running" was left by a stopped holder; then records the new run.</summary>
    private async Task<long> BeginAsync(bool dryRun, string trigger, CancellationToken ct)
    {
        try
        {
            var interrupted = await store.InterruptGcRunsAsync(time.GetUtcNow(), ct);
            if (interrupted > 0) logger.LogWarning("Marked {Count} garbage collection runs of stopped processes as interrupted", interrupted);
            var id = await store.StartGcRunAsync(dryRun, trigger, time.GetUtcNow(), ct);
            Interlocked.Exchange(ref _runningId, id);
            return id;
        }
        catch
        {
            await leases.ReleaseLeaseAsync(LeaseName, _holder, CancellationToken.None);
            throw;
        }
    }

    private async Task<long?> RunningElsewhereAsync() =>
        (await store.ListGcRunsAsync(10, CancellationToken.None)).FirstOrDefault(r => r.Status == GcRunStatus.Running)?.Id;

    /// <summary>Runs the collection recorded as <paramref name="id"/>; the caller holds <see cref="_one"/> and the lease.</summary>
    private async Task ExecuteAsync(long id, bool dryRun, CancellationToken ct)
    {
        using var lost = CancellationTokenSource.CreateLinkedTokenSource(ct);
        using var stopRenewing = new CancellationTokenSource();
        var renewal = RenewAsync(lost, stopRenewing.Token);
        try
        {
            var report = await collector.CollectAsync(Settings, dryRun, lost.Token);
            // Counted before the run shows as finished: whoever sees it finished sees it in the metrics too.
            if (!dryRun)
                metrics?.GcRunCompleted(succeeded: true, report.SweptBlobs + report.SweptOrphanFiles,
                    report.BytesReclaimed + report.InlineBytesReclaimed + report.UploadBytesReclaimed);
            await store.PruneGcRunsAsync(options.Value.Gc.KeepReports, CancellationToken.None);
            await store.FinishGcRunAsync(id, GcRunStatus.Succeeded, report.ToJson(), time.GetUtcNow(), CancellationToken.None);
            logger.LogInformation("Garbage collection run {Id}: {Report}", id, report);
        }
        catch (Exception e)
        {
            var why = e is OperationCanceledException && !ct.IsCancellationRequested
                ? "the run lost the gc lease (this replica could not renew it in time) and stopped"
                : e is OperationCanceledException ? "the registry stopped during the run" : e.Message;
            logger.LogError(e, "Garbage collection run {Id} failed: {Reason}", id, why);
            if (!dryRun) metrics?.GcRunCompleted(succeeded: false, 0, 0);
            try
            {
                await store.FinishGcRunAsync(id, GcRunStatus.Failed, ErrorJson(why), time.GetUtcNow(), CancellationToken.None);
            }
            catch (Exception again)
            {
                logger.LogError(again, "Could not record the failure of garbage collection run {Id}", id);
            }
        }
        finally
        {
            await stopRenewing.CancelAsync();
            await renewal;
            try
            {
                await leases.ReleaseLeaseAsync(LeaseName, _holder, CancellationToken.None);
            }
            catch (Exception e)
            {
                // It expires on its own.
                logger.LogWarning(e, "Could not release the gc lease after run {Id}", id);
            }
            _one.Release();
        }
    }

    /// <summary>Renews the lease while the run goes on; cancels <paramref name="lost"/> when it cannot be kept.</summary>
    private async Task RenewAsync(CancellationTokenSource lost, CancellationToken stop)
    {
        var renewed = time.GetUtcNow();
        try
        {
            while (true)
            {
                await Task.Delay(RenewEvery, time, stop);
                try
                {
                    if (await leases.TryAcquireLeaseAsync(LeaseName, _holder, LeaseTtl, stop))
                    {
                        renewed = time.GetUtcNow();
                        continue;
                    }
                    logger.LogError("Another replica holds the gc lease: stopping this run");
                    await lost.CancelAsync();
                    return;
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    // Keep trying while the lease may still be ours; past its time to live another replica may run.
                    if (time.GetUtcNow() - renewed < LeaseTtl - RenewEvery)
                    {
                        logger.LogWarning(e, "Could not renew the gc lease; will retry");
                        continue;
                    }
                    logger.LogError(e, "Could not renew the gc lease in time: stopping this run");
                    await lost.CancelAsync();
                    return;
                }
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
    }

    private static string ErrorJson(string message)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var writer = new System.Text.Json.Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("error", message);
            writer.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
    }
}
