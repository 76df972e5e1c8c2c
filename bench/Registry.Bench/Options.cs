using System.Globalization;

namespace Registry.Bench;

/// <summary>Command-line settings. Every size and duration has a full default and a <c>--quick</c> default.</summary>
internal sealed class Options
{
    public static readonly string[] AllPhases =
        ["ceilings", "push", "pull", "small", "manifests", "reads", "tags", "catalog", "ci-pull", "ci-push"];

    public Uri? Url { get; private set; }
    /// <summary>The server's process, or the processes of its replicas (empty: none sampled).</summary>
    public int[] Pids { get; private set; } = [];
    public bool Quick { get; private set; }
    public string? JsonPath { get; private set; }
    public string Label { get; private set; } = "";
    public string ScratchDir { get; private set; } = Path.GetTempPath();
    public HashSet<string> Phases { get; private set; } = [.. AllPhases];

    public long BlobSize { get; private set; }
    public int ChunkSize { get; private set; } = 8 << 20;
    public TimeSpan Duration { get; private set; }
    public TimeSpan LatencyTime { get; private set; }
    public int[] TagCounts { get; private set; } = [];
    public int Repositories { get; private set; }
    public long DiskBytes { get; private set; }
    public long LoopbackBytes { get; private set; }
    public int Writers { get; private set; } = 8;
    public int Readers { get; private set; } = 32;
    public int CiPulls { get; private set; }
    public TimeSpan IdleAfter { get; private set; }
    public int CiArtifacts { get; private set; }

    /// <summary>null: anonymous; <c>basic</c> or <c>bearer</c> with <see cref="User"/> and <see cref="Password"/>.</summary>
    public string? Auth { get; private set; }
    public string User { get; private set; } = "";
    public string Password { get; private set; } = "";

    public Credentials? CreateCredentials() => Auth is null ? null : new Credentials(Auth, User, Password);

    public const string Usage = """
        usage: Registry.Bench --url http://127.0.0.1:5000 [--pid N] [--quick] [--json out.json] [options]
               Registry.Bench --ceilings-only [--quick] [--scratch DIR] [--json out.json]
               Registry.Bench compare --names ours,distribution --a a1.json,a2.json --b b1.json,b2.json
               Registry.Bench compare --names x,y,z --a x1.json,x2.json --b y1.json --c z1.json   (side by side;
                      --side-by-side gives that layout for two as well)

          --url URL         registry to benchmark (plain HTTP)
          --auth MODE       authenticate every request: basic (htpasswd) or bearer (token flow via the challenge)
          --user U --password P   the credentials for --auth
          --pid N           the registry's process id: sample its RSS (VmRSS, VmHWM) every 50 ms and its CPU time
          --pid N,M,...     (or --pids) the processes of the registry's replicas: the same for each, plus their sum
          --quick           small sizes and 2 s phases (a smoke test, < 1 minute)
          --json FILE       also write the results as JSON (what compare reads)
          --label TEXT      a name stored in the JSON (e.g. ours, distribution)
          --scratch DIR     where the disk ceiling writes its file; put it on the registry's filesystem (default: /tmp)
          --only LIST       phases to run, comma separated: ceilings,push,pull,small,manifests,reads,
                            tags,catalog,ci-pull,ci-push (the last two: the CI-shaped phases)
          --skip LIST       phases not to run
          --ceilings-only   same as --only ceilings (no --url needed)
          --blob-mib N      size of the big blob (default 512, quick 64)
          --writers N       concurrent writers in the small-push and manifest phases (default 8)
          --duration S      length of each fixed-duration phase in seconds (default 10, quick 2)
          --tags N,M        tag counts for the tags list (default 1000,10000; quick 200,1000)
          --repos N         repositories for the catalog (default 10000; quick 300)
          --disk-mib N      size of the fsync'd disk ceiling file (default 1024, quick 128)
          --ci-pulls N      concurrent pulls of the 5-layer image in ci-pull (default 50)
          --ci-artifacts N  small artifacts per round in ci-push (default 200)
          --idle-after S    with --pid: wait S seconds after the last phase and report the server's RSS then
                            (default 45, quick 0)
        """;

