using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;

namespace Registry.Bench;

/// <summary>
/// Reads another process's memory and CPU from /proc: VmRSS and VmHWM every 50 ms on a background thread (peak over
/// the whole run and per phase), and utime+stime on demand.
/// </summary>
internal sealed class ServerMonitor : IDisposable
{
    private const double ClockTicksPerSecond = 100; // USER_HZ on Linux x86-64 and arm64
    private readonly int _pid;
    private readonly Thread _thread;
    private volatile bool _stop;
    private long _peakRss;
    private long _phasePeakRss;

    public ServerMonitor(int pid)
    {
        _pid = pid;
        if (ReadStatus() is not { } first) throw new ArgumentException($"no process {pid} (/proc/{pid}/status)");
        StartRss = first.Rss;
        _peakRss = _phasePeakRss = first.Rss;
        _thread = new Thread(Sample) { IsBackground = true, Name = "rss-sampler", Priority = ThreadPriority.AboveNormal };
        _thread.Start();
    }

    public int Pid => _pid;
    public long StartRss { get; }
    public long PeakRss => Interlocked.Read(ref _peakRss);
    public long Hwm => ReadStatus()?.Hwm ?? 0;
    public long CurrentRss => ReadStatus()?.Rss ?? 0;
    public bool Alive => File.Exists($"/proc/{_pid}/status");

    /// <summary>Starts a new per-phase peak from the current RSS.</summary>
    public void ResetPhasePeak() => Interlocked.Exchange(ref _phasePeakRss, ReadStatus()?.Rss ?? 0);

    public long PhasePeakRss => Interlocked.Read(ref _phasePeakRss);

    private void Sample()
    {
        while (!_stop)
        {
            if (ReadStatus() is { } s)
            {
                Max(ref _peakRss, s.Rss);
                Max(ref _phasePeakRss, s.Rss);
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

    private (long Rss, long Hwm)? ReadStatus()
    {
        try
        {
            long rss = 0, hwm = 0;
            foreach (var line in File.ReadLines($"/proc/{_pid}/status"))
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

    /// <summary>Server CPU seconds (user+system) so far, or null when the process is gone.</summary>
    public double? CpuSeconds()
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{_pid}/stat");
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
