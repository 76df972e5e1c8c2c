using System.Diagnostics;
using System.Globalization;

namespace Registry.CrashHarness;

/// <summary>
/// The project's nginx (<c>scripts/stack/nginx.sh</c>) in front of the replicas, run as an operator runs it: its own
/// state root (<c>REGISTRY_STACK_DIR</c>), a free port, the replicas in <c>PROXY_UPSTREAMS</c>; stopped by the script's
/// <c>stop</c> (by its pid file).
/// </summary>
public sealed class ProxyProcess : IAsyncDisposable
{
    private static readonly TimeSpan ScriptTimeout = TimeSpan.FromMinutes(1);
    private readonly string _script;
    private readonly Dictionary<string, string> _environment;

    private ProxyProcess(string script, Dictionary<string, string> environment, Uri url, string accessLog)
    {
        _script = script;
        _environment = environment;
        Url = url;
        AccessLog = accessLog;
    }

    public Uri Url { get; }

    /// <summary>One line per request, naming the replica that served it (<c>upstream=host:port</c>).</summary>
    public string AccessLog { get; }

    public static async Task<ProxyProcess> StartAsync(string script, string stateRoot, IEnumerable<Uri> replicas)
    {
        var environment = new Dictionary<string, string>
        {
            ["REGISTRY_STACK_DIR"] = stateRoot,
            ["PROXY_PORT"] = ServerProcess.FreePort().ToString(CultureInfo.InvariantCulture),
            ["PROXY_UPSTREAMS"] = string.Join(' ', replicas.Select(r => r.Authority)),
        };
        var (code, stdout, stderr) = await RunAsync(script, "start", environment);
        if (code != 0) throw new InvalidOperationException($"{script} start failed ({code}):{Environment.NewLine}{stderr}");
        string Export(string name) => stdout.Split('\n').Select(l => l.Trim())
            .Where(l => l.StartsWith($"export {name}=", StringComparison.Ordinal))
            .Select(l => l[$"export {name}=".Length..].Trim('\''))
            .FirstOrDefault() ?? throw new InvalidOperationException($"{script} start printed no {name}:{Environment.NewLine}{stdout}");
        return new ProxyProcess(script, environment, new Uri(Export("PROXY_URL").TrimEnd('/') + "/"), Export("PROXY_ACCESS_LOG"));
    }

    /// <summary>The replicas (host:port) that served the requests whose target contains <paramref name="marker"/>.</summary>
    public IReadOnlyList<string> UpstreamsOf(string marker)
    {
        if (!File.Exists(AccessLog)) return [];
        using var stream = new FileStream(AccessLog, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var reader = new StreamReader(stream);
        var upstreams = new List<string>();
        while (reader.ReadLine() is { } line)
        {
            if (!line.Contains(marker, StringComparison.Ordinal)) continue;
            var field = line.Split(' ').FirstOrDefault(f => f.StartsWith("upstream=", StringComparison.Ordinal));
            if (field is not null) upstreams.Add(field["upstream=".Length..]);
        }
        return upstreams;
    }

    public async ValueTask DisposeAsync()
    {
        var (code, _, stderr) = await RunAsync(_script, "stop", _environment);
        if (code != 0) throw new InvalidOperationException($"{_script} stop failed ({code}):{Environment.NewLine}{stderr}");
    }

    private static async Task<(int Code, string Stdout, string Stderr)> RunAsync(string script, string command,
        IReadOnlyDictionary<string, string> environment)
    {
        var start = new ProcessStartInfo("bash", [script, command])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var (name, value) in environment) start.Environment[name] = value;
        using var process = Process.Start(start) ?? throw new InvalidOperationException("bash did not start");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(ScriptTimeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            return (-1, await stdout, $"{script} {command} did not finish within {ScriptTimeout.TotalSeconds:0} s");
        }
        return (process.ExitCode, await stdout, await stderr);
    }
}
