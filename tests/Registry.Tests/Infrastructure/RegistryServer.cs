using System.Net.Http.Headers;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;

namespace Registry.Tests.Infrastructure;

/// <summary>
/// The real registry on a loopback port (real Kestrel, real storage in a temp folder), so that HttpClient tests,
/// stream and disconnect cases and real clients (skopeo, podman, umoci) all talk to it the same way.
/// With REGISTRY_TEST_URL set, tests run against that registry instead (e.g. distribution 2.8.2 for comparison).
/// </summary>
public sealed class RegistryServer : IAsyncDisposable
{
    private readonly WebApplication? _app;
    private bool _stopped;

    private readonly bool _ownsStorage;

    private RegistryServer(WebApplication? app, Uri baseAddress, string? storagePath, bool ownsStorage = false)
    {
        _app = app;
        _ownsStorage = ownsStorage;
        BaseAddress = baseAddress;
        StoragePath = storagePath;
    }

    /// <summary>http://127.0.0.1:port/</summary>
    public Uri BaseAddress { get; }

    /// <summary>"127.0.0.1:port", the form skopeo and podman take.</summary>
    public string HostPort => BaseAddress.Authority;

    /// <summary>The storage root, or null for an external registry.</summary>
    public string? StoragePath { get; }

    public bool IsExternal => _app is null;

    /// <summary>The in-process server's services (not for an external registry).</summary>
    public IServiceProvider Services => _app?.Services ?? throw new InvalidOperationException("external registry");

    /// <param name="distributionEnvironment">registry:2 <c>REGISTRY_*</c> variables the server sees instead of the
    /// process environment (none by default, so tests never depend on the machine's environment).</param>
    /// <param name="args">More command-line arguments (e.g. <c>--config</c>).</param>
    public static async Task<RegistryServer> StartAsync(
        IDictionary<string, string?>? settings = null, string? storagePath = null,
        Action<IServiceCollection>? services = null,
        IReadOnlyDictionary<string, string?>? distributionEnvironment = null, string[]? args = null)
    {
        var external = Environment.GetEnvironmentVariable("REGISTRY_TEST_URL");
        if (!string.IsNullOrEmpty(external) && settings is null && storagePath is null && services is null
            && distributionEnvironment is null && args is null)
            return new RegistryServer(null, new Uri(external.TrimEnd('/') + "/"), null);

        var ownsStorage = storagePath is null;
        storagePath ??= Directory.CreateTempSubdirectory("registry-test-").FullName;
        var config = new Dictionary<string, string?> { ["Registry:Storage:Path"] = storagePath };
        if (settings is not null)
            foreach (var (key, value) in settings) config[key] = value;

        var app = Registry.Api.RegistryApp.Create(["--urls", "http://127.0.0.1:0", .. args ?? []], config, services,
            distributionEnvironment ?? new Dictionary<string, string?>());
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!
            .Addresses.First();
        return new RegistryServer(app, new Uri(address.TrimEnd('/') + "/"), storagePath, ownsStorage);
    }

    public HttpClient CreateClient() => new(new SocketsHttpHandler { AllowAutoRedirect = false })
    {
        BaseAddress = BaseAddress,
        Timeout = TimeSpan.FromMinutes(5),
        DefaultRequestHeaders = { Accept = { new MediaTypeWithQualityHeaderValue("*/*") } },
    };

    /// <summary>Stops the server but keeps its storage (a storage folder the caller passed in is never deleted), so a test can start a new one on it.</summary>
    public async Task StopAsync()
    {
        if (_app is null || _stopped) return;
        _stopped = true;
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    public async ValueTask DisposeAsync()
    {
        if (_app is null) return;
        await StopAsync();
        if (_ownsStorage)
            try { Directory.Delete(StoragePath!, recursive: true); } catch (IOException) { }
    }
}

/// <summary>One server shared by the tests of a class; each test uses its own repository names.</summary>
public sealed class RegistryFixture : IAsyncLifetime
{
    public RegistryServer Server { get; private set; } = null!;
    public HttpClient Client { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Server = await RegistryServer.StartAsync();
        Client = Server.CreateClient();
    }

    public async Task DisposeAsync()
    {
        Client.Dispose();
        await Server.DisposeAsync();
    }

    /// <summary>A repository name no other test uses.</summary>
    public static string NewRepo(string prefix = "test") => $"{prefix}/r{Guid.NewGuid():N}";
}
