using System.Globalization;
using System.Runtime.InteropServices;

namespace Registry.CrashHarness;

internal static class Program
{
    private const string Usage = """
        usage: Registry.CrashHarness --server <path/to/Registry.Api.dll> [--rounds N] [--seed S] [--workers W]
                                     [--storage DIR] [--keep] [--min-traffic SECONDS] [--max-traffic SECONDS] [--verbose] [--sabotage] [--gc]
        Each round: start the server on a free loopback port, run W concurrent clients for a random time, SIGKILL the
        server mid-traffic, run `verify`, restart and check that everything acknowledged survived.
        Exit code 0 when no round found an error. --sabotage damages the storage after each kill (one blob file
        deleted, upload files cut short) to show that the checks notice: it must end with errors. --gc adds a garbage
        collection actor that starts runs back to back during traffic, so kills land in the middle of sweeps.
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
        var result = await Harness.RunAsync(options, Console.Out, cancel.Token);
        return result.Errors == 0 ? 0 : 1;
    }

    private static HarnessOptions Parse(string[] args)
    {
        string? server = null, storage = null;
        int rounds = 5, workers = HarnessOptions.DefaultWorkers;
        int? seed = null;
        bool keep = false, verbose = false, sabotage = false, gc = false;
        double minTraffic = 0.3, maxTraffic = 3;
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
                case "-h" or "--help": throw new ArgumentException("");
                default: throw new ArgumentException($"unknown argument '{args[i]}'");
            }
        }
        if (server is null) throw new ArgumentException("--server is required");
        if (!File.Exists(server)) throw new ArgumentException($"no server assembly at '{server}' (build src/Registry.Api first)");
        if (rounds < 1 || workers < 1) throw new ArgumentException("--rounds and --workers must be at least 1");
        if (maxTraffic < minTraffic) throw new ArgumentException("--max-traffic must not be below --min-traffic");
        return new HarnessOptions
        {
            ServerPath = Path.GetFullPath(server),
            Rounds = rounds,
            Seed = seed ?? Environment.TickCount & 0x7FFFFFFF,
            Workers = workers,
            StoragePath = storage,
            KeepStorage = keep,
            MinTraffic = TimeSpan.FromSeconds(minTraffic),
            MaxTraffic = TimeSpan.FromSeconds(maxTraffic),
            Verbose = verbose,
            Sabotage = sabotage,
            GarbageCollection = gc,
        };
    }
}
