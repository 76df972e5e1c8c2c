using Registry.Api;
using Registry.Storage;
using Registry.Storage.Blobs;
using Registry.Storage.Metadata;

if (args is ["verify", .. var rest])
    return await VerifyAsync(rest);

var app = RegistryApp.Create(args);
await app.RunAsync();
return 0;

// `verify`: re-hash every blob and check the metadata against the blob store (same settings as the server).
static async Task<int> VerifyAsync(string[] args)
{
    await using var app = RegistryApp.Create(args);
    var verifier = new StorageVerifier(app.Services.GetRequiredService<IBlobStore>(),
        app.Services.GetRequiredService<IMetadataStore>());
    var report = await verifier.VerifyAsync(CancellationToken.None);
    foreach (var problem in report.Problems) Console.WriteLine($"PROBLEM {problem}");
    foreach (var note in report.Notes) Console.WriteLine($"note    {note}");
    Console.WriteLine($"{report.BlobsHashed} blobs hashed, {report.ManifestsChecked} manifests checked, " +
                      $"{report.Problems.Count} problems: {(report.Consistent ? "consistent" : "INCONSISTENT")}");
    return report.Consistent ? 0 : 1;
}
