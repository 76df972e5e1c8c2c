using System.Net.Http.Headers;
using Registry.Tests.Infrastructure;

namespace Registry.Tests.Stack;

/// <summary>
/// Two registry replicas (real Kestrel on loopback, each on its own storage) behind the nginx of
/// <c>scripts/stack/nginx.sh</c>, started once per test run for every test in the "Proxy" collection; nginx is
/// stopped at the end by the script's <c>stop</c>, the replicas by their servers. If the script fails, every test of
/// the collection fails with its stderr.
/// </summary>
public sealed class ProxyStack : IAsyncLifetime
{
    private StackScript _script = null!;

    /// <summary>The replicas, in the order they are listed in PROXY_UPSTREAMS.</summary>
    public IReadOnlyList<RegistryServer> Replicas { get; private set; } = [];

    public Uri ProxyUrl { get; private set; } = null!;

    /// <summary>nginx's access log: one line per request, naming the replica that served it (upstream=host:port).</summary>
    public string AccessLog { get; private set; } = "";

    /// <summary>The proxy's own dir (config, logs, temp dirs).</summary>
    public string ProxyDir { get; private set; } = "";

    public async Task InitializeAsync()
    {
        // settings given: always in-process servers, even when REGISTRY_TEST_URL points the other tests elsewhere
        var replicas = new List<RegistryServer>();
        for (var i = 0; i < 2; i++) replicas.Add(await RegistryServer.StartAsync(settings: new Dictionary<string, string?>()));
        Replicas = replicas;
        _script = new StackScript("nginx", new Dictionary<string, string>
        {
            ["PROXY_PORT"] = StackScript.PortFromEnvironment("PROXY_PORT"),
            ["PROXY_UPSTREAMS"] = string.Join(' ', replicas.Select(r => r.HostPort)),
        });
        var exports = await _script.StartAsync();
        ProxyUrl = new Uri(exports["PROXY_URL"].TrimEnd('/') + "/");
        AccessLog = exports["PROXY_ACCESS_LOG"];
        ProxyDir = exports["PROXY_DIR"];
    }

    public async Task DisposeAsync()
    {
        try
        {
            if (_script is not null) await _script.StopAsync();
        }
        finally
        {
            foreach (var replica in Replicas) await replica.DisposeAsync();
        }
    }

    public HttpClient CreateClient() => new(new SocketsHttpHandler { AllowAutoRedirect = false })
    {
        BaseAddress = ProxyUrl,
        Timeout = TimeSpan.FromMinutes(5),
        DefaultRequestHeaders = { Accept = { new MediaTypeWithQualityHeaderValue("*/*") } },
    };

    /// <summary>
    /// The replicas (host:port, as nginx names them) that served the requests whose target contains
    /// <paramref name="marker"/>, in log order; waits until <paramref name="count"/> of them are logged, since nginx
    /// writes a line only after the response has gone out.
    /// </summary>
    public Task<IReadOnlyList<string>> UpstreamsOfAsync(string marker, int count) => UpstreamsOfAsync(AccessLog, marker, count);

    /// <summary>The same, from the access log of any proxy that nginx.sh started.</summary>
    public static async Task<IReadOnlyList<string>> UpstreamsOfAsync(string accessLog, string marker, int count)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            var upstreams = (await File.ReadAllLinesAsync(accessLog))
                .Where(line => line.Contains(marker, StringComparison.Ordinal))
                .Select(line => line.Split(' ').Single(f => f.StartsWith("upstream=", StringComparison.Ordinal))["upstream=".Length..])
                .ToList();
            if (upstreams.Count >= count || DateTime.UtcNow > deadline) return upstreams;
            await Task.Delay(50);
        }
    }

    /// <summary>nginx's error log (warnings included, such as a body buffered to a temporary file).</summary>
    public string ErrorLog => Path.Combine(ProxyDir, "log", "error.log");
}

[CollectionDefinition(Name)]
public sealed class ProxyCollection : ICollectionFixture<ProxyStack>
{
    public const string Name = "Proxy";
}
