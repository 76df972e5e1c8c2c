using Registry.CrashHarness;
using Xunit.Abstractions;

namespace Registry.Tests.Reliability;

/// <summary>
/// The short form of the crash harness (issue #5): three rounds of concurrent pushes, chunked uploads, tag moves and
/// deletes against the real server as a child process, each ended by SIGKILL mid-traffic, then `verify`, a restart
/// and a check of everything acknowledged. The long form (50+ rounds) is in tests/Registry.CrashHarness/README.md.
/// </summary>
public class CrashHarnessTests(ITestOutputHelper output)
{
    /// <summary>The server the test project references, copied next to the test assembly; run with `dotnet`.</summary>
    internal static string ServerPath
    {
        get
        {
            var path = Path.Combine(AppContext.BaseDirectory, "Registry.Api.dll");
            File.Exists(path).Should().BeTrue($"the server assembly should be next to the tests at {path}");
            File.Exists(Path.ChangeExtension(path, ".runtimeconfig.json")).Should().BeTrue("`dotnet Registry.Api.dll` needs its runtimeconfig");
            return path;
        }
    }

    private async Task<(HarnessResult Result, string Log)> RunAsync(HarnessOptions options)
    {
        var log = new StringWriter();
        var result = await Harness.RunAsync(options, TextWriter.Synchronized(log));
        output.WriteLine(log.ToString());
        return (result, log.ToString());
    }

    [Fact]
    public async Task Three_rounds_of_SIGKILL_mid_traffic_lose_nothing_that_was_acknowledged()
    {
        var (result, log) = await RunAsync(new HarnessOptions
        {
            ServerPath = ServerPath,
            Rounds = 3,
            Seed = Environment.TickCount & int.MaxValue,
            MaxTraffic = TimeSpan.FromSeconds(2.5),
        });

        result.Rounds.Should().Be(3, log);
        result.Acknowledged.Should().BeGreaterThan(50, "the clients should get real work done before each kill\n" + log);
        result.Checked.Should().BeGreaterThan(0, log);
        result.Errors.Should().Be(0, log);
    }

    [Fact]
    public async Task SIGKILL_during_garbage_collection_runs_loses_nothing_that_was_acknowledged()
    {
        var (result, log) = await RunAsync(new HarnessOptions
        {
            ServerPath = ServerPath,
            Rounds = 2,
            Seed = Environment.TickCount & int.MaxValue,
            MinTraffic = TimeSpan.FromSeconds(1),
            MaxTraffic = TimeSpan.FromSeconds(2.5),
            GarbageCollection = true,
        });

        result.Rounds.Should().Be(2, log);
        log.Should().Contain("gc run", "garbage collection runs should finish between the kills\n" + log);
        result.Errors.Should().Be(0, log);
    }

    [Fact]
    public async Task The_harness_reports_a_storage_that_lost_acknowledged_data()
    {
        // A storage folder with errors is kept by the harness for inspection; this one is expected to have them.
        var storage = Directory.CreateTempSubdirectory("registry-crash-sabotage-").FullName;
        HarnessResult result;
        string log;
        try
        {
            (result, log) = await RunAsync(new HarnessOptions
            {
                ServerPath = ServerPath,
                StoragePath = storage,
                Rounds = 1,
                Seed = 12345,
                MinTraffic = TimeSpan.FromSeconds(1),
                MaxTraffic = TimeSpan.FromSeconds(1.5),
                Sabotage = true,
            });
        }
        finally
        {
            Directory.Delete(storage, recursive: true);
        }

        result.Rounds.Should().Be(1, log);
        result.Errors.Should().BeGreaterThan(0, "a deleted blob file and cut-short uploads must not go unnoticed\n" + log);
        log.Should().Contain("verify exited with 1");
    }
}
