using System.Diagnostics;
using System.Net.Http.Headers;

namespace Registry.CrashHarness;

public sealed record HarnessOptions
{
    public const int DefaultWorkers = 6;

    /// <summary>The built server: path of Registry.Api.dll, run with <c>dotnet</c>.</summary>
    public required string ServerPath { get; init; }
    public int Rounds { get; init; } = 5;
    public int Seed { get; init; }
    /// <summary>Concurrent clients, each owning one repository (crash/w0, crash/w1, …) across all rounds.</summary>
    public int Workers { get; init; } = DefaultWorkers;
    /// <summary>The storage folder kept across rounds; null: a new temporary folder.</summary>
    public string? StoragePath { get; init; }
    /// <summary>Keep a temporary storage folder even when no error was found (it is always kept after an error).</summary>
    public bool KeepStorage { get; init; }
    public TimeSpan MinTraffic { get; init; } = TimeSpan.FromSeconds(0.3);
    public TimeSpan MaxTraffic { get; init; } = TimeSpan.FromSeconds(3);
    public bool Verbose { get; init; }
    /// <summary>
    /// Checks the checker: after each kill, delete one stored blob file and cut the last byte off every upload file,
    /// as a storage that loses acknowledged data would. A run with this set must report errors.
    /// </summary>
    public bool Sabotage { get; init; }
    /// <summary>
    /// A garbage collection actor: during traffic, runs are started one after another over the admin endpoint, so the
    /// kill often lands in the middle of a sweep.
    /// </summary>
    public bool GarbageCollection { get; init; }
    /// <summary>
    /// Two replicas on S3 and PostgreSQL behind nginx instead of one server on a folder (issue #12); null: one server.
    /// <see cref="StoragePath"/> is then the work folder (the replicas' local folders, the proxy's state).
    /// </summary>
    public ScaleOutOptions? ScaleOut { get; init; }
}

public sealed record HarnessResult(int Rounds, long Acknowledged, long Checked, int Errors, IReadOnlyList<string> ErrorMessages)
{
    /// <summary>Scale-out: upload sessions opened before a kill and closed (201) on the surviving replica after it.</summary>
    public int SessionsContinuedAfterKill { get; init; }

    /// <summary>
    /// Scale-out: of the sessions the harness keeps open across each kill on purpose, those that the killed replica
    /// had served a request of (by nginx's access log) and that were closed on the other one.
    /// </summary>
    public int SessionsContinuedFromKilledReplica { get; init; }

    /// <summary>Scale-out: requests in flight at a kill that failed with it (unknown outcome, settled by the check).</summary>
    public int CutOffByKill { get; init; }
}

