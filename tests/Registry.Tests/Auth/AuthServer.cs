using System.Net.Http.Headers;
using System.Text;
using Registry.Tests.Clients;
using Registry.Tests.Infrastructure;

namespace Registry.Tests.Auth;

/// <summary>
/// A registry with authentication on: an htpasswd file written by the real <c>htpasswd -B</c> (apache2-utils) in a
/// temp folder, plus the mode and policy settings of the test.
/// </summary>
internal sealed class AuthServer : IAsyncDisposable
{
    private AuthServer(RegistryServer server, string folder)
    {
        Server = server;
        Folder = folder;
    }

    public RegistryServer Server { get; }

    /// <summary>Holds the htpasswd file (and whatever else the test puts there).</summary>
    public string Folder { get; }

    public string HtpasswdPath => Path.Combine(Folder, "htpasswd");

    /// <param name="users">user → password, each added with <c>htpasswd -B -b</c>.</param>
    public static async Task<AuthServer> StartAsync(string mode, IReadOnlyDictionary<string, string> users,
        IDictionary<string, string?>? settings = null, Action<Microsoft.Extensions.DependencyInjection.IServiceCollection>? services = null,
        TestCertificateAuthority? tls = null)
    {
        var folder = Directory.CreateTempSubdirectory("registry-auth-").FullName;
        var htpasswd = Path.Combine(folder, "htpasswd");
        await File.WriteAllTextAsync(htpasswd, "");
        foreach (var (user, password) in users) await AddUserAsync(htpasswd, user, password);
        var config = new Dictionary<string, string?>
        {
            ["Registry:Auth:Mode"] = mode,
            ["Registry:Auth:Htpasswd:Path"] = htpasswd,
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>()) config[key] = value;
        var server = await RegistryServer.StartAsync(config, services: services, tls: tls);
        return new AuthServer(server, folder);
    }

    /// <summary>Adds or changes a user with the real htpasswd tool (bcrypt, cost 5 as <c>htpasswd -B</c> defaults).</summary>
    public static Task AddUserAsync(string file, string user, string password, bool create = false) =>
        Cli.RunAsync("htpasswd", create ? ["-B", "-b", "-c", file, user, password] : ["-B", "-b", file, user, password]);

    public HttpClient Anonymous() => Server.CreateClient();

    public HttpClient As(string user, string password)
    {
        var client = Server.CreateClient();
        client.DefaultRequestHeaders.Authorization = Basic(user, password);
        return client;
    }

    public HttpClient WithToken(string token)
    {
        var client = Server.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return client;
    }

    public static AuthenticationHeaderValue Basic(string user, string password) =>
        new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{password}")));

    public async ValueTask DisposeAsync()
    {
        await Server.DisposeAsync();
        try { Directory.Delete(Folder, recursive: true); } catch (IOException) { }
    }
}
