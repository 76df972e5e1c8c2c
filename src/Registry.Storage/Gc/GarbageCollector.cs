using System.Diagnostics;
using Registry.Storage.Blobs;
using Registry.Storage.Metadata;
using Registry.Storage.Model;

namespace Registry.Storage.Gc;

/// <summary>What a run collects; see docs/storage.md, "Garbage collection".</summary>
public sealed record GcSettings(TimeSpan GracePeriod, TimeSpan? UntaggedAfter, IReadOnlyList<CleanupPolicy> Policies,
    TimeSpan UploadExpiry);

/// <summary>
/// Online mark and sweep. Per repository, in this order: tags the cleanup policies delete; manifests no longer
/// reachable (only with <see cref="GcSettings.UntaggedAfter"/>); links older than the grace period that no manifest of
/// the repository references. Then, registry-wide: blobs no repository links and no manifest is or references
/// (tombstoned in the metadata transaction that decides, files deleted after it commits, tombstones cleared); files
/// the metadata never recorded, older than the grace period; expired upload sessions, and upload files without a
/// session and temporary files older than the upload expiry (before that they may be writes in flight). Nothing here pauses pushes or pulls: each deciding transaction is
/// as short as one repository's (or one batch of blobs'), and <see cref="BlobPins"/> keeps pushes of a digest and its
/// sweep apart (across replicas when the pins are shared). The caller runs one collection at a time (across replicas: it
/// holds the <c>gc</c> lease).
/// </summary>
public sealed class GarbageCollector(IManifestStore manifestStore, ILinkStore links, IUploadStore uploads, IGarbageCollectionStore store, IBlobStore blobs,
    IBlobPins pins, TimeProvider time)
{
    private const int BlobBatch = 256;
    private const int ManifestBatch = 500;

    public async Task<GcReport> CollectAsync(GcSettings settings, bool dryRun, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        var report = new GcReport { DryRun = dryRun };
        var now = time.GetUtcNow();
        var linkedBefore = now - settings.GracePeriod;
        // Sweeps a stopped run (another replica's, or this one's before a restart) left half done.
        if (!dryRun) await FinishTombstonesAsync(report, ct);

        var repositories = await store.ListAllRepositoriesAsync(ct);
        report.Repositories = repositories.Count;
        var untaggedBefore = settings.UntaggedAfter is { } after ? now - after : (DateTimeOffset?)null;
        var deletedTags = new Dictionary<RepositoryName, IReadOnlyCollection<Tag>>();
        foreach (var repository in repositories)
        {
            var tags = CleanupPolicy.TagsToDelete(settings.Policies, repository,
                await store.ListTagRecordsAsync(repository, ct), now);
            if (dryRun) deletedTags[repository] = tags.Select(t => t.Name).ToList();
            foreach (var tag in tags)
            {
                if (!dryRun && !await manifestStore.DeleteTagAsync(repository, tag.Name, time.GetUtcNow(), ct)) continue;
                report.SweptTags++;
                report.Add($"tag {repository}:{tag.Name}");
            }
            if (dryRun) continue;

            var (reachable, unreachable) = await store.MarkManifestsAsync(repository, untaggedBefore, [], ct);
            var manifests = new List<Digest>();
            if (untaggedBefore is { } cutoff)
                // In batches: each deciding transaction (which marks the repository again) stays short for the pushes
                // waiting behind it.
                foreach (var batch in unreachable.Chunk(ManifestBatch))
                    manifests.AddRange(await store.SweepManifestsAsync(repository, cutoff, batch, time.GetUtcNow(), ct));
            report.MarkedManifests += reachable + unreachable.Count - manifests.Count;
            foreach (var digest in manifests) Swept(report, "manifest", repository, digest);
            foreach (var digest in await store.SweepLinksAsync(repository, linkedBefore, dryRun: false, ct))
                Swept(report, "link", repository, digest);
        }

        if (dryRun)
        {
            var plan = await store.PlanAsync(deletedTags, untaggedBefore, linkedBefore, ct);
            foreach (var repository in plan.Repositories)
            {
                report.MarkedManifests += repository.ReachableManifests;
                foreach (var digest in repository.Manifests) Swept(report, "manifest", repository.Repository, digest);
                foreach (var digest in repository.Links) Swept(report, "link", repository.Repository, digest);
            }
            foreach (var blob in plan.Blobs)
            {
                report.SweptBlobs++;
                Reclaimed(report, WouldFree(await blobs.OpenAsync(blob.Digest, ct), blob.Size));
                report.Add($"blob {blob.Digest}");
            }
        }
        else
        {
            await SweepBlobsAsync(report, ct);
        }
        await SweepOrphanFilesAsync(report, linkedBefore, dryRun, ct);
        // Temporary and session-less upload files are in-flight writes until they are as old as a session may get.
        await SweepUploadsAsync(report, now - settings.UploadExpiry, now - settings.UploadExpiry, dryRun, ct);
        report.MarkedBlobs = (await store.ListRecordedDigestsAsync(ct)).Count - (dryRun ? report.SweptBlobs : 0);
        report.Duration = clock.Elapsed;
        return report;
    }

    /// <summary>What deleting <paramref name="content"/> of <paramref name="size"/> bytes would free (a dry run's count).</summary>
    private static DeletedBlob WouldFree(BlobContent? content, long size) =>
        content?.Inline == true ? new DeletedBlob(0, size) : new DeletedBlob(size);

    private static void Reclaimed(GcReport report, DeletedBlob? deleted)
    {
        report.BytesReclaimed += deleted?.Bytes ?? 0;
        report.InlineBytesReclaimed += deleted?.InlineBytes ?? 0;
    }

    private static void Swept(GcReport report, string kind, RepositoryName repository, Digest digest)
    {
        if (kind == "manifest") report.SweptManifests++;
        else report.SweptLinks++;
        report.Add($"{kind} {repository}@{digest}");
    }

    private async Task SweepBlobsAsync(GcReport report, CancellationToken ct)
    {
        var candidates = await store.ListUnreferencedBlobsAsync(ct);
        foreach (var batch in candidates.Select(b => b.Digest).Chunk(BlobBatch))
        {
            var taken = await pins.BeginSweepAsync(batch, ct);
            report.SkippedInUse += batch.Length - taken.Count;
            try
            {
                // The decision: still unreferenced, in the transaction that removes the row and writes the tombstone.
                if (taken.Count == 0) continue;
                var tombstoned = await store.TombstoneBlobsAsync(taken, time.GetUtcNow(), ct);
                var gone = new List<Digest>(tombstoned.Count);
                try
                {
                    foreach (var blob in tombstoned)
                    {
                        Reclaimed(report, await blobs.DeleteAsync(blob.Digest, CancellationToken.None));
                        report.SweptBlobs++;
                        report.Add($"blob {blob.Digest}");
                        gone.Add(blob.Digest);
                    }
                }
                finally
                {
                    // A file that could not be deleted keeps its tombstone: the next start finishes it (unless a push
                    // recorded the blob again meanwhile, see FinishTombstonesAsync).
                    await store.ClearTombstonesAsync(gone, CancellationToken.None);
                }
            }
            finally
            {
                await pins.EndSweepAsync(taken, CancellationToken.None);
            }
        }
    }

    /// <summary>Files in the content store that no blob row records: a push that was killed between publishing and recording.</summary>
    private async Task SweepOrphanFilesAsync(GcReport report, DateTimeOffset writtenBefore, bool dryRun, CancellationToken ct)
    {
        var recorded = await store.ListRecordedDigestsAsync(ct);
        var orphans = await blobs.EnumerateBlobsAsync(ct)
            .Where(d => !recorded.Contains(d) && blobs.WrittenAt(d) is { } at && at < writtenBefore).ToListAsync(ct);
        foreach (var batch in orphans.Chunk(BlobBatch))
        {
            var taken = dryRun ? batch : await pins.BeginSweepAsync(batch, ct);
            report.SkippedInUse += batch.Length - taken.Count;
            try
            {
                foreach (var digest in taken)
                {
                    // Recorded since the listing (a push pinned, published, linked and let go): not an orphan.
                    if (await links.GetBlobSizeAsync(digest, ct) is not null) continue;
                    var deleted = dryRun
                        ? await blobs.OpenAsync(digest, ct) is { } content ? WouldFree(content, content.Length) : null
                        : await blobs.DeleteAsync(digest, ct);
                    if (deleted is null) continue;
                    report.SweptOrphanFiles++;
                    Reclaimed(report, deleted);
                    report.Add($"blob {digest} (unrecorded file)");
                }
            }
            finally
            {
                if (!dryRun) await pins.EndSweepAsync(taken, CancellationToken.None);
            }
        }
    }

    private async Task SweepUploadsAsync(GcReport report, DateTimeOffset startedBefore, DateTimeOffset writtenBefore,
        bool dryRun, CancellationToken ct)
    {
        var expired = await uploads.ListUploadsStartedBeforeAsync(startedBefore, ct);
        report.ExpiredUploads = expired.Count;
        if (!dryRun)
            foreach (var id in expired)
            {
                await blobs.CancelUploadAsync(id, ct);
                await uploads.DeleteUploadAsync(id, ct);
            }
        foreach (var id in blobs.ListUploadsWrittenBefore(writtenBefore))
        {
            if (await uploads.GetUploadAsync(id, ct) is not null) continue;
            report.OrphanUploadFiles++;
            if (!dryRun) await blobs.CancelUploadAsync(id, ct);
        }
        if (!dryRun)
        {
            var (files, bytes) = blobs.PurgeTemp(writtenBefore);
            report.TempFiles = files;
            report.UploadBytesReclaimed += bytes;
        }
    }

    /// <summary>
    /// Finishes sweeps a stopped process left half done: the files of tombstoned blobs that are still not recorded are
    /// deleted and the tombstones cleared. Each digest is taken through the pins like any sweep, so a push of it on any
    /// replica waits, and a tombstone another replica is sweeping right now is left to it. Runs at start-up and at the
    /// start of every run; returns how many files it deleted.
    /// </summary>
    public async Task<int> FinishTombstonesAsync(CancellationToken ct) => await FinishTombstonesAsync(null, ct);

    private async Task<int> FinishTombstonesAsync(GcReport? report, CancellationToken ct)
    {
        var tombstones = await store.ListTombstonesAsync(ct);
        var finished = 0;
        foreach (var batch in tombstones.Chunk(BlobBatch))
        {
            var taken = await pins.BeginSweepAsync(batch, ct);
            try
            {
                foreach (var digest in taken)
                {
                    // Recorded again since (a push found the file a failed deletion left, and linked it): live, keep it.
                    if (await links.GetBlobSizeAsync(digest, ct) is not null) continue;
                    var deleted = await blobs.DeleteAsync(digest, ct);
                    finished++;
                    if (report is null || deleted is null) continue;
                    report.SweptBlobs++;
                    Reclaimed(report, deleted);
                    report.Add($"blob {digest}");
                }
                await store.ClearTombstonesAsync(taken.ToList(), ct);
            }
            finally
            {
                await pins.EndSweepAsync(taken, CancellationToken.None);
            }
        }
        return finished;
    }
}
