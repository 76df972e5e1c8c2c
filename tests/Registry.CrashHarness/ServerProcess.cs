using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Registry.CrashHarness;

/// <summary>
/// The real server as a child process (<c>dotnet Registry.Api.dll</c>) on a free loopback port. <see cref="Kill"/> is
/// SIGKILL on Linux: no shutdown code runs, exactly like a crash or the OOM killer.
/// </summary>
public sealed class ServerProcess : IDisposable
{
    private const int LogLines = 400;
    private readonly Process _process;
    private readonly ConcurrentQueue<string> _log = new();
    private readonly ConcurrentQueue<string> _failures = new();
    private readonly List<string> _followers = [];
    private int _following;

    private ServerProcess(Process process, Uri baseAddress)
    {
        _process = process;
        BaseAddress = baseAddress;
    }

    public Uri BaseAddress { get; }

    /// <summary>The last lines the server wrote (stdout and stderr).</summary>
    public IReadOnlyCollection<string> Log => _log;

    /// <summary>Lines the server logged at error level ("fail:" from the console logger) or crash output.</summary>
    public IEnumerable<string> Failures => _log.Where(l => l.StartsWith("fail:", StringComparison.Ordinal)
                                                         || l.StartsWith("crit:", StringComparison.Ordinal)
                                                         || l.Contains("Unhandled exception", StringComparison.Ordinal));

    /// <summary>The dotnet host that runs this process, so the child uses the same runtime.</summary>
    public static string DotnetHost()
    {
        var self = Environment.ProcessPath;
        if (self is not null && Path.GetFileNameWithoutExtension(self) == "dotnet") return self;
        var fromSdk = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
        if (!string.IsNullOrEmpty(fromSdk) && File.Exists(fromSdk)) return fromSdk;
        var root = Environment.GetEnvironmentVariable("DOTNET_ROOT");
        if (!string.IsNullOrEmpty(root) && File.Exists(Path.Combine(root, "dotnet"))) return Path.Combine(root, "dotnet");
        return "dotnet";
    }

    public static ProcessStartInfo StartInfo(string serverPath, IEnumerable<string> arguments,
        IReadOnlyDictionary<string, string>? environment = null)
    {
        var info = new ProcessStartInfo(DotnetHost())
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = Path.GetDirectoryName(serverPath)!,
        };
        info.ArgumentList.Add(serverPath);
        foreach (var argument in arguments) info.ArgumentList.Add(argument);
        info.Environment["DOTNET_NOLOGO"] = "1";
        info.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        // The harness may run under a test host whose settings must not leak into the server.
        info.Environment.Remove("ASPNETCORE_URLS");
        info.Environment.Remove("REGISTRY_TEST_URL");
        foreach (var (name, value) in environment ?? new Dictionary<string, string>()) info.Environment[name] = value;
        return info;
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Starts the server and waits until <c>GET /v2/</c> answers 200.</summary>
    public static Task<ServerProcess> StartAsync(string serverPath, string storagePath, TimeSpan timeout) =>
        StartAsync(serverPath, storagePath, timeout, []);

    /// <summary>Starts the server with more settings (e.g. <c>--Registry:ShutdownTimeout=00:00:02</c>) and waits until <c>GET /v2/</c> answers 200.</summary>
    public static Task<ServerProcess> StartAsync(string serverPath, string storagePath, TimeSpan timeout,
        IReadOnlyList<string> settings) =>
        StartAsync(serverPath, storagePath, timeout, settings, port: null, environment: null);

    /// <summary>
    /// Starts the server on <paramref name="port"/> (null: a free one; a port given is retried for a while if it is
    /// still taken, as right after a kill) with more settings and environment variables, and waits until
    /// <c>GET /v2/</c> answers 200.
    /// </summary>
    public static async Task<ServerProcess> StartAsync(string serverPath, string storagePath, TimeSpan timeout,
        IReadOnlyList<string> settings, int? port, IReadOnlyDictionary<string, string>? environment)
    {
        Exception? last = null;
        for (var attempt = 0; attempt < (port is null ? 3 : 10); attempt++)
        {
            if (attempt > 0 && port is not null) await Task.Delay(500);
            var baseAddress = new Uri($"http://127.0.0.1:{port ?? FreePort()}/");
            var process = new Process
            {
                StartInfo = StartInfo(serverPath,
                    ["--urls", baseAddress.ToString().TrimEnd('/'), $"--Registry:Storage:Path={storagePath}", .. settings],
                    environment),
            };
            var server = new ServerProcess(process, baseAddress);
            process.OutputDataReceived += (_, e) => server.Add(e.Data);
            process.ErrorDataReceived += (_, e) => server.Add(e.Data);
            process.Start();
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            try
            {
                await server.WaitReadyAsync(timeout);
                return server;
            }
            catch (Exception e)
            {
                last = e;
                server.Kill();
                server.Dispose();
                // A port taken between FreePort and the bind is worth another try; anything else is not.
                if (!server._log.Any(l => l.Contains("address already in use", StringComparison.OrdinalIgnoreCase))) break;
            }
        }
        throw new InvalidOperationException($"the server did not start: {last?.Message}", last);
    }

