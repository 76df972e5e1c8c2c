using Microsoft.Extensions.Options;
using Registry.Api.Configuration;
using Registry.Api.Manifests;
using Registry.Storage;
using Registry.Storage.Blobs;
using Registry.Storage.Import;
using Registry.Storage.Metadata;

namespace Registry.Api.Storage;

/// <summary>
/// Importing a registry:2 storage: the <c>import --from</c> command, and the same at start-up when the storage folder
/// holds a registry:2 tree and no database yet (a compose file that kept registry:2's volume). A marker file
/// (<see cref="StorageLayout.ImportMarkerPath"/>) is written before the database exists and removed once an import
/// completes, so an import killed midway resumes at the next start.
/// </summary>
internal static class DistributionImport
{
    /// <summary>Why there is no import with <c>Registry:Storage:Kind=s3</c>.</summary>
    public const string RefusedWithS3 =
        "the registry:2 import is not available with Registry:Storage:Kind=s3: it publishes blobs into the filesystem "
        + "store under Registry:Storage:Path (by hard link or copy), not into the bucket. Import with "
        + "Registry:Storage:Kind=filesystem, or copy the images into the running registry (e.g. skopeo copy or regctl).";

    /// <summary>
    /// Decides, before the metadata store is opened (and would create the database), whether this start must import
    /// a registry:2 tree; if so, records that in the marker and returns the tree's root. With
    /// <c>Registry:Storage:Kind=s3</c> nothing is imported: the plan says why, and no marker is written.
    /// </summary>
    public static StartupImport.Plan PlanAtStartup(IConfiguration configuration)
    {
        var layout = new StorageLayout(configuration[$"{RegistryOptions.Section}:Storage:Path"] is { Length: > 0 } path ? path : "./data");
        var s3 = configuration[$"{RegistryOptions.Section}:Storage:Kind"] == RegistryOptions.StorageKinds.S3;
        if (File.Exists(layout.ImportMarkerPath))
            return s3
                ? new StartupImport.Plan(null, RefusedWithS3)
                : new StartupImport.Plan(File.ReadAllText(layout.ImportMarkerPath).Trim() is { Length: > 0 } source ? source : layout.Root);
        if (File.Exists(layout.DatabasePath) || !DistributionImporter.HoldsDistributionTree(layout.Root)) return new(null);
        if (s3) return new StartupImport.Plan(null, RefusedWithS3);
        Directory.CreateDirectory(layout.Root);
        File.WriteAllText(layout.ImportMarkerPath, layout.Root);
        return new StartupImport.Plan(layout.Root);
    }

    /// <summary>Whether the configured blob store is one the import can write to (the filesystem store).</summary>
    public static bool CanImport(IServiceProvider services) =>
        services.GetRequiredService<IOptions<RegistryOptions>>().Value.Storage.Kind != RegistryOptions.StorageKinds.S3;

    public static DistributionImporter CreateImporter(IServiceProvider services) => new(
        services.GetRequiredService<FileSystemBlobStore>(),
        services.GetRequiredService<IDistributionImportStore>(),
        Inspect,
        services.GetRequiredService<TimeProvider>());

    private static InspectedManifest? Inspect(ReadOnlyMemory<byte> bytes, out string? reason) =>
        ManifestParser.ParseStored(bytes, out reason) is { } parsed
            ? new InspectedManifest(parsed.MediaType, parsed.ArtifactType, parsed.Subject, parsed.AnnotationsJson, parsed.References)
            : null;

    /// <summary>Runs an import from <paramref name="source"/> with the marker written first and removed when it completes.</summary>
    public static async Task<DistributionImportReport> RunAsync(IServiceProvider services, string source,
        Action<string> progress, CancellationToken ct)
    {
        if (!CanImport(services)) throw new InvalidOperationException(RefusedWithS3);
        var layout = services.GetRequiredService<StorageLayout>();
        await File.WriteAllTextAsync(layout.ImportMarkerPath, Path.GetFullPath(source), ct);
        var report = await CreateImporter(services).ImportAsync(source, progress, ct);
        if (report.Complete) File.Delete(layout.ImportMarkerPath);
        return report;
    }
}

/// <summary>The start-up import: runs before the registry serves (hosted services start before the server does).</summary>
internal sealed class StartupImport(IServiceProvider services, StartupImport.Plan plan, ILogger<StartupImport> logger)
    : IHostedService
{
    /// <param name="Refused">Why a registry:2 tree in the storage folder is not imported (null: nothing refused).</param>
    public sealed record Plan(string? Source, string? Refused = null);

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (plan.Refused is { } refused)
            logger.LogError("The registry:2 storage in the storage folder is NOT imported: {Reason}", refused);
        if (plan.Source is not { } source) return;
        logger.LogInformation("Importing the registry:2 storage in {Source}", source);
        var report = await DistributionImport.RunAsync(services, source, line => logger.LogInformation("import {Line}", line),
            cancellationToken);
        foreach (var note in report.Notes) logger.LogInformation("import note: {Note}", note);
        foreach (var problem in report.Problems) logger.LogError("import problem: {Problem}", problem);
        if (report.Complete) logger.LogInformation("Import complete: {Summary}", report.Summary);
        else logger.LogError("Import INCOMPLETE (it runs again at the next start): {Summary}", report.Summary);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
