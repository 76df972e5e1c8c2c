using System.Diagnostics;
using Registry.Bench;

// Registry benchmark (issue #4): see bench/README.md.
if (args is ["compare", .. var compareArgs]) return Compare(compareArgs);
if (args is ["soak", .. var soakArgs]) return await Soak.MainAsync(soakArgs);
if (args is ["--help"] or ["-h"])
{
    Console.WriteLine(Options.Usage);
    return 0;
}

Options options;
try
{
    options = Options.Parse(args);
}
catch (Exception e) when (e is ArgumentException or FormatException)
{
    Console.Error.WriteLine(e.Message);
    Console.Error.WriteLine(Options.Usage);
    return 2;
}

using var cancel = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    cancel.Cancel();
};

using var monitor = options.Pid is { } pid ? new ServerMonitor(pid) : null;
var recorder = new Recorder(monitor);
var start = Stopwatch.GetTimestamp();
var failed = false;
try
{
    if (options.Runs("ceilings")) await new Ceilings(options, recorder).RunAsync(cancel.Token);
    if (options.Url is { } url && options.Phases.Any(p => p != "ceilings"))
    {
        using var http = RegistryClient.CreateHttpClient(options.CreateCredentials());
        await new RegistryBenchmarks(options, new RegistryClient(http, url), recorder).RunAsync(cancel.Token);
    }
}
catch (Exception e) when (e is InvalidOperationException or HttpRequestException or OperationCanceledException)
{
    Console.Error.WriteLine($"benchmark stopped: {e.Message}");
    failed = true;
}

if (monitor is not null)
{
    const string group = "server";
    recorder.Add(group, "server.rss_start_MiB", "server RSS at start", monitor.StartRss / 1048576.0, "MiB", false);
    recorder.Add(group, "server.rss_peak_MiB", "server peak RSS (VmRSS sampled every 50 ms)", monitor.PeakRss / 1048576.0,
        "MiB", false);
    recorder.Add(group, "server.hwm_MiB", "server VmHWM at the end (kernel's peak)", monitor.Hwm / 1048576.0, "MiB", false);
    recorder.Add(group, "server.rss_end_MiB", "server RSS at the end", monitor.CurrentRss / 1048576.0, "MiB", false);
    if (options.IdleAfter > TimeSpan.Zero && monitor.Alive && !failed)
    {
        // What the server keeps once the load is over (a registry between CI bursts).
        Console.Error.WriteLine($"           idle for {options.IdleAfter.TotalSeconds:F0} s ...");
        await Task.Delay(options.IdleAfter, cancel.Token).ContinueWith(_ => { }, TaskScheduler.Default);
        recorder.Add(group, "server.rss_idle_after_MiB", $"server RSS {options.IdleAfter.TotalSeconds:F0} s after the end (idle)",
            monitor.CurrentRss / 1048576.0, "MiB", false);
    }
    if (!monitor.Alive)
    {
        Console.Error.WriteLine($"the server process {monitor.Pid} is gone");
        failed = true;
    }
}
var errors = recorder.Phases.Sum(p => p.Errors);
if (options.Url is not null)
    recorder.Add("server", "errors.total", "error responses and failed requests (all phases)", errors, "count", false);

var seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
Console.WriteLine(Report.Table(options, recorder, seconds));
if (options.JsonPath is { } json)
{
    Report.WriteJson(json, options, recorder, seconds);
    Console.Error.WriteLine($"wrote {json}");
}
return failed ? 1 : errors > 0 ? 3 : 0;

static int Compare(string[] args)
{
    string[] names = ["A", "B"];
    List<string> a = [], b = [];
    for (var i = 0; i + 1 < args.Length; i += 2)
    {
        var files = args[i + 1].Split(',', StringSplitOptions.RemoveEmptyEntries);
        switch (args[i])
        {
            case "--names": names = args[i + 1].Split(','); break;
            case "--a": a.AddRange(files); break;
            case "--b": b.AddRange(files); break;
            default:
                Console.Error.WriteLine(Options.Usage);
                return 2;
        }
    }
    if (a.Count == 0 || b.Count == 0 || names.Length != 2)
    {
        Console.Error.WriteLine(Options.Usage);
        return 2;
    }
    Console.WriteLine(Report.Compare(names[0], a, names[1], b));
    return 0;
}
