using System.Diagnostics;
using System.Net;

namespace Registry.CrashHarness;

/// <summary>
/// Where the replicas of the scale-out mode keep their data: one S3 bucket prefix and one PostgreSQL database, both
/// of this run only, and the nginx script that balances between them.
/// </summary>
public sealed record ScaleOutOptions
{
    public required string S3ServiceUrl { get; init; }
    public required string S3Bucket { get; init; }
    public required string S3Region { get; init; }
    public required string S3AccessKey { get; init; }
    public required string S3SecretKey { get; init; }
    /// <summary>A key prefix nothing else uses (the ledger starts empty).</summary>
    public required string S3Prefix { get; init; }
    /// <summary>An empty database of this run.</summary>
    public required string PostgresConnectionString { get; init; }
    /// <summary>scripts/stack/nginx.sh.</summary>
    public required string ProxyScript { get; init; }
    /// <summary>How long the clients go on through the proxy after the kill, served by the surviving replica.</summary>
    public TimeSpan AfterKill { get; init; } = TimeSpan.FromSeconds(1.5);

    /// <summary>The server's settings for these stores (secrets go in <see cref="Environment"/>, not the command line).</summary>
    public IReadOnlyList<string> Settings =>
    [
        "--Registry:Storage:Kind=s3",
        $"--Registry:Storage:S3:ServiceUrl={S3ServiceUrl}",
        $"--Registry:Storage:S3:Bucket={S3Bucket}",
        $"--Registry:Storage:S3:Region={S3Region}",
        $"--Registry:Storage:S3:Prefix={S3Prefix}",
        "--Registry:Metadata:Kind=postgres",
        // Behind nginx every client has the proxy's address, so the per-client cap would count all workers (and the
        // sessions that kills leave behind, round after round) as one client.
        "--Registry:Uploads:MaxSessionsPerClient=10000",
    ];

    public IReadOnlyDictionary<string, string> Environment => new Dictionary<string, string>
    {
        ["AWS_ACCESS_KEY_ID"] = S3AccessKey,
        ["AWS_SECRET_ACCESS_KEY"] = S3SecretKey,
        ["Registry__Metadata__ConnectionString"] = PostgresConnectionString,
    };
}