/// <summary>
/// The crash harness (issue #5): rounds of traffic against the real server, each ended by a SIGKILL at a random
/// moment, then <c>verify</c>, a restart, and a check of everything the server acknowledged against the ledger.
/// </summary>
public static class Harness
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan VerifyTimeout = TimeSpan.FromMinutes(5);
    private static readonly TimeSpan DrainTimeout = TimeSpan.FromSeconds(60);

    public static HttpClient NewClient(Uri baseAddress) => new(new SocketsHttpHandler { AllowAutoRedirect = false })
    {
        BaseAddress = baseAddress,
        Timeout = TimeSpan.FromSeconds(120),
        DefaultRequestHeaders = { Accept = { new MediaTypeWithQualityHeaderValue("*/*") } },
    };

    public static async Task<HarnessResult> RunAsync(HarnessOptions options, TextWriter output, CancellationToken ct = default)
    {
        if (options.ScaleOut is { } scaleOut) return await ScaleOutHarness.RunAsync(options, scaleOut, output, ct);
        var ownsStorage = options.StoragePath is null;
        var storage = options.StoragePath is { } path
            ? Directory.CreateDirectory(path).FullName
            : Directory.CreateTempSubdirectory("registry-crash-").FullName;
        output.WriteLine($"crash harness: seed {options.Seed}, {options.Rounds} rounds, {options.Workers} workers, " +
                         $"traffic {options.MinTraffic.TotalSeconds:0.0}-{options.MaxTraffic.TotalSeconds:0.0} s");
        output.WriteLine($"  server  {options.ServerPath}");
        output.WriteLine($"  storage {storage}");

        var random = new Random(options.Seed);
        var ledgers = Enumerable.Range(0, options.Workers).Select(w => new RepositoryLedger($"crash/w{w}")).ToArray();
        // Layers every worker may push: the same digest published by several sessions at once.
        var shared = Enumerable.Range(0, 6).Select(_ => Content.Random(random.Next(), random.Next(64 << 10, 768 << 10))).ToArray();
        var errors = new List<string>();
        long acknowledged = 0, checkedObjects = 0;
        var rounds = 0;
        ServerProcess? server = null;
        // Cancelled (Ctrl+C, SIGTERM): kill the server we started rather than leave it running.
        await using var onCancel = ct.Register(() => Volatile.Read(ref server)?.Kill());
        try
        {
            server = await ServerProcess.StartAsync(options.ServerPath, storage, StartTimeout);
            for (var round = 1; round <= options.Rounds && !ct.IsCancellationRequested; round++)
            {
                var roundErrors = new List<string>();
                var clock = Stopwatch.StartNew();

                // Traffic, then SIGKILL mid-traffic.
                var traffic = options.MinTraffic + (options.MaxTraffic - options.MinTraffic) * random.NextDouble();
                var context = new TrafficContext();
                using (var http = NewClient(server.BaseAddress))
                {
                    var workers = ledgers.Select((ledger, w) =>
                        Task.Run(() => new Worker(ledger, http, new Random(Mix(options.Seed, round, w)), context, shared).RunAsync()))
                        .Concat(options.GarbageCollection ? [Task.Run(() => GcActor.RunAsync(http, context))] : [])
                        .ToArray();
                    await Task.Delay(traffic, ct);
                    context.Killed = true;
                    server.Kill();
                    var all = Task.WhenAll(workers);
                    if (await Task.WhenAny(all, Task.Delay(DrainTimeout, ct)) != all)
                        roundErrors.Add($"clients still waiting {DrainTimeout.TotalSeconds:0} s after the kill");
                }
                roundErrors.AddRange(context.Errors);
                roundErrors.AddRange(ServerFailures(server, "before the kill"));
                server.Dispose();
                server = null;

                if (options.Sabotage) output.WriteLine($"  sabotage: {Sabotage(storage, random)}");

                // The storage as the crash left it.
                var verify = await ServerProcess.VerifyAsync(options.ServerPath, storage, VerifyTimeout);
                if (verify.ExitCode != 0)
                    roundErrors.Add($"verify exited with {verify.ExitCode}:{Environment.NewLine}{verify.Output.TrimEnd()}");
                else if (options.Verbose)
                    output.WriteLine(verify.Output.TrimEnd());

                // Restart and check the ledger.
                server = await ServerProcess.StartAsync(options.ServerPath, storage, StartTimeout);
                var check = await Checker.RunAsync(ledgers, server.BaseAddress);
                roundErrors.AddRange(check.Errors);
                roundErrors.AddRange(ServerFailures(server, "during the check"));

                rounds++;
                acknowledged += context.Acknowledged;
                checkedObjects += check.Checked;
                errors.AddRange(roundErrors.Select(e => $"round {round}: {e}"));
                var kinds = string.Join(", ", context.AcknowledgedByKind.OrderBy(k => k.Key).Select(k => $"{k.Key} {k.Value}"));
                output.WriteLine($"round {round}/{options.Rounds}: {traffic.TotalSeconds:0.00} s of traffic, SIGKILL; " +
                                 $"acknowledged {context.Acknowledged} ({kinds}); verify: {verify.Summary}; " +
                                 $"checked {check.Checked} (sessions resumed {check.SessionsResumed}, gone {check.SessionsGone}); " +
                                 $"errors {roundErrors.Count}; {clock.Elapsed.TotalSeconds:0.0} s");
                foreach (var error in roundErrors.Take(25)) output.WriteLine($"  ERROR {error}");
                if (roundErrors.Count > 25) output.WriteLine($"  … {roundErrors.Count - 25} more errors");
                output.Flush();
            }
        }
        catch (Exception) when (ct.IsCancellationRequested)
        {
            errors.Add("cancelled");
            output.WriteLine("  cancelled: the server was killed and the run stopped");
        }
        catch (Exception e)
        {
            errors.Add($"harness stopped: {e.Message}");
            output.WriteLine($"  ERROR harness stopped: {e}");
            if (server is not null)
                foreach (var line in server.Log.TakeLast(50)) output.WriteLine($"  server: {line}");
        }
        finally
        {
            server?.Dispose();
        }
        if (ct.IsCancellationRequested && !errors.Contains("cancelled")) errors.Add("cancelled");

        if (ownsStorage && !options.KeepStorage && errors.Count == 0)
            try { Directory.Delete(storage, recursive: true); } catch (IOException) { }
        else
            output.WriteLine($"storage kept at {storage}");
        output.WriteLine($"seed {options.Seed}");
        output.WriteLine($"rounds {rounds}, acknowledged {acknowledged}, checked {checkedObjects}, errors {errors.Count}");
        output.Flush();
        return new HarnessResult(rounds, acknowledged, checkedObjects, errors.Count, errors);
    }

    /// <summary>What the server logged at error level: every such line is a 500 a client saw, or worse.</summary>
    private static IEnumerable<string> ServerFailures(ServerProcess server, string when)
    {
        var log = server.Log.ToList();
        for (var i = 0; i < log.Count; i++)
        {
            if (!log[i].StartsWith("fail:", StringComparison.Ordinal) && !log[i].StartsWith("crit:", StringComparison.Ordinal)
                && !log[i].Contains("Unhandled exception", StringComparison.Ordinal))
                continue;
            yield return $"server logged {when}: {string.Join(" | ", log.Skip(i).Take(4).Select(l => l.Trim()))}";
        }
    }

    private static string Sabotage(string storage, Random random)
    {
        var blobs = Directory.EnumerateFiles(Path.Combine(storage, "blobs"), "*", SearchOption.AllDirectories).ToList();
        var done = new List<string>();
        if (blobs.Count > 0)
        {
            var victim = blobs[random.Next(blobs.Count)];
            File.Delete(victim);
            done.Add($"deleted blob {Path.GetFileName(victim)}");
        }
        foreach (var upload in Directory.EnumerateFiles(Path.Combine(storage, "uploads")))
        {
            using var file = File.OpenHandle(upload, FileMode.Open, FileAccess.ReadWrite);
            var length = RandomAccess.GetLength(file);
            if (length == 0) continue;
            RandomAccess.SetLength(file, length - 1);
            done.Add($"cut upload {Path.GetFileName(upload)}");
        }
        return done.Count == 0 ? "nothing to break" : string.Join(", ", done);
    }

    private static int Mix(int seed, int round, int worker) => unchecked(seed * 1_000_003 + round * 7_919 + worker * 104_729);
}
