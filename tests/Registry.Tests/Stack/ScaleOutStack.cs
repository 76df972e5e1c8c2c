using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using Registry.Tests.Infrastructure;

namespace Registry.Tests.Stack;

/// <summary>
/// Issue #12's scale-out, for real: two in-process registry replicas with <c>Registry:Storage:Kind=s3</c> and
/// <c>Registry:Metadata:Kind=postgres</c>, sharing one fresh bucket prefix on the stack's Ceph and one fresh
/// PostgreSQL database, behind the nginx of <c>scripts/stack/nginx.sh</c> (round-robin, no affinity). Started once
/// per test run for every test in the "ScaleOut" collection; tests talk to the proxy only (<see cref="Client"/>,
/// <see cref="HostPort"/>). At the end nginx and Ceph are stopped by their scripts' <c>stop</c>, the replicas by
/// their servers (PostgreSQL by its own fixture, when the test process exits).
/// </summary>
/// <remarks>
/// nginx runs in a state dir of its own (<c>$REGISTRY_STACK_DIR/scale-out/nginx</c>) on a free port: the "Proxy"
/// collection's nginx (<see cref="ProxyStack"/>) owns <c>$REGISTRY_STACK_DIR/nginx</c> and PROXY_PORT, and may run
/// at the same time.
/// </remarks>
public sealed class ScaleOutStack : IAsyncLifetime, IRegistryTarget
{
    private readonly CephStack _ceph = new();
    private readonly IReadOnlyDictionary<string, string?> _extraSettings;
    private readonly string _stateDir;
    private StackScript? _proxy;

    public ScaleOutStack() : this(new Dictionary<string, string?>(), "scale-out")
    {
    }

    /// <summary>
    /// A stack of its own (the caller initialises and disposes it) whose replicas also get <paramref name="settings"/>,
    /// its nginx state under <c>$REGISTRY_STACK_DIR/&lt;stateDir&gt;</c>; it shares the run's Ceph.
    /// </summary>
    internal ScaleOutStack(IReadOnlyDictionary<string, string?> settings, string stateDir)
    {
        _extraSettings = settings;
        _stateDir = stateDir;
    }

    /// <summary>The replicas, in the order PROXY_UPSTREAMS lists them.</summary>
    public IReadOnlyList<RegistryServer> Replicas { get; private set; } = [];

    /// <summary>The settings both replicas run with.</summary>
    public IReadOnlyDictionary<string, string?> Settings { get; private set; } = new Dictionary<string, string?>();

    public Uri ProxyUrl { get; private set; } = null!;

    /// <summary>nginx's access log: one line per request, naming the replica that served it (upstream=host:port).</summary>
    public string AccessLog { get; private set; } = "";

    public HttpClient Client { get; private set; } = null!;

    public string HostPort => ProxyUrl.Authority;

    public async Task InitializeAsync()
    {
        await _ceph.InitializeAsync();
        var settings = _ceph.RegistrySettings();
        settings["Registry:Metadata:Kind"] = "postgres";
        settings["Registry:Metadata:ConnectionString"] = await PostgresStack.CreateDatabaseAsync();
        foreach (var (key, value) in _extraSettings) settings[key] = value;
        Settings = settings;

        // Both at once, as a deployment rolls them out: the schema migration on the empty database serialises itself.
        var starts = Enumerable.Range(0, 2).Select(_ => RegistryServer.StartAsync(settings)).ToList();
        try
        {
            await Task.WhenAll(starts);
        }
        catch
        {
            foreach (var started in starts.Where(t => t.IsCompletedSuccessfully)) await started.Result.DisposeAsync();
            throw;
        }
        var replicas = starts.Select(t => t.Result).ToList();
        Replicas = replicas;

        _proxy = new StackScript("nginx", new Dictionary<string, string>
        {
            ["REGISTRY_STACK_DIR"] = StateRoot,
            ["PROXY_PORT"] = CrashHarness.ServerProcess.FreePort().ToString(CultureInfo.InvariantCulture),
            ["PROXY_UPSTREAMS"] = string.Join(' ', replicas.Select(r => r.HostPort)),
        });
        var exports = await _proxy.StartAsync();
        ProxyUrl = new Uri(exports["PROXY_URL"].TrimEnd('/') + "/");
        AccessLog = exports["PROXY_ACCESS_LOG"];
        Client = CreateClient();
    }

    /// <summary>A client of the proxy; with <paramref name="from"/>, its connections come from that loopback address.</summary>
    public HttpClient CreateClient(IPAddress? from = null)
    {
        var handler = new SocketsHttpHandler { AllowAutoRedirect = false };
        if (from is not null)
            handler.ConnectCallback = async (context, ct) =>
            {
                var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
                try
                {
                    socket.Bind(new IPEndPoint(from, 0));
                    await socket.ConnectAsync(context.DnsEndPoint, ct);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            };
        return new HttpClient(handler)
        {
            BaseAddress = ProxyUrl,
            Timeout = TimeSpan.FromMinutes(5),
            DefaultRequestHeaders = { Accept = { new MediaTypeWithQualityHeaderValue("*/*") } },
        };
    }

    public async Task DisposeAsync()
    {
        Client?.Dispose();
        try
        {
            if (_proxy is not null)
            {
                await _proxy.StopAsync();
                // nginx.sh wipes its own dir; the root this stack gave it is left empty
                try { Directory.Delete(StateRoot); } catch (IOException) { }
            }
        }
        finally
        {
            try
            {
                foreach (var replica in Replicas) await replica.DisposeAsync();
            }
            finally
            {
                await _ceph.DisposeAsync();
            }
        }
    }

    private string StateRoot => Path.Combine(
        Environment.GetEnvironmentVariable("REGISTRY_STACK_DIR") is { Length: > 0 } root ? root : "/work/stack", _stateDir);

    /// <summary>The replicas that served the requests whose target contains <paramref name="marker"/>, in log order.</summary>
    public Task<IReadOnlyList<string>> UpstreamsOfAsync(string marker, int count) =>
        ProxyStack.UpstreamsOfAsync(AccessLog, marker, count);
}

[CollectionDefinition(Name)]
public sealed class ScaleOutCollection : ICollectionFixture<ScaleOutStack>
{
    public const string Name = "ScaleOut";
}
