using System.Globalization;
using System.Runtime.InteropServices;

namespace Registry.CrashHarness;

internal static class Program
{
    private const string Usage = """
        usage: Registry.CrashHarness --server <path/to/Registry.Api.dll> [--rounds N] [--seed S] [--workers W]
                                     [--storage DIR] [--keep] [--min-traffic SECONDS] [--max-traffic SECONDS] [--verbose] [--sabotage] [--gc]
                                     [--scale-out [--after-kill SECONDS] [--proxy-script PATH]]
        Each round: start the server on a free loopback port, run W concurrent clients for a random time, SIGKILL the
        server mid-traffic, run `verify`, restart and check that everything acknowledged survived.
        Exit code 0 when no round found an error. --sabotage damages the storage after each kill (one blob file
        deleted, upload files cut short) to show that the checks notice: it must end with errors. --gc adds a garbage
        collection actor that starts runs back to back during traffic, so kills land in the middle of sweeps.
        --scale-out: two replicas on S3 and PostgreSQL (S3_ENDPOINT, S3_ACCESS_KEY, S3_SECRET_KEY, S3_BUCKET,
        S3_REGION, PG_CONNECTION_STRING from `eval "$(scripts/stack/stack.sh up ceph postgres)"`; a new key prefix and
        a new database per run) behind scripts/stack/nginx.sh; each round kills one of them (the other one the next
        round) while the clients go on through the proxy for --after-kill seconds (default 1.5), checks, restarts it.
        """;

    public static async Task<int> Main(string[] args)
    {
        HarnessOptions options;
        try
        {
            options = Parse(args);
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine(e.Message);
            Console.Error.WriteLine(Usage);
            return 2;
        }
        using var cancel = new CancellationTokenSource();
        void Stop(PosixSignalContext context)
        {
            context.Cancel = true;
            cancel.Cancel();
        }
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
        if (options.ScaleOut is { } scaleOut)
        {
            try
            {
                options = options with { ScaleOut = scaleOut with { PostgresConnectionString = await CreateDatabaseAsync(scaleOut.PostgresConnectionString) } };
            }
            catch (Npgsql.NpgsqlException e)
            {
                Console.Error.WriteLine($"could not create the run's database with PG_CONNECTION_STRING: {e.Message}");
                return 2;
            }
        }
        var result = await Harness.RunAsync(options, Console.Out, cancel.Token);
        return result.Errors == 0 ? 0 : 1;
    }

    /// <summary>A new database on the server of <paramref name="connectionString"/>: the ledger starts empty.</summary>
    private static async Task<string> CreateDatabaseAsync(string connectionString)
    {
        var name = $"crash_{Guid.NewGuid():N}";
        await using (var connection = new Npgsql.NpgsqlConnection(connectionString))
        {
            await connection.OpenAsync();
            await using var create = new Npgsql.NpgsqlCommand($"CREATE DATABASE {name}", connection);
            await create.ExecuteNonQueryAsync();
        }
        Console.WriteLine($"database {name} created for this run");
        return new Npgsql.NpgsqlConnectionStringBuilder(connectionString) { Database = name }.ConnectionString;
    }

    private static string Environment(string name) =>
        System.Environment.GetEnvironmentVariable(name) is { Length: > 0 } value
            ? value
            : throw new ArgumentException($"--scale-out needs {name} (eval \"$(scripts/stack/stack.sh up ceph postgres)\")");

    /// <summary>scripts/stack/nginx.sh above the current folder or the server's.</summary>
    private static string? FindProxyScript(string server)
    {
        foreach (var start in new[] { System.Environment.CurrentDirectory, Path.GetDirectoryName(Path.GetFullPath(server))! })
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, "scripts", "stack", "nginx.sh")))
                    return Path.Combine(dir.FullName, "scripts", "stack", "nginx.sh");
        return null;
    }

    private static HarnessOptions Parse(string[] args)
    {
        string? server = null, storage = null, proxyScript = null;
        int rounds = 5, workers = HarnessOptions.DefaultWorkers;
        int? seed = null;
        bool keep = false, verbose = false, sabotage = false, gc = false, scaleOut = false;
        double minTraffic = 0.3, maxTraffic = 3, afterKill = 1.5;
        for (var i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            int Int() => int.TryParse(Value(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var v)
                ? v : throw new ArgumentException($"{args[i - 1]} needs an integer");
            double Seconds() => double.TryParse(Value(), NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && v > 0
                ? v : throw new ArgumentException($"{args[i - 1]} needs a positive number of seconds");
            switch (args[i])
            {
                case "--server": server = Value(); break;
                case "--rounds": rounds = Int(); break;
                case "--seed": seed = Int(); break;
                case "--workers": workers = Int(); break;
                case "--storage": storage = Value(); break;
                case "--keep": keep = true; break;
                case "--min-traffic": minTraffic = Seconds(); break;
                case "--max-traffic": maxTraffic = Seconds(); break;
                case "--verbose": verbose = true; break;
                case "--sabotage": sabotage = true; break;
                case "--gc": gc = true; break;
                case "--scale-out": scaleOut = true; break;
                case "--after-kill": afterKill = Seconds(); break;
                case "--proxy-script": proxyScript = Value(); break;
                case "-h" or "--help": throw new ArgumentException("");
                default: throw new ArgumentException($"unknown argument '{args[i]}'");
            }
        }
        if (server is null) throw new ArgumentException("--server is required");
        if (!File.Exists(server)) throw new ArgumentException($"no server assembly at '{server}' (build src/Registry.Api first)");
        if (rounds < 1 || workers < 1) throw new ArgumentException("--rounds and --workers must be at least 1");
        if (maxTraffic < minTraffic) throw new ArgumentException("--max-traffic must not be below --min-traffic");
        ScaleOutOptions? scaleOutOptions = null;
        if (scaleOut)
        {
            if (sabotage || gc) throw new ArgumentException("--sabotage and --gc do not go with --scale-out");
            proxyScript ??= FindProxyScript(server)
                            ?? throw new ArgumentException("scripts/stack/nginx.sh not found above here: give --proxy-script");
            scaleOutOptions = new ScaleOutOptions
            {
                S3ServiceUrl = Environment("S3_ENDPOINT"),
                S3AccessKey = Environment("S3_ACCESS_KEY"),
                S3SecretKey = Environment("S3_SECRET_KEY"),
                S3Bucket = Environment("S3_BUCKET"),
                S3Region = Environment("S3_REGION"),
                S3Prefix = $"crash-{Guid.NewGuid():N}/",
                PostgresConnectionString = Environment("PG_CONNECTION_STRING"),
                ProxyScript = Path.GetFullPath(proxyScript),
                AfterKill = TimeSpan.FromSeconds(afterKill),
            };
        }
        return new HarnessOptions
        {
            ServerPath = Path.GetFullPath(server),
            Rounds = rounds,
            Seed = seed ?? System.Environment.TickCount & 0x7FFFFFFF,
            Workers = workers,
            StoragePath = storage,
            KeepStorage = keep,
            MinTraffic = TimeSpan.FromSeconds(minTraffic),
            MaxTraffic = TimeSpan.FromSeconds(maxTraffic),
            Verbose = verbose,
            Sabotage = sabotage,
            GarbageCollection = gc,
            ScaleOut = scaleOutOptions,
        };
    }
}
