using Registry.CrashHarness;
using Registry.Tests.Stack;
using Xunit.Abstractions;

namespace Registry.Tests.Reliability;

/// <summary>
/// The short form of the crash harness's scale-out mode (issue #12): two replicas of the real server (child
/// processes) on one S3 bucket prefix of the stack's Ceph and one PostgreSQL database, nginx round-robin in front
/// (scripts/stack/nginx.sh), every client talking only to nginx. Each round SIGKILLs one replica mid-traffic (A, then
/// B, then A) while the other goes on serving, continues the upload sessions opened before the kill, checks everything
/// acknowledged through the proxy and restarts the killed replica; `verify` runs on the stores at the end. The long
/// form is in tests/Registry.CrashHarness/README.md.
/// </summary>
[Collection(CephCollection.Name)]
public sealed class ScaleOutCrashHarnessTests(CephStack ceph, ITestOutputHelper output)
{
    [Fact]
    public async Task A_replica_killed_mid_push_loses_nothing_acknowledged_and_its_open_sessions_continue_on_the_other()
    {
        var s3 = ceph.NewSettings();
        var options = new HarnessOptions
        {
            ServerPath = CrashHarnessTests.ServerPath,
            Rounds = 3,
            Seed = Environment.TickCount & int.MaxValue,
            MaxTraffic = TimeSpan.FromSeconds(2.5),
            ScaleOut = new ScaleOutOptions
            {
                S3ServiceUrl = s3.ServiceUrl!,
                S3Bucket = s3.Bucket!,
                S3Region = s3.Region!,
                S3AccessKey = s3.AccessKey!,
                S3SecretKey = s3.SecretKey!,
                S3Prefix = s3.Prefix!,
                PostgresConnectionString = await PostgresStack.CreateDatabaseAsync(),
                ProxyScript = new StackScript("nginx", new Dictionary<string, string>()).Path,
            },
        };
        var log = new StringWriter();

        var result = await Harness.RunAsync(options, TextWriter.Synchronized(log));

        output.WriteLine(log.ToString());
        result.Rounds.Should().Be(3, log.ToString());
        result.Acknowledged.Should().BeGreaterThan(100, "the clients should get real work done in each round\n" + log);
        result.SessionsContinuedAfterKill.Should().BeGreaterThan(0,
            "upload sessions opened before a kill should be closed on the surviving replica\n" + log);
        result.SessionsContinuedFromKilledReplica.Should().BeGreaterThan(0,
            "some of them had requests served by the replica that was then killed\n" + log);
        log.ToString().Should().Contain("verify (s3 + postgres, after the last round)").And.Contain("consistent");
        result.Errors.Should().Be(0, log.ToString());
    }
}
