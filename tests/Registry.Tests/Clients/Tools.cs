using System.IO.Compression;
using System.Text.Json;

namespace Registry.Tests.Clients;

/// <summary>
/// skopeo against a plain-HTTP registry. Global flags: --insecure-policy (no /etc/containers/policy.json needed),
/// --tmpdir (big temporary files stay in the test's folder); the caller adds --tls-verify=false and friends.
/// </summary>
public sealed class Skopeo(string tempDir)
{
    private readonly string _tmp = Directory.CreateDirectory(Path.Combine(tempDir, "skopeo-tmp")).FullName;

    public Task<CliResult> RunAsync(params string[] arguments) =>
        Cli.RunAsync("skopeo", ["--insecure-policy", "--tmpdir", _tmp, .. arguments]);

    public Task<CliResult> TryRunAsync(params string[] arguments) =>
        Cli.TryRunAsync("skopeo", ["--insecure-policy", "--tmpdir", _tmp, .. arguments]);

    /// <summary>`skopeo inspect --raw`: the manifest bytes exactly as the registry serves them.</summary>
    public async Task<byte[]> RawManifestAsync(string reference) =>
        (await RunAsync("inspect", "--tls-verify=false", "--raw", reference)).StdoutBytes;
}

/// <summary>
/// A self-contained podman/buildah storage in a temp folder: the vfs driver (no fuse-overlayfs, no kernel overlay),
/// its own root, runroot and libpod tmpdir, its own storage.conf, registries.conf and signature policy, and
/// events off, so nothing outside the folder is read or written (except the shared blob-info cache).
/// </summary>
public sealed class ContainerStorage : IDisposable
{
    // podman refuses a runroot longer than 50 characters: keep the folder short.
    private readonly TempDir _dir = new("ctr-", Path.GetTempPath().Length <= 24 ? null : "/tmp");
    private readonly Dictionary<string, string> _environment;

    public ContainerStorage()
    {
        Root = _dir.Sub("root");
        RunRoot = _dir.Sub("run");
        foreach (var d in new[] { Root, RunRoot, _dir.Sub("tmp"), _dir.Sub("libpod-tmp"), _dir.Sub("networks") })
            Directory.CreateDirectory(d);
        PolicyPath = _dir.Sub("policy.json");
        File.WriteAllText(PolicyPath, """{"default":[{"type":"insecureAcceptAnything"}]}""");
        var storageConf = _dir.Sub("storage.conf");
        File.WriteAllText(storageConf, $"""
            [storage]
            driver = "vfs"
            graphroot = "{Root}"
            runroot = "{RunRoot}"
            """);
        var registriesConf = _dir.Sub("registries.conf");
        File.WriteAllText(registriesConf, "unqualified-search-registries = []\nshort-name-mode = \"disabled\"\n");
        var containersConf = _dir.Sub("containers.conf");
        File.WriteAllText(containersConf, """
            [engine]
            events_logger = "none"
            cgroup_manager = "cgroupfs"
            """);
        _environment = new Dictionary<string, string>
        {
            ["CONTAINERS_STORAGE_CONF"] = storageConf,
            ["CONTAINERS_REGISTRIES_CONF"] = registriesConf,
            ["CONTAINERS_CONF"] = containersConf,
            ["TMPDIR"] = _dir.Sub("tmp"),
        };
    }

    public string Root { get; }
    public string RunRoot { get; }
    public string PolicyPath { get; }
    public string Sub(string name) => _dir.Sub(name);

    public Task<CliResult> PodmanAsync(params string[] arguments) =>
        Cli.RunAsync("podman", [.. PodmanGlobals, .. arguments], environment: _environment);

    public Task<CliResult> TryPodmanAsync(params string[] arguments) =>
        Cli.TryRunAsync("podman", [.. PodmanGlobals, .. arguments], environment: _environment);

    public Task<CliResult> BuildahAsync(params string[] arguments) =>
        Cli.RunAsync("buildah", [.. BuildahGlobals, .. arguments], environment: _environment);

    private string[] PodmanGlobals =>
    [
        "--root", Root, "--runroot", RunRoot, "--storage-driver", "vfs", "--tmpdir", _dir.Sub("libpod-tmp"),
        "--events-backend", "none", "--cgroup-manager", "cgroupfs", "--network-config-dir", _dir.Sub("networks"),
    ];

    private string[] BuildahGlobals =>
        ["--root", Root, "--runroot", RunRoot, "--storage-driver", "vfs", "--registries-conf", _dir.Sub("registries.conf")];

    public void Dispose() => _dir.Dispose();
}

public static class Layers
{
    public static byte[] Gunzip(byte[] gzipped)
    {
        using var input = new GZipStream(new MemoryStream(gzipped), CompressionMode.Decompress);
        using var output = new MemoryStream();
        input.CopyTo(output);
        return output.ToArray();
    }

    public static bool IsZstd(byte[] blob) =>
        blob.Length >= 4 && blob[0] == 0x28 && blob[1] == 0xB5 && blob[2] == 0x2F && blob[3] == 0xFD;

    public static bool IsGzip(byte[] blob) => blob.Length >= 2 && blob[0] == 0x1F && blob[1] == 0x8B;
}

/// <summary>The parts of a manifest the tests look at.</summary>
public sealed record ManifestView(string? MediaType, string ConfigMediaType, string ConfigDigest,
    IReadOnlyList<(string MediaType, string Digest, long Size)> Layers)
{
    public static ManifestView Parse(byte[] bytes)
    {
        using var document = JsonDocument.Parse(bytes);
        var root = document.RootElement;
        var config = root.GetProperty("config");
        return new ManifestView(
            root.TryGetProperty("mediaType", out var mediaType) ? mediaType.GetString() : null,
            config.GetProperty("mediaType").GetString()!,
            config.GetProperty("digest").GetString()!,
            root.GetProperty("layers").EnumerateArray()
                .Select(l => (l.GetProperty("mediaType").GetString()!, l.GetProperty("digest").GetString()!, l.GetProperty("size").GetInt64()))
                .ToList());
    }
}