    public static Options Parse(string[] args)
    {
        var o = new Options();
        string? blobMib = null, duration = null, tags = null, repos = null, diskMib = null, ciPulls = null,
            ciArtifacts = null, idleAfter = null;
        for (var i = 0; i < args.Length; i++)
        {
            var arg = args[i];
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{arg} needs a value");
            switch (arg)
            {
                case "--url": o.Url = new Uri(Next().TrimEnd('/') + "/"); break;
                case "--pid" or "--pids":
                    o.Pids = [.. Split(Next()).Select(p => int.Parse(p, CultureInfo.InvariantCulture))];
                    break;
                case "--quick": o.Quick = true; break;
                case "--json": o.JsonPath = Next(); break;
                case "--label": o.Label = Next(); break;
                case "--scratch": o.ScratchDir = Next(); break;
                case "--only": o.Phases = [.. Split(Next())]; break;
                case "--skip": o.Phases.ExceptWith(Split(Next())); break;
                case "--ceilings-only": o.Phases = ["ceilings"]; break;
                case "--blob-mib": blobMib = Next(); break;
                case "--duration": duration = Next(); break;
                case "--tags": tags = Next(); break;
                case "--repos": repos = Next(); break;
                case "--disk-mib": diskMib = Next(); break;
                case "--ci-pulls": ciPulls = Next(); break;
                case "--ci-artifacts": ciArtifacts = Next(); break;
                case "--idle-after": idleAfter = Next(); break;
                case "--writers": o.Writers = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--auth": o.Auth = Next(); break;
                case "--user": o.User = Next(); break;
                case "--password": o.Password = Next(); break;
                default: throw new ArgumentException($"unknown argument '{arg}'");
            }
        }
        foreach (var phase in o.Phases)
            if (!AllPhases.Contains(phase)) throw new ArgumentException($"unknown phase '{phase}'");
        if (o.Url is null && o.Phases.Any(p => p != "ceilings")) throw new ArgumentException("--url is required");
        if (o.Auth is { } auth && !Credentials.IsValidMode(auth)) throw new ArgumentException("--auth is basic or bearer");

        var q = o.Quick;
        o.BlobSize = (blobMib is null ? (q ? 64 : 512) : long.Parse(blobMib, CultureInfo.InvariantCulture)) << 20;
        o.Duration = TimeSpan.FromSeconds(duration is null ? (q ? 2 : 10) : double.Parse(duration, CultureInfo.InvariantCulture));
        o.LatencyTime = TimeSpan.FromSeconds(q ? 1 : 5);
        o.TagCounts = tags is null ? (q ? [200, 1000] : [1000, 10000])
            : [.. Split(tags).Select(t => int.Parse(t, CultureInfo.InvariantCulture)).Order()];
        o.Repositories = repos is null ? (q ? 300 : 10000) : int.Parse(repos, CultureInfo.InvariantCulture);
        o.DiskBytes = (diskMib is null ? (q ? 128 : 1024) : long.Parse(diskMib, CultureInfo.InvariantCulture)) << 20;
        o.LoopbackBytes = o.BlobSize;
        o.CiPulls = ciPulls is null ? 50 : int.Parse(ciPulls, CultureInfo.InvariantCulture);
        o.CiArtifacts = ciArtifacts is null ? 200 : int.Parse(ciArtifacts, CultureInfo.InvariantCulture);
        o.IdleAfter = TimeSpan.FromSeconds(idleAfter is null ? (q ? 0 : 45)
            : double.Parse(idleAfter, CultureInfo.InvariantCulture));
        return o;
    }

    private static IEnumerable<string> Split(string list) =>
        list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    public bool Runs(string phase) => Phases.Contains(phase);
}
