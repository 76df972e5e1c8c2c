using System.Diagnostics;
using System.Net;
using Registry.Tests.Clients;

namespace Registry.Tests.Distribution;

/// <summary>
/// A registry:2 storage written by the real thing: Debian's docker-registry (distribution 2.8.2) serving a temp folder
/// on 127.0.0.1, into which skopeo pushes an image, a two-platform index and an artifact whose subject is the image;
/// then it is stopped (by PID). Built once per test class; each test imports its own copy of the tree.
/// </summary>
public sealed class Distribution282 : IAsyncLifetime
{
    private readonly TempDir _temp = new("registry2-");

    public string Template => _temp.Sub("template");
    public Image Image { get; private set; } = null!;
    public ImageIndex Index { get; private set; } = null!;
    public Blob Artifact { get; private set; } = null!;
    public const string ArtifactType = "application/vnd.example.sbom.v1+json";

    /// <summary>What was pushed: repository, tag, manifest.</summary>
    public IReadOnlyList<(string Repository, string Tag, Blob Manifest)> Pushed { get; private set; } = [];

    public async Task InitializeAsync()
    {
        var layout = new OciLayoutBuilder(_temp.Sub("layout"));
        Image = layout.AddImage("v1");
        Index = layout.AddIndex("multi");
        Artifact = layout.AddArtifact("sbom", Image.Manifest, ArtifactType);

        var port = CrashHarness.ServerProcess.FreePort();
        Directory.CreateDirectory(Template);
        var config = _temp.Sub("config.yml");
        await File.WriteAllTextAsync(config, $"""
            version: 0.1
            log:
              level: error
            storage:
              filesystem:
                rootdirectory: {Template}
              delete:
                enabled: true
            http:
              addr: 127.0.0.1:{port}
            """);
        var start = new ProcessStartInfo(Cli.Require("docker-registry"))
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.ArgumentList.Add("serve");
        start.ArgumentList.Add(config);
        using var registry = Process.Start(start)!;
        registry.OutputDataReceived += (_, _) => { };
        registry.ErrorDataReceived += (_, _) => { };
        registry.BeginOutputReadLine();
        registry.BeginErrorReadLine();
        try
        {
            await WaitUntilServingAsync(port, registry);
            var skopeo = new Skopeo(_temp.Path);
            var host = $"127.0.0.1:{port}";
            await skopeo.RunAsync("copy", "--dest-tls-verify=false", "--preserve-digests", $"oci:{layout.Path}:v1", $"docker://{host}/team/app:v1");
            await skopeo.RunAsync("copy", "--dest-tls-verify=false", "--all", "--preserve-digests", $"oci:{layout.Path}:multi", $"docker://{host}/team/multi:multi");
            await skopeo.RunAsync("copy", "--dest-tls-verify=false", "--preserve-digests", $"oci:{layout.Path}:sbom", $"docker://{host}/team/app:sbom");
        }
        finally
        {
            registry.Kill();
            await registry.WaitForExitAsync();
        }
        Pushed = [("team/app", "v1", Image.Manifest), ("team/multi", "multi", Index.Index), ("team/app", "sbom", Artifact)];
    }

    private static async Task WaitUntilServingAsync(int port, Process registry)
    {
        using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/") };
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            try
            {
                if ((await client.GetAsync("v2/")).StatusCode == HttpStatusCode.OK) return;
            }
            catch (HttpRequestException) when (DateTime.UtcNow < deadline && !registry.HasExited)
            {
            }
            if (registry.HasExited || DateTime.UtcNow > deadline)
                throw new Xunit.Sdk.XunitException($"docker-registry did not start (exited: {registry.HasExited})");
            await Task.Delay(100);
        }
    }

    /// <summary>A copy of the registry:2 tree in a new folder (under <paramref name="parent"/>), for one test to import.</summary>
    public string CopyTree(string parent)
    {
        var target = Path.Combine(parent, "registry2-" + Guid.NewGuid().ToString("N")[..8]);
        foreach (var directory in Directory.EnumerateDirectories(Template, "*", SearchOption.AllDirectories))
            Directory.CreateDirectory(Path.Combine(target, Path.GetRelativePath(Template, directory)));
        foreach (var file in Directory.EnumerateFiles(Template, "*", SearchOption.AllDirectories))
            File.Copy(file, Path.Combine(target, Path.GetRelativePath(Template, file)));
        return target;
    }

    public Task DisposeAsync()
    {
        _temp.Dispose();
        return Task.CompletedTask;
    }
}