/// <summary>
/// The crash harness against two replicas (issue #12): both run the real server on one S3 bucket prefix and one
/// PostgreSQL database, nginx round-robins between them with no affinity, and every client talks only to nginx. Each
/// round one replica (the other one each round) is SIGKILLed mid-traffic while the other goes on serving; the upload
/// sessions opened before the kill are continued on the survivor; then the ledger is checked through the proxy, the
/// killed replica is restarted and the next round begins. <c>verify</c> runs on the stores after the last round.
/// </summary>
internal static class ScaleOutHarness
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan VerifyTimeout = TimeSpan.FromMinutes(5);
    private static readonly TimeSpan DrainTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan SessionsTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan BackInRotationTimeout = TimeSpan.FromSeconds(30);

    private sealed class Replica(string name, int port, string storage)
    {
        public string Name { get; } = name;
        public int Port { get; } = port;
        public string Storage { get; } = storage;
        public string HostPort => $"127.0.0.1:{Port}";
        public ServerProcess? Process { get; set; }
    }

    public static async Task<HarnessResult> RunAsync(HarnessOptions options, ScaleOutOptions scaleOut, TextWriter output,
        CancellationToken ct)
    {
        if (options.Sabotage || options.GarbageCollection)
            throw new ArgumentException("--sabotage and --gc work on one server's folder; the scale-out mode has neither");
        var ownsWork = options.StoragePath is null;
        var work = options.StoragePath is { } path
            ? Directory.CreateDirectory(path).FullName
            : Directory.CreateTempSubdirectory("registry-crash-scale-").FullName;
        // nginx's workers run as nobody when the harness runs as root: they must be able to reach the proxy's dir.
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(work, (UnixFileMode)0b111_101_101);
        output.WriteLine($"crash harness, scale-out: seed {options.Seed}, {options.Rounds} rounds, {options.Workers} workers, " +
                         $"traffic {options.MinTraffic.TotalSeconds:0.0}-{options.MaxTraffic.TotalSeconds:0.0} s, " +
                         $"then {scaleOut.AfterKill.TotalSeconds:0.0} s on the surviving replica");
        output.WriteLine($"  server  {options.ServerPath}");
        output.WriteLine($"  stores  s3 {scaleOut.S3ServiceUrl}/{scaleOut.S3Bucket}/{scaleOut.S3Prefix}, postgres " +
                         $"{RedactPassword(scaleOut.PostgresConnectionString)}");
        output.WriteLine($"  work    {work}");

        var random = new Random(options.Seed);
        var ledgers = Enumerable.Range(0, options.Workers).Select(w => new RepositoryLedger($"crash/w{w}")).ToArray();
        var sessionsLedger = new RepositoryLedger("crash/sessions");
        RepositoryLedger[] allLedgers = [.. ledgers, sessionsLedger];
        var shared = Enumerable.Range(0, 6).Select(_ => Content.Random(random.Next(), random.Next(64 << 10, 768 << 10))).ToArray();
        var errors = new List<string>();
        long acknowledged = 0, checkedObjects = 0;
        int rounds = 0, continued = 0, fromKilled = 0, cutOff = 0;
        Replica[] replicas =
        [
            new("A", ServerProcess.FreePort(), Directory.CreateDirectory(Path.Combine(work, "replica-a")).FullName),
            new("B", ServerProcess.FreePort(), Directory.CreateDirectory(Path.Combine(work, "replica-b")).FullName),
        ];
        ProxyProcess? proxy = null;
        await using var onCancel = ct.Register(() =>
        {
            foreach (var replica in replicas) replica.Process?.Kill();
        });
        try
        {
            foreach (var replica in replicas) replica.Process = await StartAsync(options, scaleOut, replica);
            proxy = await ProxyProcess.StartAsync(scaleOut.ProxyScript, Path.Combine(work, "stack"),
                replicas.Select(r => r.Process!.BaseAddress));
            output.WriteLine($"  proxy   {proxy.Url} over replica A {replicas[0].HostPort} and B {replicas[1].HostPort}");
            output.Flush();

            for (var round = 1; round <= options.Rounds && !ct.IsCancellationRequested; round++)
            {
                var roundErrors = new List<string>();
                var clock = Stopwatch.StartNew();
                var victim = replicas[(round - 1) % 2];
                var survivor = replicas[round % 2];

                var traffic = options.MinTraffic + (options.MaxTraffic - options.MinTraffic) * random.NextDouble();
                var context = new TrafficContext { SurvivorServes = true };
                var roundFromKilled = 0;
                using (var http = Harness.NewClient(proxy.Url))
                {
                    var actor = new SessionActor(sessionsLedger, http, new Random(Mix(options.Seed, round, -1)), context);
                    var tasks = ledgers.Select((ledger, w) =>
                            Task.Run(() => new Worker(ledger, http, new Random(Mix(options.Seed, round, w)), context, shared).RunAsync()))
                        .Append(Task.Run(actor.RunAsync))
                        .ToArray();
                    // The kill comes after the random traffic time, and never before the sessions meant to outlive it
                    // are open.
                    await Task.WhenAll(Task.Delay(traffic, ct), Task.WhenAny(actor.Opened, Task.Delay(SessionsTimeout, ct)));
                    if (!actor.Opened.IsCompleted)
                        roundErrors.Add($"the upload sessions were not open {SessionsTimeout.TotalSeconds:0} s into the round");
                    context.Killed = true;
                    victim.Process!.Kill();
                    context.MarkKillDone();
                    await Task.Delay(scaleOut.AfterKill, ct);
                    context.Stopped = true;
                    var all = Task.WhenAll(tasks);
                    if (await Task.WhenAny(all, Task.Delay(DrainTimeout, ct)) != all)
                        roundErrors.Add($"clients still waiting {DrainTimeout.TotalSeconds:0} s after the round ended");
                    // Of the sessions continued on the survivor, those the killed replica had served a request of
                    // (nginx's access log names the replica of each request).
                    roundFromKilled = actor.Continued.Count(session =>
                        proxy.UpstreamsOf(SessionId(session.Location)).Contains(victim.HostPort));
                }
                roundErrors.AddRange(context.Errors);
                roundErrors.AddRange(victim.Process.TakeFailures().Select(f => $"replica {victim.Name} logged before the kill: {f}"));
                victim.Process.Dispose();
                victim.Process = null;

                // Everything acknowledged, through the proxy: only the survivor can answer.
                var check = await Checker.RunAsync(allLedgers, proxy.Url);
                roundErrors.AddRange(check.Errors);
                roundErrors.AddRange(survivor.Process!.TakeFailures().Select(f => $"replica {survivor.Name} logged: {f}"));
                if (survivor.Process.HasExited) roundErrors.Add($"replica {survivor.Name} exited with {survivor.Process.ExitCode}");

                // The killed replica comes back on its port, and the proxy sends it requests again before the next
                // kill takes the other one away.
                victim.Process = await StartAsync(options, scaleOut, victim);
                if (!await BackInRotationAsync(proxy, victim, round))
                    roundErrors.Add($"the proxy sent no request to the restarted replica {victim.Name} within {BackInRotationTimeout.TotalSeconds:0} s");

                rounds++;
                acknowledged += context.Acknowledged;
                checkedObjects += check.Checked;
                continued += context.SessionsContinuedAfterKill;
                fromKilled += roundFromKilled;
                cutOff += context.CutOff;
                errors.AddRange(roundErrors.Select(e => $"round {round}: {e}"));
                var kinds = string.Join(", ", context.AcknowledgedByKind.OrderBy(k => k.Key).Select(k => $"{k.Key} {k.Value}"));
                output.WriteLine($"round {round}/{options.Rounds}: {traffic.TotalSeconds:0.00} s of traffic, SIGKILL of replica {victim.Name}, " +
                                 $"{scaleOut.AfterKill.TotalSeconds:0.0} s more on {survivor.Name}; acknowledged {context.Acknowledged} ({kinds}); " +
                                 $"cut off by the kill {context.CutOff}; sessions continued after the kill {context.SessionsContinuedAfterKill} " +
                                 $"({roundFromKilled} of them served by {victim.Name} before); " +
                                 $"checked {check.Checked} (sessions resumed {check.SessionsResumed}, gone {check.SessionsGone}); " +
                                 $"errors {roundErrors.Count}; {clock.Elapsed.TotalSeconds:0.0} s");
                if (options.Verbose)
                    foreach (var request in context.CutOffRequests) output.WriteLine($"  cut off: {request}");
                foreach (var error in roundErrors.Take(25)) output.WriteLine($"  ERROR {error}");
                if (roundErrors.Count > 25) output.WriteLine($"  … {roundErrors.Count - 25} more errors");
                output.Flush();
            }

            // Both stopped, so nothing writes while verify compares the bucket with the database.
            foreach (var replica in replicas)
            {
                replica.Process?.Dispose();
                replica.Process = null;
            }
            if (!ct.IsCancellationRequested)
            {
                var verify = await ServerProcess.VerifyAsync(options.ServerPath, Path.Combine(work, "verify"), VerifyTimeout,
                    scaleOut.Settings, scaleOut.Environment);
                output.WriteLine($"verify (s3 + postgres, after the last round): {verify.Summary}");
                if (verify.ExitCode != 0)
                    errors.Add($"verify exited with {verify.ExitCode}:{Environment.NewLine}{verify.Output.TrimEnd()}");
                else if (options.Verbose)
                    output.WriteLine(verify.Output.TrimEnd());
            }
        }
        catch (Exception) when (ct.IsCancellationRequested)
        {
            errors.Add("cancelled");
            output.WriteLine("  cancelled: the replicas were killed and the run stopped");
        }
        catch (Exception e)
        {
            errors.Add($"harness stopped: {e.Message}");
            output.WriteLine($"  ERROR harness stopped: {e}");
            foreach (var replica in replicas)
                if (replica.Process is { } process)
                    foreach (var line in process.Log.TakeLast(30)) output.WriteLine($"  replica {replica.Name}: {line}");
        }
        finally
        {
            foreach (var replica in replicas) replica.Process?.Dispose();
            if (proxy is not null)
            {
                try
                {
                    await proxy.DisposeAsync();
                }
                catch (InvalidOperationException e)
                {
                    errors.Add(e.Message);
                }
            }
        }
        if (ct.IsCancellationRequested && !errors.Contains("cancelled")) errors.Add("cancelled");

        if (ownsWork && !options.KeepStorage && errors.Count == 0)
            try { Directory.Delete(work, recursive: true); } catch (IOException) { }
        else
            output.WriteLine($"work folder kept at {work} (the objects stay under s3 prefix {scaleOut.S3Prefix})");
        output.WriteLine($"seed {options.Seed}");
        output.WriteLine($"rounds {rounds}, acknowledged {acknowledged}, checked {checkedObjects}, " +
                         $"sessions continued after the kill {continued} ({fromKilled} of them served by the killed replica before), " +
                         $"cut off by the kills {cutOff}, errors {errors.Count}");
        output.Flush();
        return new HarnessResult(rounds, acknowledged, checkedObjects, errors.Count, errors)
        {
            SessionsContinuedAfterKill = continued,
            SessionsContinuedFromKilledReplica = fromKilled,
            CutOffByKill = cutOff,
        };
    }

    private static Task<ServerProcess> StartAsync(HarnessOptions options, ScaleOutOptions scaleOut, Replica replica) =>
        ServerProcess.StartAsync(options.ServerPath, replica.Storage, StartTimeout, scaleOut.Settings, replica.Port,
            scaleOut.Environment);

    /// <summary>
    /// nginx leaves a replica that failed out for its fail_timeout (5 s): probe through the proxy until one request
    /// is served by the restarted replica, so the next kill, of the other one, leaves a replica that takes requests.
    /// </summary>
    private static async Task<bool> BackInRotationAsync(ProxyProcess proxy, Replica replica, int round)
    {
        using var http = Harness.NewClient(proxy.Url);
        var marker = $"crash-probe-{round}-{Guid.NewGuid():N}";
        var deadline = Stopwatch.StartNew();
        for (var i = 0; deadline.Elapsed < BackInRotationTimeout; i++)
        {
            using var response = await http.GetAsync($"v2/?{marker}={i}");
            if (response.StatusCode != HttpStatusCode.OK) return false;
            // nginx logs a request after its response went out; give the line a moment.
            for (var wait = 0; wait < 20; wait++)
            {
                var upstreams = proxy.UpstreamsOf(marker);
                if (upstreams.Contains(replica.HostPort)) return true;
                if (upstreams.Count > i) break;
                await Task.Delay(10);
            }
            await Task.Delay(100);
        }
        return false;
    }

    /// <summary>The session's id: the last segment of its Location's path.</summary>
    private static string SessionId(string location) => location.Split('?')[0].TrimEnd('/').Split('/')[^1];

    private static string RedactPassword(string connectionString) => string.Join(';', connectionString.Split(';')
        .Select(p => p.StartsWith("Password=", StringComparison.OrdinalIgnoreCase) ? "Password=…" : p));

    private static int Mix(int seed, int round, int worker) => unchecked(seed * 1_000_003 + round * 7_919 + worker * 104_729);
}
