using Registry.Api;
using Registry.Api.Storage;
using Registry.Storage;
using Registry.Storage.Blobs;
using Registry.Storage.Gc;
using Registry.Storage.Metadata;

// registry:2's own command line, `registry serve <config.yml>`, as a compose file written for it may give.
if (args is ["serve", var registry2Config, .. var afterServe])
    args = ["--config", registry2Config, .. afterServe];
if (args is ["verify", .. var rest])
    return await VerifyAsync(rest);
if (args is ["import", .. var importArgs])
    return await ImportAsync(importArgs);
if (args is ["gc", .. var gcArgs])
    return await CollectAsync(gcArgs);

var app = RegistryApp.Create(args);
await app.RunAsync();
return 0;

// `verify`: re-hash every blob and check the metadata against the blob store (same settings as the server).
static async Task<int> VerifyAsync(string[] args)
{
    await using var app = RegistryApp.Create(args);
    var verifier = new StorageVerifier(app.Services.GetRequiredService<IBlobStore>(),
        app.Services.GetRequiredService<IVerificationStore>());
    var report = await verifier.VerifyAsync(CancellationToken.None);
    foreach (var problem in report.Problems) Console.WriteLine($"PROBLEM {problem}");
    foreach (var note in report.Notes) Console.WriteLine($"note    {note}");
    Console.WriteLine($"{report.BlobsHashed} blobs hashed, {report.ManifestsChecked} manifests checked, " +
                      $"{report.Problems.Count} problems: {(report.Consistent ? "consistent" : "INCONSISTENT")}");
    return report.Consistent ? 0 : 1;
}

// `import --from <registry:2 root>`: imports a registry:2 filesystem storage (same settings as the server).
static async Task<int> ImportAsync(string[] args)
{
    var at = Array.IndexOf(args, "--from");
    if (at < 0 || at + 1 >= args.Length)
    {
        Console.Error.WriteLine("usage: import --from <registry:2 root directory, the one holding docker/registry/v2> [settings]");
        return 2;
    }
    var from = args[at + 1];
    if (!Registry.Storage.Import.DistributionImporter.HoldsDistributionTree(from))
    {
        Console.Error.WriteLine($"{from} holds no registry:2 storage (no docker/registry/v2 in it)");
        return 2;
    }
    await using var app = RegistryApp.Create([.. args[..at], .. args[(at + 2)..]]);
    if (!Registry.Api.Storage.DistributionImport.CanImport(app.Services))
    {
        Console.Error.WriteLine($"import refused: {Registry.Api.Storage.DistributionImport.RefusedWithS3}");
        return 2;
    }
    using var cancel = new CancellationTokenSource();
    Console.CancelKeyPress += (_, e) =>
    {
        e.Cancel = true;
        cancel.Cancel();
    };
    try
    {
        var report = await Registry.Api.Storage.DistributionImport.RunAsync(app.Services, from, Console.WriteLine, cancel.Token);
        foreach (var note in report.Notes) Console.WriteLine($"note    {note}");
        foreach (var problem in report.Problems) Console.WriteLine($"PROBLEM {problem}");
        Console.WriteLine($"{report.Summary}: {(report.Complete ? "complete" : "INCOMPLETE, run it again")}");
        return report.Complete ? 0 : 1;
    }
    catch (OperationCanceledException)
    {
        Console.WriteLine("interrupted; run the same command again to finish (imported repositories are kept)");
        return 130;
    }
}

// `gc [--dry-run]`: one garbage collection run on storage no server is using (a dry run may run beside a server; with
// Registry:Metadata:Kind=postgres any run may, after the run in progress on a replica); prints the run's report as
// JSON. Exit code 0 when the run succeeded, 2 when a server holds the storage.
static async Task<int> CollectAsync(string[] args)
{
    var dryRun = args.Contains("--dry-run");
    await using var app = RegistryApp.Create(args.Where(a => a != "--dry-run").ToArray());
    var layout = app.Services.GetRequiredService<StorageLayout>();
    // With shared metadata the command is one more replica: it takes the gc lease and sweeps through the shared pins,
    // so it may run beside the servers. With SQLite the pins are in the server's memory: no server may be running.
    var shared = app.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<Registry.Api.Configuration.RegistryOptions>>()
        .Value.Metadata.IsPostgres;
    using var exclusive = layout.TryLock(exclusive: !dryRun && !shared);
    if (exclusive is null)
    {
        Console.Error.WriteLine(dryRun
            ? $"an offline garbage collection is running on {layout.Root}"
            : $"a registry is serving {layout.Root}: start the run there (POST /v2/_registry/gc/runs), or stop it first");
        return 2;
    }
    if (!dryRun) await app.Services.GetRequiredService<GarbageCollector>().FinishTombstonesAsync(CancellationToken.None);
    var run = await app.Services.GetRequiredService<GcRunner>().RunAsync(dryRun, "command", CancellationToken.None);
    Console.WriteLine(run.ReportJson);
    Console.WriteLine($"garbage collection run {run.Id}: {run.Status}");
    return run.Status == GcRunStatus.Succeeded ? 0 : 1;
}