    private void Add(string? line)
    {
        if (line is null) return;
        _log.Enqueue(line);
        while (_log.Count > LogLines) _log.TryDequeue(out _);
        lock (_followers)
        {
            // A failure line and the three lines after it (the exception) become one entry of TakeFailures.
            if (_following > 0)
            {
                _followers.Add(line.Trim());
                if (--_following == 0) FlushFailure();
            }
            else if (IsFailure(line))
            {
                _followers.Add(line.Trim());
                _following = 3;
            }
        }
    }

    private void FlushFailure()
    {
        _failures.Enqueue(string.Join(" | ", _followers));
        _followers.Clear();
    }

    private static bool IsFailure(string line) => line.StartsWith("fail:", StringComparison.Ordinal)
                                                   || line.StartsWith("crit:", StringComparison.Ordinal)
                                                   || line.Contains("Unhandled exception", StringComparison.Ordinal);

    /// <summary>
    /// What the server logged at error level since the last call, each with the lines that followed it: a server
    /// that keeps running across rounds reports each failure once.
    /// </summary>
    public IReadOnlyList<string> TakeFailures()
    {
        lock (_followers)
        {
            if (_followers.Count > 0)
            {
                _following = 0;
                FlushFailure();
            }
        }
        var taken = new List<string>();
        while (_failures.TryDequeue(out var failure)) taken.Add(failure);
        return taken;
    }

    private async Task WaitReadyAsync(TimeSpan timeout)
    {
        using var client = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(5) };
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            if (_process.HasExited)
                throw new InvalidOperationException(
                    $"the server exited with code {_process.ExitCode}:{Environment.NewLine}{string.Join(Environment.NewLine, _log)}");
            try
            {
                using var response = await client.GetAsync("v2/");
                if (response.StatusCode == HttpStatusCode.OK) return;
            }
            catch (HttpRequestException) { }
            catch (TaskCanceledException) { }
            if (deadline.Elapsed > timeout)
                throw new TimeoutException($"the server did not answer GET /v2/ within {timeout.TotalSeconds:0} s:" +
                                           $"{Environment.NewLine}{string.Join(Environment.NewLine, _log)}");
            await Task.Delay(50);
        }
    }

    /// <summary>SIGKILL, then wait until the process is gone (its files closed, its port free).</summary>
    public void Kill()
    {
        try
        {
            if (!_process.HasExited) _process.Kill(entireProcessTree: false);
        }
        catch (InvalidOperationException)
        {
            // Exited in between.
        }
        _process.WaitForExit();
    }

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    /// <summary>SIGTERM, as a container runtime or systemd sends it: the server shuts down gracefully.</summary>
    public void Terminate()
    {
        if (kill(_process.Id, Sigterm) != 0 && !_process.HasExited)
            throw new InvalidOperationException($"kill({_process.Id}, SIGTERM) failed: errno {Marshal.GetLastPInvokeError()}");
    }

    /// <summary>Waits until the process has exited and its output has been read; false if it is still running at the deadline.</summary>
    public async Task<bool> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    private const int Sigterm = 15;

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int signal);

    public void Dispose()
    {
        Kill();
        _process.Dispose();
    }

    /// <summary>
    /// Runs <c>dotnet Registry.Api.dll verify --Registry:Storage:Path=…</c>: its exit code, its summary line
    /// ("N blobs hashed, M manifests checked, P problems…") and its whole output.
    /// </summary>
    public static Task<(int ExitCode, string Summary, string Output)> VerifyAsync(string serverPath,
        string storagePath, TimeSpan timeout) =>
        VerifyAsync(serverPath, storagePath, timeout, [], null);

    /// <summary><c>verify</c> with more settings and environment variables (e.g. the S3 and PostgreSQL stores).</summary>
    public static async Task<(int ExitCode, string Summary, string Output)> VerifyAsync(string serverPath,
        string storagePath, TimeSpan timeout, IReadOnlyList<string> settings, IReadOnlyDictionary<string, string>? environment)
    {
        using var process = new Process
        {
            StartInfo = StartInfo(serverPath, ["verify", $"--Registry:Storage:Path={storagePath}", .. settings], environment),
        };
        process.Start();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill();
            await process.WaitForExitAsync();
            return (-1, $"verify did not finish within {timeout.TotalSeconds:0} s", await stdout + await stderr);
        }
        var output = await stdout + await stderr;
        var summary = output.Split('\n').Select(l => l.Trim())
            .LastOrDefault(l => l.Contains("blobs hashed", StringComparison.Ordinal)) ?? "(no summary line)";
        return (process.ExitCode, summary, output);
    }
}
