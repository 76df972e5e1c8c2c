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

using var monitor = options.Pids.Length > 0 ? new ServerMonitor(options.Pids) : null;
var recorder = new Recorder(monitor);
var start = Stopwatch.GetTimestamp();
var failed = false;
try
{
    if (options.Runs("ceilings")) await new Ceilings(options, recorder).RunAsync(cancel.Token);
    if (options.Url is { } url && options.Phases.Any(p => p != "ceilings"))
    {
        // A big blob's one request may take long on a slow store (10 GiB to S3 on a busy machine): allow 2 MB/s.
        var timeout = TimeSpan.FromSeconds(Math.Max(600, options.BlobSize / 2_000_000.0));
        using var http = RegistryClient.CreateHttpClient(options.CreateCredentials(), timeout);
        await new RegistryBenchmarks(options, new RegistryClient(http, url), recorder).RunAsync(cancel.Token);
    }
}
catch (Exception e) when (e is InvalidOperationException or HttpRequestException or OperationCanceledException)
{
    Console.Error.WriteLine($"benchmark stopped: {e.Message}");
    failed = true;
}

if (monitor is { Pids.Count: 1 })
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
}
else if (monitor is not null)
{
    // Replicas: each one's figures (its own keys, so a one-process run's figures keep their meaning), then the sum.
    const string group = "server";
    var count = monitor.Pids.Count;
    for (var i = 0; i < count; i++)
    {
        var who = $"replica {i + 1}";
        var key = $"server.replica{i + 1}";
        recorder.Add(group, key + ".rss_start_MiB", $"{who} RSS at start", monitor.StartRssEach[i] / 1048576.0, "MiB", false,
            $"pid {monitor.Pids[i]}");
        recorder.Add(group, key + ".rss_peak_MiB", $"{who} peak RSS (sampled)", monitor.PeakRssOf(i) / 1048576.0, "MiB", false);
        recorder.Add(group, key + ".hwm_MiB", $"{who} VmHWM at the end", monitor.HwmOf(i) / 1048576.0, "MiB", false);
        if (recorder.Phases.FirstOrDefault(p => p.Name == "push.chunked") is { ServerPeakRssEach: { } chunked })
            recorder.Add(group, key + ".push_chunked_peak_MiB", $"{who} peak RSS in the chunked push", chunked[i] / 1048576.0,
                "MiB", false);
        recorder.Add(group, key + ".rss_end_MiB", $"{who} RSS at the end", monitor.CurrentRssOf(i) / 1048576.0, "MiB", false);
    }
    recorder.Add(group, "server.sum.rss_start_MiB", $"all {count} replicas: RSS at start", monitor.StartRss / 1048576.0,
        "MiB", false);
    recorder.Add(group, "server.sum.rss_peak_MiB", $"all {count} replicas: peak of the summed RSS samples",
        monitor.PeakRss / 1048576.0, "MiB", false);
    recorder.Add(group, "server.sum.rss_end_MiB", $"all {count} replicas: RSS at the end", monitor.CurrentRss / 1048576.0,
        "MiB", false);
}
if (monitor is not null && !monitor.Alive)
{
    Console.Error.WriteLine($"the server process {string.Join(", ", monitor.Gone)} is gone");
    failed = true;
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
    // --names x,y[,z...] and one file list per name: --a for the first, --b for the second, --c ... (or --runs, repeated);
    // --side-by-side: the several-registries layout also for two
    string[] names = ["A", "B"];
    var files = new SortedDictionary<int, List<string>>();
    var next = 0;
    var sideBySide = false;
    if (args.Contains("--side-by-side"))
    {
        sideBySide = true;
        args = [.. args.Where(a => a != "--side-by-side")];
    }
    for (var i = 0; i + 1 < args.Length; i += 2)
    {
        var list = args[i + 1].Split(',', StringSplitOptions.RemoveEmptyEntries);
        int side;
        if (args[i] == "--names")
        {
            names = args[i + 1].Split(',');
            continue;
        }
        if (args[i] == "--runs") side = next++;
        else if (args[i] is ['-', '-', var letter and >= 'a' and <= 'z']) side = letter - 'a';
        else
        {
            Console.Error.WriteLine(Options.Usage);
            return 2;
        }
        if (!files.TryGetValue(side, out var sideFiles)) files[side] = sideFiles = [];
        sideFiles.AddRange(list);
    }
    if (names.Length < 2 || files.Count != names.Length || files.Keys.Max() != names.Length - 1
        || files.Values.Any(f => f.Count == 0))
    {
        Console.Error.WriteLine(Options.Usage);
        return 2;
    }
    Console.WriteLine(Report.Compare([.. names.Select((name, i) => (name, (IReadOnlyList<string>)files[i]))], sideBySide));
    return 0;
}
