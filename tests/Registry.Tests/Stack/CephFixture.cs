using System.Diagnostics;
using Registry.Storage.Blobs.S3;

namespace Registry.Tests.Stack;

/// <summary>
/// A real Ceph (mon, osd, radosgw on loopback) for the tests of the "Ceph" collection, started once by the
/// project's script <c>scripts/stack/ceph.sh start</c> and stopped by <c>ceph.sh stop</c> at the end. The script
/// keeps its state under <c>REGISTRY_STACK_DIR</c> and takes its ports from <c>S3_PORT</c>/<c>S3_MON_PORT</c>.
/// With <c>S3_ENDPOINT</c> (and the other <c>S3_*</c> variables) already set, that endpoint is used and nothing is
/// started. Each test isolates itself with a key prefix of its own (<see cref="NewSettings"/>).
/// </summary>
public sealed class CephFixture : IAsyncLifetime
{
    private string? _script;

    public string Endpoint { get; private set; } = "";
    public string AccessKey { get; private set; } = "";
    public string SecretKey { get; private set; } = "";
    public string Bucket { get; private set; } = "";
    public string Region { get; private set; } = "us-east-1";

    public async Task InitializeAsync()
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        if (Environment.GetEnvironmentVariable("S3_ENDPOINT") is { Length: > 0 })
        {
            foreach (var name in (string[])["S3_ENDPOINT", "S3_ACCESS_KEY", "S3_SECRET_KEY", "S3_BUCKET", "S3_REGION"])
                values[name] = Environment.GetEnvironmentVariable(name) ?? "";
        }
        else
        {
            var script = Path.Combine(RepositoryRoot(), "scripts", "stack", "ceph.sh");
            if (!File.Exists(script))
                throw new InvalidOperationException(
                    $"The S3 tests need a real Ceph: {script} (the project's stack script) is missing. Run them on a branch " +
                    "that has scripts/stack/ceph.sh, or set S3_ENDPOINT, S3_ACCESS_KEY, S3_SECRET_KEY, S3_BUCKET and S3_REGION " +
                    "to a running S3-compatible endpoint.");
            var output = await RunAsync(script, "start");
            _script = script;
            foreach (var line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                if (line.StartsWith("export ", StringComparison.Ordinal) && line[7..].Split('=', 2) is [var key, var value])
                    values[key] = value.Trim('"', '\'');
        }
        Endpoint = Required(values, "S3_ENDPOINT");
        AccessKey = Required(values, "S3_ACCESS_KEY");
        SecretKey = Required(values, "S3_SECRET_KEY");
        Bucket = Required(values, "S3_BUCKET");
        Region = values.TryGetValue("S3_REGION", out var region) && region.Length > 0 ? region : "us-east-1";
    }

    public async Task DisposeAsync()
    {
        if (_script is not null) await RunAsync(_script, "stop");
    }

    /// <summary>Settings for a key prefix no other test uses.</summary>
    public S3Settings NewSettings() => new()
    {
        ServiceUrl = Endpoint,
        Bucket = Bucket,
        Region = Region,
        AccessKey = AccessKey,
        SecretKey = SecretKey,
        Prefix = $"test-{Guid.NewGuid():N}/",
    };

    /// <summary>The registry's own settings for <c>Registry:Storage:Kind=s3</c> on this Ceph.</summary>
    public Dictionary<string, string?> RegistrySettings(S3Settings? settings = null)
    {
        settings ??= NewSettings();
        return new Dictionary<string, string?>
        {
            ["Registry:Storage:Kind"] = "s3",
            ["Registry:Storage:S3:ServiceUrl"] = settings.ServiceUrl,
            ["Registry:Storage:S3:Bucket"] = settings.Bucket,
            ["Registry:Storage:S3:Region"] = settings.Region,
            ["Registry:Storage:S3:AccessKey"] = settings.AccessKey,
            ["Registry:Storage:S3:SecretKey"] = settings.SecretKey,
            ["Registry:Storage:S3:Prefix"] = settings.Prefix,
        };
    }

    private static string Required(Dictionary<string, string> values, string name) =>
        values.TryGetValue(name, out var value) && value.Length > 0
            ? value
            : throw new InvalidOperationException($"the Ceph stack did not provide {name}");

    private static async Task<string> RunAsync(string script, string verb)
    {
        var start = new ProcessStartInfo("bash", [script, verb])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = Path.GetDirectoryName(Path.GetDirectoryName(Path.GetDirectoryName(script)))!,
        };
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"{script} {verb} failed ({process.ExitCode}): {await stderr}");
        return await stdout;
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Directory.Packages.props"))) return dir.FullName;
        throw new InvalidOperationException($"no repository root above {AppContext.BaseDirectory}");
    }
}

[CollectionDefinition(Name)]
public sealed class CephCollection : ICollectionFixture<CephFixture>
{
    public const string Name = "Ceph";
}
