using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;

namespace Registry.Bench;

/// <summary>
/// Reads other processes' memory and CPU from /proc: VmRSS and VmHWM of each every 50 ms on a background thread (peak
/// over the whole run and per phase, of each process and of their sum at the same sample), and utime+stime on demand.
/// One process is the usual case (one server); several are the replicas of one registry behind a load balancer.
/// </summary>
internal sealed class ServerMonitor : IDisposable
{
    private const double ClockTicksPerSecond = 100; // USER_HZ on Linux x86-64 and arm64
    private readonly int[] _pids;
    private readonly Thread _thread;
    private volatile bool _stop;
    private long _peakRss;
    private long _phasePeakRss;
    private readonly long[] _peakRssEach;
    private readonly long[] _phasePeakRssEach;

    public ServerMonitor(params int[] pids)
    {
        if (pids.Length == 0) throw new ArgumentException("no process id");
        _pids = pids;
        _peakRssEach = new long[pids.Length];
        _phasePeakRssEach = new long[pids.Length];
        var startEach = new long[pids.Length];
        for (var i = 0; i < pids.Length; i++)
        {
            if (ReadStatus(pids[i]) is not { } first) throw new ArgumentException($"no process {pids[i]} (/proc/{pids[i]}/status)");
            startEach[i] = _peakRssEach[i] = _phasePeakRssEach[i] = first.Rss;
        }
        StartRssEach = startEach;
        StartRss = startEach.Sum();
        _peakRss = _phasePeakRss = StartRss;
        _thread = new Thread(Sample) { IsBackground = true, Name = "rss-sampler", Priority = ThreadPriority.AboveNormal };
        _thread.Start();
    }

    /// <summary>The first process (the only one, usually).</summary>
    public int Pid => _pids[0];
    public IReadOnlyList<int> Pids => _pids;

    /// <summary>RSS at start: the sum over the processes, and each.</summary>
    public long StartRss { get; }
    public IReadOnlyList<long> StartRssEach { get; }

    /// <summary>Peak of the sampled sum of the processes' RSS (of the one process, usually).</summary>
    public long PeakRss => Interlocked.Read(ref _peakRss);
    public long PeakRssOf(int index) => Interlocked.Read(ref _peakRssEach[index]);
    public long Hwm => HwmOf(0);
    public long HwmOf(int index) => ReadStatus(_pids[index])?.Hwm ?? 0;
    public long CurrentRss => _pids.Sum(p => ReadStatus(p)?.Rss ?? 0);
    public long CurrentRssOf(int index) => ReadStatus(_pids[index])?.Rss ?? 0;
    public bool Alive => _pids.All(p => File.Exists($"/proc/{p}/status"));
    public IEnumerable<int> Gone => _pids.Where(p => !File.Exists($"/proc/{p}/status"));

    /// <summary>Starts a new per-phase peak (of the sum, and of each process) from the current RSS.</summary>
    public void ResetPhasePeak()
    {
        long sum = 0;
        for (var i = 0; i < _pids.Length; i++)
        {
            var rss = ReadStatus(_pids[i])?.Rss ?? 0;
            Interlocked.Exchange(ref _phasePeakRssEach[i], rss);
            sum += rss;
        }
        Interlocked.Exchange(ref _phasePeakRss, sum);
    }

    public long PhasePeakRss => Interlocked.Read(ref _phasePeakRss);
    public long[] PhasePeakRssEach() => [.. _phasePeakRssEach.Select((_, i) => Interlocked.Read(ref _phasePeakRssEach[i]))];

    private void Sample()
    {
        while (!_stop)
        {
            long sum = 0;
            var any = false;
            for (var i = 0; i < _pids.Length; i++)
            {
                if (ReadStatus(_pids[i]) is not { } s) continue;
                any = true;
                sum += s.Rss;
                Max(ref _peakRssEach[i], s.Rss);
                Max(ref _phasePeakRssEach[i], s.Rss);
            }
            if (any)
            {
                Max(ref _peakRss, sum);
                Max(ref _phasePeakRss, sum);
            }
            Thread.Sleep(50);
        }
    }

    private static void Max(ref long target, long value)
    {
        long current;
        while (value > (current = Interlocked.Read(ref target)))
            if (Interlocked.CompareExchange(ref target, value, current) == current) return;
    }

    private static (long Rss, long Hwm)? ReadStatus(int pid)
    {
        try
        {
            long rss = 0, hwm = 0;
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            {
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal)) rss = ParseKb(line);
                else if (line.StartsWith("VmHWM:", StringComparison.Ordinal)) hwm = ParseKb(line);
            }
            return (rss, hwm);
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static long ParseKb(string line)
    {
        var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return long.Parse(parts[1], CultureInfo.InvariantCulture) * 1024;
    }

