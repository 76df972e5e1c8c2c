using Registry.Storage.Blobs.S3;
using Registry.Tests.Infrastructure;
using Registry.Tests.Stack;
using Xunit.Abstractions;
using static Registry.Tests.Gc.GcConcurrencyTests;

namespace Registry.Tests.Gc;

/// <summary>
/// <see cref="GcConcurrencyTests"/>'s workload on two replicas sharing one bucket (Ceph) and one PostgreSQL database:
/// a push acknowledged by one replica must survive the runs of the other, which sees it only through the shared pins
/// and the shared metadata. Short form here (6 s each); long form: <c>REGISTRY_GC_STRESS_SECONDS=300</c>.
/// </summary>
[Collection(CephCollection.Name)]
public sealed class ReplicaGcConcurrencyTests(CephStack ceph, ITestOutputHelper output)
{
    private static int Seconds => int.TryParse(Environment.GetEnvironmentVariable("REGISTRY_GC_STRESS_SECONDS"), out var s) ? s : 6;

    [Fact]
    public async Task Runs_on_one_replica_under_pushes_mounts_and_pulls_on_the_other_lose_no_acknowledged_object() =>
        await RunAsync(pushOnBoth: false, collectOnBoth: false);

    [Fact]
    public async Task Runs_and_pushes_on_both_replicas_lose_no_acknowledged_object() =>
        await RunAsync(pushOnBoth: true, collectOnBoth: true);

    private async Task RunAsync(bool pushOnBoth, bool collectOnBoth)
    {
        var s3 = ceph.NewSettings();
        var settings = ceph.RegistrySettings(s3);
        foreach (var (key, value) in Gc.Aggressive(("Registry:Gc:UntaggedAfter", "00:00:00"))) settings[key] = value;
        settings["Registry:Metadata:Kind"] = "postgres";
        settings["Registry:Metadata:ConnectionString"] = await PostgresStack.CreateDatabaseAsync();
        await using var a = await RegistryServer.StartAsync(settings);
        await using var b = await RegistryServer.StartAsync(settings);
        using var clientA = a.CreateClient();
        using var clientB = b.CreateClient();
        using var bucket = new S3Bucket(s3);
        var ledger = new Ledger();
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(Seconds));

        var pushers = pushOnBoth ? new[] { clientA, clientB } : [clientA];
        var workers = new List<Task>();
        for (var i = 0; i < 3; i++) workers.Add(PusherAsync(pushers[i % pushers.Length], $"gcreplicas/p{i}", ledger, stop.Token));
        workers.Add(MounterAsync(pushers[^1], "gcreplicas/mounts", ledger, stop.Token));
        workers.Add(PullerAsync(clientA, ledger, stop.Token));
        workers.Add(CollectorAsync(clientB, ledger, stop.Token));
        if (collectOnBoth) workers.Add(CollectorAsync(clientA, ledger, stop.Token));
        await Task.WhenAll(workers);

        await CheckAllAsync(clientB, ledger);
        // A request the clients gave up on at the stop may still be publishing on a server: wait for quiet.
        var before = await BlobBytesAsync(bucket);
        for (var quiet = 0; quiet < 2;)
        {
            await Task.Delay(300);
            var now = await BlobBytesAsync(bucket);
            quiet = now == before ? quiet + 1 : 0;
            before = now;
        }
        var last = await clientB.RunAsync();
        var after = await BlobBytesAsync(bucket);
        await CheckAllAsync(clientA, ledger);

        output.WriteLine($"{Seconds} s, pushes on {(pushOnBoth ? "both replicas" : "A")}, runs on {(collectOnBoth ? "both" : "B")}: " +
                         $"gc runs {ledger.GcRuns} (asked while another ran: {ledger.RunsBusy}), blobs swept {ledger.SweptBlobs}, " +
                         $"bytes reclaimed {ledger.Reclaimed}; pushes acknowledged {ledger.Acknowledged}, refused and retried " +
                         $"{ledger.Refused}; checks {ledger.Checks}; lost objects {ledger.LostObjects}, lost index children " +
                         $"{ledger.LostChildren}, lost referrers {ledger.LostReferrers}; final run reclaimed " +
                         $"{last.BytesReclaimed()} bytes, bucket blobs {before} -> {after}");
        foreach (var problem in ledger.Problems.Take(20)) output.WriteLine(problem);
        (ledger.LostObjects, ledger.LostChildren, ledger.LostReferrers).Should().Be((0, 0, 0), string.Join("; ", ledger.Problems.Take(5)));
        ledger.GcRuns.Should().BeGreaterThan(1);
        ledger.SweptBlobs.Should().BeGreaterThan(0, "the workload makes garbage and the runs must collect it");
        (before - after).Should().Be(last.BytesReclaimed(), "the run reports the bytes that left the bucket");
    }

    /// <summary>The bytes of every blob object under the prefix (what a run's report counts).</summary>
    private static async Task<long> BlobBytesAsync(S3Bucket bucket)
    {
        long total = 0;
        await foreach (var item in bucket.ListAsync(bucket.BlobsPrefix, default)) total += item.Size ?? 0;
        return total;
    }
}
