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
    /// <summary>
    /// Decides, before the metadata store is opened (and would create the database), whether this start must import
    /// a registry:2 tree; if so, records that in the marker and returns the tree's root.
    /// </summary>
    public static string? PlanAtStartup(IConfiguration configuration)
    {
        var layout = new StorageLayout(configuration[$"{RegistryOptions.Section}:Storage:Path"] is { Length: > 0 } path ? path : "./data");
        if (File.Exists(layout.ImportMarkerPath))
            return File.ReadAllText(layout.ImportMarkerPath).Trim() is { Length: > 0 } source ? source : layout.Root;
        if (File.Exists(layout.DatabasePath) || !DistributionImporter.HoldsDistributionTree(layout.Root)) return null;
        Directory.CreateDirectory(layout.Root);
        File.WriteAllText(layout.ImportMarkerPath, layout.Root);
        return layout.Root;
    }

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
    public sealed record Plan(string? Source);

    public async Task StartAsync(CancellationToken cancellationToken)
    {
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