    /// <summary>CPU seconds (user+system) of all the processes so far, or null when one is gone.</summary>
    public double? CpuSeconds()
    {
        double total = 0;
        foreach (var pid in _pids)
        {
            if (CpuSeconds(pid) is not { } seconds) return null;
            total += seconds;
        }
        return total;
    }

    private static double? CpuSeconds(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
            return (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture))
                   / ClockTicksPerSecond;
        }
        catch (IOException)
        {
            return null;
        }
    }

    public void Dispose()
    {
        _stop = true;
        _thread.Join();
    }
}

/// <summary>What one phase cost: wall time, the load generator's CPU, the server's CPU and peak RSS, and errors.</summary>
internal sealed class PhaseRecord
{
    public required string Name { get; init; }
    public double WallSeconds { get; set; }
    public double ClientCpuSeconds { get; set; }
    public double? ServerCpuSeconds { get; set; }
    public long? ServerPeakRss { get; set; }

    /// <summary>With several server processes: the peak of each (<see cref="ServerPeakRss"/> is that of their sum).</summary>
    public long[]? ServerPeakRssEach { get; set; }
    public long Requests;
    public long Errors;
    public ConcurrentQueue<string> ErrorSamples { get; } = new();
}

/// <summary>A phase in progress: counts requests and errors, and keeps the first few error messages.</summary>
internal sealed class Phase : IDisposable
{
    private const int MaxSamples = 5;
    private readonly Recorder _recorder;
    private readonly long _start = Stopwatch.GetTimestamp();
    private readonly TimeSpan _clientCpu = CpuNow();
    private readonly double? _serverCpu;

    public Phase(Recorder recorder, string name)
    {
        _recorder = recorder;
        Record = new PhaseRecord { Name = name };
        recorder.Monitor?.ResetPhasePeak();
        _serverCpu = recorder.Monitor?.CpuSeconds();
        Console.Error.WriteLine($"[{DateTime.Now:HH:mm:ss}] {name} ...");
    }

    public PhaseRecord Record { get; }

    public void Request() => Interlocked.Increment(ref Record.Requests);

    public void Error(string message)
    {
        Interlocked.Increment(ref Record.Errors);
        if (Record.ErrorSamples.Count < MaxSamples) Record.ErrorSamples.Enqueue(message);
    }

    private static TimeSpan CpuNow()
    {
        var usage = Environment.CpuUsage;
        return usage.UserTime + usage.PrivilegedTime;
    }

    public void Dispose()
    {
        Record.WallSeconds = Stopwatch.GetElapsedTime(_start).TotalSeconds;
        Record.ClientCpuSeconds = (CpuNow() - _clientCpu).TotalSeconds;
        if (_recorder.Monitor is { } monitor)
        {
            if (_serverCpu is { } before && monitor.CpuSeconds() is { } after) Record.ServerCpuSeconds = after - before;
            Record.ServerPeakRss = monitor.PhasePeakRss;
            if (monitor.Pids.Count > 1) Record.ServerPeakRssEach = monitor.PhasePeakRssEach();
        }
        _recorder.Phases.Add(Record);
        var r = Record;
        Console.Error.WriteLine($"           {r.WallSeconds:F1} s, client CPU {r.ClientCpuSeconds:F1} s"
                                + (r.ServerCpuSeconds is { } s ? $", server CPU {s:F1} s" : "")
                                + (r.Errors > 0 ? $", {r.Errors} ERRORS: {r.ErrorSamples.FirstOrDefault()}" : ""));
    }
}

/// <summary>One figure of the result table.</summary>
/// <param name="Key">Stable id that compare matches across runs.</param>
/// <param name="HigherIsBetter">Direction, for reading the ours/theirs ratio.</param>
internal sealed record Figure(string Key, string Label, double Value, string Unit, bool HigherIsBetter, string Group,
    string? Note = null);

/// <summary>Everything a run produces: figures and per-phase costs.</summary>
internal sealed class Recorder(ServerMonitor? monitor)
{
    public ServerMonitor? Monitor { get; } = monitor;
    public List<Figure> Figures { get; } = [];
    public List<PhaseRecord> Phases { get; } = [];

    public Phase Phase(string name) => new(this, name);

    public void Add(string group, string key, string label, double value, string unit, bool higherIsBetter,
        string? note = null)
    {
        var figure = new Figure(key, label, value, unit, higherIsBetter, group, note);
        Figures.Add(figure);
        Console.Error.WriteLine($"           {label}: {Report.Format(value)} {unit}{(note is null ? "" : $"  ({note})")}");
    }

    /// <summary>Adds a throughput figure and, when there were latencies, p50/p99 figures with the same key prefix.</summary>
    public void AddLatency(string group, string key, string label, Latencies latencies)
    {
        if (latencies.Count == 0) return;
        Add(group, key + ".p50_ms", label + " p50", latencies.Percentile(50), "ms", false, $"{latencies.Count} samples");
        Add(group, key + ".p99_ms", label + " p99", latencies.Percentile(99), "ms", false);
    }
}
