using Amazon.Runtime;
using Amazon.S3;

namespace Registry.Tests.Stack;

/// <summary>
/// The single-node Ceph of <c>scripts/stack/ceph.sh</c> (monitor, memstore OSD, RADOS Gateway on loopback), started
/// once per test run for every test in the "Ceph" collection and stopped at the end by the script's <c>stop</c>.
/// If the script fails, every test of the collection fails with its stderr.
/// </summary>
public sealed class CephStack : IAsyncLifetime
{
    private readonly StackScript _script = new("ceph", new Dictionary<string, string>
    {
        ["S3_PORT"] = StackScript.PortFromEnvironment("S3_PORT"),
        ["S3_MON_PORT"] = StackScript.PortFromEnvironment("S3_MON_PORT"),
    });

    public Uri Endpoint { get; private set; } = null!;
    public string AccessKey { get; private set; } = "";
    public string SecretKey { get; private set; } = "";
    public string Bucket { get; private set; } = "";
    public string Region { get; private set; } = "";

    public async Task InitializeAsync()
    {
        var exports = await _script.StartAsync();
        Endpoint = new Uri(exports["S3_ENDPOINT"]);
        AccessKey = exports["S3_ACCESS_KEY"];
        SecretKey = exports["S3_SECRET_KEY"];
        Bucket = exports["S3_BUCKET"];
        Region = exports["S3_REGION"];
    }

    public Task DisposeAsync() => _script.StopAsync();

    /// <summary>
    /// An S3 client set up the way RGW 16.2 needs it: path-style addressing, the stack's region, and checksums
    /// only when an operation requires them (RGW 16.2 rejects the SDK's default trailing checksums).
    /// </summary>
    public AmazonS3Client CreateClient() => new(new BasicAWSCredentials(AccessKey, SecretKey), new AmazonS3Config
    {
        ServiceURL = Endpoint.ToString(),
        AuthenticationRegion = Region,
        ForcePathStyle = true,
        RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
        ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED,
    });
}

[CollectionDefinition(Name)]
public sealed class CephCollection : ICollectionFixture<CephStack>
{
    public const string Name = "Ceph";
}
