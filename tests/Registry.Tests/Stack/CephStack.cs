using Amazon.Runtime;
using Amazon.S3;
using Registry.Storage.Blobs.S3;

namespace Registry.Tests.Stack;

/// <summary>
/// The single-node Ceph of <c>scripts/stack/ceph.sh</c> (monitor, memstore OSD, RADOS Gateway on loopback), started
/// once per test run for every test in the "Ceph" collection and stopped at the end by the script's <c>stop</c>.
/// If the script fails, every test of the collection fails with its stderr.
/// </summary>
/// <remarks>
/// The script owns one state dir, so one cluster serves every fixture that needs Ceph (this collection's, and the
/// scale-out stack's, which makes one of these itself): the first to start runs <c>start</c>, the last to stop runs
/// <c>stop</c>.
/// </remarks>
public sealed class CephStack : IAsyncLifetime
{
    private static readonly SemaphoreSlim Shared = new(1, 1);
    private static StackScript? _script;
    private static IReadOnlyDictionary<string, string>? _exports;
    private static int _holders;
    private bool _holding;

    public Uri Endpoint { get; private set; } = null!;
    public string AccessKey { get; private set; } = "";
    public string SecretKey { get; private set; } = "";
    public string Bucket { get; private set; } = "";
    public string Region { get; private set; } = "";

    public async Task InitializeAsync()
    {
        IReadOnlyDictionary<string, string> exports;
        await Shared.WaitAsync();
        try
        {
            if (_holders == 0)
            {
                _script = new StackScript("ceph", new Dictionary<string, string>
                {
                    ["S3_PORT"] = StackScript.PortFromEnvironment("S3_PORT"),
                    ["S3_MON_PORT"] = StackScript.PortFromEnvironment("S3_MON_PORT"),
                });
                _exports = await _script.StartAsync();
            }
            _holders++;
            _holding = true;
            exports = _exports!;
        }
        finally
        {
            Shared.Release();
        }
        Endpoint = new Uri(exports["S3_ENDPOINT"]);
        AccessKey = exports["S3_ACCESS_KEY"];
        SecretKey = exports["S3_SECRET_KEY"];
        Bucket = exports["S3_BUCKET"];
        Region = exports["S3_REGION"];
    }

    public async Task DisposeAsync()
    {
        if (!_holding) return;
        _holding = false;
        await Shared.WaitAsync();
        try
        {
            if (--_holders == 0)
            {
                var script = _script!;
                _script = null;
                _exports = null;
                await script.StopAsync();
            }
        }
        finally
        {
            Shared.Release();
        }
    }

    /// <summary>The registry's S3 settings for this Ceph's bucket, under a key prefix no other test uses.</summary>
    public S3Settings NewSettings() => new()
    {
        ServiceUrl = Endpoint.GetLeftPart(UriPartial.Authority),
        Bucket = Bucket,
        Region = Region,
        AccessKey = AccessKey,
        SecretKey = SecretKey,
        Prefix = $"test-{Guid.NewGuid():N}/",
    };

    /// <summary>The registry's own settings for <c>Registry:Storage:Kind=s3</c> on this Ceph.</summary>
    public Dictionary<string, string?> RegistrySettings(S3Settings? settings = null)
    {
        settings ??= NewSettings();
        return new Dictionary<string, string?>
        {
            ["Registry:Storage:Kind"] = "s3",
            ["Registry:Storage:S3:ServiceUrl"] = settings.ServiceUrl,
            ["Registry:Storage:S3:Bucket"] = settings.Bucket,
            ["Registry:Storage:S3:Region"] = settings.Region,
            ["Registry:Storage:S3:AccessKey"] = settings.AccessKey,
            ["Registry:Storage:S3:SecretKey"] = settings.SecretKey,
            ["Registry:Storage:S3:Prefix"] = settings.Prefix,
        };
    }

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
