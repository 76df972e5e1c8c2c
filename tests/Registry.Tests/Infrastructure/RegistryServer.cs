using System.Net;
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
/// With a <see cref="TestCertificateAuthority"/> it serves HTTPS with a certificate the CA issued, and its clients
/// trust that CA (only that CA).
/// </summary>
public sealed class RegistryServer : IAsyncDisposable
{
    private readonly WebApplication? _app;
    private bool _stopped;

    private readonly bool _ownsStorage;

    private RegistryServer(WebApplication? app, Uri baseAddress, string? storagePath, bool ownsStorage = false,
        TestCertificateAuthority? authority = null)
    {
        _app = app;
        _ownsStorage = ownsStorage;
        BaseAddress = baseAddress;
        StoragePath = storagePath;
        Authority = authority;
    }

    /// <summary>The CA the server's certificate comes from, when it serves HTTPS.</summary>
    public TestCertificateAuthority? Authority { get; }

    /// <summary>http://127.0.0.1:port/, or https://127.0.0.1:port/ with TLS.</summary>
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
    /// <param name="tls">Serve HTTPS on https://127.0.0.1:0 with a certificate this CA issues for 127.0.0.1 and localhost.</param>
    /// <param name="certificate">With <paramref name="tls"/>: the certificate files to serve instead of new ones.</param>
    public static async Task<RegistryServer> StartAsync(
        IDictionary<string, string?>? settings = null, string? storagePath = null,
        Action<IServiceCollection>? services = null,
        IReadOnlyDictionary<string, string?>? distributionEnvironment = null, string[]? args = null,
        TestCertificateAuthority? tls = null, ServerCertificateFiles? certificate = null)
    {
        var external = Environment.GetEnvironmentVariable("REGISTRY_TEST_URL");
        if (!string.IsNullOrEmpty(external) && settings is null && storagePath is null && services is null
            && distributionEnvironment is null && args is null && tls is null)
            return new RegistryServer(null, new Uri(external.TrimEnd('/') + "/"), null);

        var ownsStorage = storagePath is null;
        storagePath ??= Directory.CreateTempSubdirectory("registry-test-").FullName;
        var config = new Dictionary<string, string?> { ["Registry:Storage:Path"] = storagePath };
        if (tls is not null)
        {
            certificate ??= await tls.IssueServerCertificateAsync();
            config["Registry:Http:Tls:Certificate"] = certificate.CertificatePath;
            config["Registry:Http:Tls:Key"] = certificate.KeyPath;
        }
        if (settings is not null)
            foreach (var (key, value) in settings) config[key] = value;

        var url = tls is null ? "http://127.0.0.1:0" : "https://127.0.0.1:0";
        var app = Registry.Api.RegistryApp.Create(["--urls", url, .. args ?? []], config, services,
            distributionEnvironment ?? new Dictionary<string, string?>());
        try
        {
            await app.StartAsync();
        }
        catch
        {
            await app.DisposeAsync();
            if (ownsStorage) try { Directory.Delete(storagePath, recursive: true); } catch (IOException) { }
            throw;
        }
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!
            .Addresses.First();
        return new RegistryServer(app, new Uri(address.TrimEnd('/') + "/"), storagePath, ownsStorage, tls);
    }

    /// <summary>A client of the server (HTTPS: trusting its CA); <paramref name="version"/> asks for exactly that HTTP version.</summary>
    public HttpClient CreateClient(Version? version = null)
    {
        var handler = Authority?.CreateHandler() ?? new SocketsHttpHandler();
        handler.AllowAutoRedirect = false;
        return new HttpClient(handler)
        {
            BaseAddress = BaseAddress,
            Timeout = TimeSpan.FromMinutes(5),
            DefaultRequestHeaders = { Accept = { new MediaTypeWithQualityHeaderValue("*/*") } },
            DefaultRequestVersion = version ?? HttpVersion.Version11,
            DefaultVersionPolicy = version is null ? HttpVersionPolicy.RequestVersionOrLower : HttpVersionPolicy.RequestVersionExact,
        };
    }

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

/// <summary>
/// The registry a conformance or client test class talks to, whatever runs behind it: one in-process server
/// (<see cref="RegistryFixture"/>) or the scale-out stack's proxy in front of two replicas
/// (<see cref="Stack.ScaleOutStack"/>). Tests that take this see only HTTP, never a server's internals.
/// </summary>
public interface IRegistryTarget
{
    /// <summary>A client whose base address is the registry's root (redirects not followed).</summary>
    HttpClient Client { get; }

    /// <summary>"127.0.0.1:port", the form skopeo and podman take.</summary>
    string HostPort { get; }
}

/// <summary>One server shared by the tests of a class; each test uses its own repository names.</summary>
public sealed class RegistryFixture : IAsyncLifetime, IRegistryTarget
{
    public RegistryServer Server { get; private set; } = null!;
    public HttpClient Client { get; private set; } = null!;
    public string HostPort => Server.HostPort;

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

/// <summary>One HTTPS server shared by the tests of a class, its certificate from a throw-away CA its client trusts.</summary>
public sealed class TlsRegistryFixture : IAsyncLifetime
{
    public TestCertificateAuthority Authority { get; private set; } = null!;
    public RegistryServer Server { get; private set; } = null!;
    public HttpClient Client { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Authority = await TestCertificateAuthority.CreateAsync();
        Server = await RegistryServer.StartAsync(tls: Authority);
        Client = Server.CreateClient();
    }

    public async Task DisposeAsync()
    {
        Client.Dispose();
        await Server.DisposeAsync();
        Authority.Dispose();
    }
}
