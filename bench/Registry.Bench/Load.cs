using System.Diagnostics;

namespace Registry.Bench;

/// <summary>Latency samples in Stopwatch ticks; percentiles by nearest rank, in milliseconds.</summary>
internal sealed class Latencies
{
    private readonly List<long> _ticks = [];
    private bool _sorted;

    public int Count => _ticks.Count;

    public void Add(long ticks)
    {
        _ticks.Add(ticks);
        _sorted = false;
    }

    public void AddRange(IEnumerable<long> ticks)
    {
        _ticks.AddRange(ticks);
        _sorted = false;
    }

    public void AddRange(Latencies other) => AddRange(other._ticks);

    public double Percentile(double p)
    {
        if (_ticks.Count == 0) return double.NaN;
        if (!_sorted)
        {
            _ticks.Sort();
            _sorted = true;
        }
        var rank = (int)Math.Ceiling(p / 100 * _ticks.Count) - 1;
        return _ticks[Math.Clamp(rank, 0, _ticks.Count - 1)] * 1000.0 / Stopwatch.Frequency;
    }
}

internal sealed record LoadResult(long Succeeded, long Failed, double Seconds, Latencies Latencies)
{
    public double PerSecond => Succeeded / Seconds;
}

/// <summary>Closed-loop load: N workers, each issuing its next request as soon as the previous one answered.</summary>
internal static class Load
{
    /// <summary>Runs <paramref name="operation"/> (given a run-wide sequence number) until the duration is over.</summary>
    public static Task<LoadResult> ForDurationAsync(Phase phase, int workers, TimeSpan duration,
        Func<long, Task<bool>> operation, CancellationToken ct) =>
        RunAsync(phase, workers, long.MaxValue, duration, operation, ct);

    /// <summary>Runs <paramref name="operation"/> for sequence numbers 0 … count-1, shared by the workers.</summary>
    public static Task<LoadResult> ForCountAsync(Phase phase, int workers, long count, Func<long, Task<bool>> operation,
        CancellationToken ct) =>
        RunAsync(phase, workers, count, TimeSpan.MaxValue, operation, ct);

    private static async Task<LoadResult> RunAsync(Phase phase, int workers, long count, TimeSpan duration,
        Func<long, Task<bool>> operation, CancellationToken ct)
    {
        long next = -1, succeeded = 0, failed = 0;
        var start = Stopwatch.GetTimestamp();
        var deadline = duration == TimeSpan.MaxValue ? long.MaxValue
            : start + (long)(duration.TotalSeconds * Stopwatch.Frequency);
        var perWorker = new List<long>[workers];
        var tasks = new Task[workers];
        for (var w = 0; w < workers; w++)
        {
            var worker = w;
            tasks[w] = Task.Run(async () =>
            {
                var ticks = new List<long>(1024);
                perWorker[worker] = ticks;
                while (!ct.IsCancellationRequested && Stopwatch.GetTimestamp() < deadline)
                {
                    var sequence = Interlocked.Increment(ref next);
                    if (sequence >= count) break;
                    var t0 = Stopwatch.GetTimestamp();
                    bool ok;
                    try
                    {
                        ok = await operation(sequence);
                    }
                    catch (Exception e) when (e is HttpRequestException or IOException or TaskCanceledException
                                                  or InvalidOperationException or System.Text.Json.JsonException)
                    {
                        if (ct.IsCancellationRequested) break;
                        phase.Error($"{e.GetType().Name}: {e.Message}");
                        ok = false;
                    }
                    if (ok)
                    {
                        ticks.Add(Stopwatch.GetTimestamp() - t0);
                        Interlocked.Increment(ref succeeded);
                    }
                    else
                    {
                        Interlocked.Increment(ref failed);
                    }
                }
            }, CancellationToken.None);
        }
        await Task.WhenAll(tasks);
        var seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        var latencies = new Latencies();
        foreach (var list in perWorker) if (list is not null) latencies.AddRange(list);
        return new LoadResult(succeeded, failed, seconds, latencies);
    }

    /// <summary>
    /// Repeats one request sequentially for latency: at least <paramref name="minReps"/> times, then until
    /// <paramref name="maxReps"/> or <paramref name="maxTime"/>, whichever comes first.
    /// </summary>
    public static async Task<Latencies> RepeatAsync(Phase phase, int minReps, int maxReps, TimeSpan maxTime,
        Func<Task<bool>> operation, CancellationToken ct)
    {
        var latencies = new Latencies();
        var start = Stopwatch.GetTimestamp();
        var failures = 0;
        for (var i = 0; i < maxReps && !ct.IsCancellationRequested; i++)
        {
            if (i >= minReps && Stopwatch.GetElapsedTime(start) > maxTime) break;
            var t0 = Stopwatch.GetTimestamp();
            bool ok;
            try
            {
                ok = await operation();
            }
            catch (Exception e) when (e is HttpRequestException or IOException or TaskCanceledException
                                          or InvalidOperationException or System.Text.Json.JsonException)
            {
                if (ct.IsCancellationRequested) break;
                phase.Error($"{e.GetType().Name}: {e.Message}");
                ok = false;
            }
            if (ok) latencies.Add(Stopwatch.GetTimestamp() - t0);
            else if (++failures >= 3) break; // the phase's errors say why
        }
        return latencies;
    }
}
