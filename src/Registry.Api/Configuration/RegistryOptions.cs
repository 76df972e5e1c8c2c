using Microsoft.Extensions.Options;
using Registry.Api.Auth;
using Registry.Api.Tls;

namespace Registry.Api.Configuration;

/// <summary>
/// Every setting, bound from the <c>Registry</c> section (environment: <c>Registry__Storage__Path</c>, …). Each has a
/// default that works with no configuration at all; the README's configuration table lists them.
/// </summary>
public sealed class RegistryOptions
{
    public const string Section = "Registry";

    public StorageSettings Storage { get; set; } = new();
    public MetadataSettings Metadata { get; set; } = new();
    public DeletionSettings Deletion { get; set; } = new();
    public UploadSettings Uploads { get; set; } = new();
    public ManifestSettings Manifests { get; set; } = new();
    public PaginationSettings Pagination { get; set; } = new();
    public EventSettings Events { get; set; } = new();
    public Auth.AuthSettings Auth { get; set; } = new();
    public HttpSettings Http { get; set; } = new();
    public MetricsSettings Metrics { get; set; } = new();
    public LoggingSettings Logging { get; set; } = new();

    /// <summary>On SIGTERM, how long requests in flight may take to finish before their connections are closed.</summary>
    public TimeSpan ShutdownTimeout { get; set; } = TimeSpan.FromSeconds(30);

    public sealed class MetricsSettings
    {
        /// <summary>
        /// Listen addresses (<c>;</c>-separated, like <c>urls</c>) of a listener of its own for <c>/metrics</c>, e.g.
        /// <c>http://127.0.0.1:9090</c>. Empty: <c>/metrics</c> is served on the main listener.
        /// </summary>
        public string Urls { get; set; } = "";

        internal IReadOnlyList<string> UrlList =>
            Urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

        /// <summary>The ports of the metrics listener: a request that arrives on one of them is for it.</summary>
        internal IReadOnlySet<int> Ports => UrlList.Select(PortOf).OfType<int>().ToHashSet();

        /// <summary>The explicit port of <c>http://host:port[/]</c> (host may be <c>*</c>, a name, IPv4 or <c>[IPv6]</c>), else null.</summary>
        internal static int? PortOf(string url)
        {
            const string scheme = "http://";
            if (!url.StartsWith(scheme, StringComparison.OrdinalIgnoreCase)) return null;
            var authority = url[scheme.Length..].TrimEnd('/');
            var colon = authority.LastIndexOf(':');
            if (colon <= 0 || authority.Contains('/') || authority.EndsWith(']')) return null;
            return int.TryParse(authority[(colon + 1)..], System.Globalization.NumberStyles.None,
                System.Globalization.CultureInfo.InvariantCulture, out var port) && port is > 0 and <= 65535 ? port : null;
        }
    }

    public sealed class LoggingSettings
    {
        /// <summary><c>text</c> (one line per entry) or <c>json</c> (the console JSON formatter, one object per line).</summary>
        public string Format { get; set; } = LogFormats.Text;
    }

    public static class LogFormats
    {
        public const string Text = "text";
        public const string Json = "json";
    }

    public sealed class TlsSettings
    {
        /// <summary>PEM file of the server certificate, optionally followed by its intermediate CA certificates.</summary>
        public string? Certificate { get; set; }

        /// <summary>PEM file of the certificate's private key (unencrypted).</summary>
        public string? Key { get; set; }

        /// <summary>Both files are set: every listen address serves HTTPS.</summary>
        public bool Enabled => !string.IsNullOrWhiteSpace(Certificate) && !string.IsNullOrWhiteSpace(Key);
    }

    public sealed class HttpSettings
    {
        public TlsSettings Tls { get; set; } = new();

        /// <summary>
        /// The registry's URL as clients reach it (e.g. <c>https://registry.example.com</c> behind a proxy); absolute
        /// URLs the registry hands out (discovery document links) are built from it instead of the Host header.
        /// </summary>
        public string? PublicUrl { get; set; }

        /// <summary>
        /// Load balancers and proxies (<c>;</c>-separated addresses or CIDR networks) whose <c>X-Forwarded-For</c>
        /// names the client: a request from one of them counts as the client's own (per-client upload sessions,
        /// login throttling, logs), not as the proxy's, which would make every client behind it one. Default:
        /// loopback, a proxy on the same host. Empty: no proxy is believed.
        /// </summary>
        public string TrustedProxies { get; set; } = "127.0.0.0/8;::1";

        internal IReadOnlyList<string> TrustedProxyList =>
            TrustedProxies.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

        /// <summary>An address (one host) or a CIDR network, e.g. <c>10.0.0.7</c>, <c>10.0.0.0/8</c>, <c>fd00::/8</c>.</summary>
        internal static bool TryParseProxy(string text, out System.Net.IPNetwork network)
        {
            if (text.Contains('/')) return System.Net.IPNetwork.TryParse(text, out network);
            network = default;
            if (!System.Net.IPAddress.TryParse(text, out var address)) return false;
            network = new System.Net.IPNetwork(address,
                address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? 128 : 32);
            return true;
        }
    }

    public GarbageCollectionSettings Gc { get; set; } = new();

    /// <summary>Section <c>Registry:Gc</c> (docs/storage.md, "Garbage collection").</summary>
    public sealed class GarbageCollectionSettings
    {
        /// <summary>A link no manifest references is kept at least this long after the blob was pushed or mounted.</summary>
        public TimeSpan GracePeriod { get; set; } = TimeSpan.FromHours(1);

        /// <summary>Untagged manifests that nothing reachable needs are deleted this long after their push; null: never.</summary>
        public TimeSpan? UntaggedAfter { get; set; }

        /// <summary>Time between scheduled runs (the first one an interval after start-up); zero: no schedule.</summary>
        public TimeSpan Interval { get; set; } = TimeSpan.FromHours(24);

        /// <summary>How many run reports are kept in the metadata.</summary>
        public int KeepReports { get; set; } = 100;

        public List<CleanupPolicySettings> Policies { get; set; } = [];
    }

    /// <summary><c>Registry:Gc:Policies:&lt;i&gt;</c>: one cleanup policy.</summary>
    public sealed class CleanupPolicySettings
    {
        /// <summary>Repository name patterns (<c>*</c> any run of characters, slashes included; <c>?</c> one).</summary>
        public List<string> Repositories { get; set; } = [];

        /// <summary>Tag patterns the policy acts on; empty: every tag.</summary>
        public List<string> Tags { get; set; } = [];

        /// <summary>Keep this many of the most recently pushed matching tags.</summary>
        public int? KeepLast { get; set; }

        /// <summary>Delete matching tags (beyond <see cref="KeepLast"/>) last pushed longer ago than this.</summary>
        public TimeSpan? OlderThan { get; set; }

        /// <summary>Tag patterns never deleted, e.g. <c>latest</c>, <c>v*</c>.</summary>
        public List<string> Protect { get; set; } = [];
    }

    public sealed class EventSettings
    {
        /// <summary>How long the event outbox keeps an event (for SSE resumption and webhook catch-up).</summary>
        public TimeSpan Retention { get; set; } = TimeSpan.FromDays(7);
    }

    public sealed class StorageSettings
    {
        /// <summary>Root of blobs, uploads and metadata.</summary>
        public string Path { get; set; } = "./data";

        /// <summary>fsync each blob before it is published (protects acknowledged pushes from power loss).</summary>
        public bool FlushToDisk { get; set; } = true;

        /// <summary>
        /// Blobs and manifests of at most this many bytes are kept in the SQLite metadata database instead of in files of
        /// their own, so that a small push is made durable by the one WAL flush of its metadata commit (filesystem
        /// storage with SQLite metadata only). 0: every blob is a file.
        /// </summary>
        public int InlineBytes { get; set; } = DefaultInlineBytes;

        public const int DefaultInlineBytes = 16 * 1024;
        public const int MaxInlineBytes = 1 << 20;

        /// <summary>Where blobs live: <c>filesystem</c> (under <see cref="Path"/>) or <c>s3</c> (<see cref="S3"/>).</summary>
        public string Kind { get; set; } = StorageKinds.FileSystem;

        public Registry.Storage.Blobs.S3.S3Settings S3 { get; set; } = new();
    }

    public static class StorageKinds
    {
        public const string FileSystem = "filesystem";
        public const string S3 = "s3";
    }

    /// <summary>Where the metadata lives: SQLite in the storage folder (one server), or PostgreSQL (several replicas).</summary>
    public sealed class MetadataSettings
    {
        public const string Sqlite = "sqlite";
        public const string Postgres = "postgres";

        /// <summary><c>sqlite</c> (default: <c>metadata.db</c> under <c>Registry:Storage:Path</c>) or <c>postgres</c>.</summary>
        public string Kind { get; set; } = Sqlite;

        /// <summary>The Npgsql connection string of the PostgreSQL database (<c>postgres</c> only).</summary>
        public string? ConnectionString { get; set; }

        internal bool IsPostgres => string.Equals(Kind, Postgres, StringComparison.OrdinalIgnoreCase);
    }

    public sealed class DeletionSettings
    {
        public bool Enabled { get; set; } = true;
    }

    public sealed class UploadSettings
    {
        /// <summary>Open upload sessions allowed at once; a new one beyond it gets 429 TOOMANYREQUESTS.</summary>
        public int MaxSessions { get; set; } = 10_000;

        /// <summary>Open upload sessions one client (its identity, else its address) may hold at once.</summary>
        public int MaxSessionsPerClient { get; set; } = 100;

        /// <summary>How often expired upload sessions are looked for and removed.</summary>
        public TimeSpan PurgeInterval { get; set; } = TimeSpan.FromMinutes(10);

        /// <summary>Remove expired upload sessions at all (registry:2's uploadpurging.enabled).</summary>
        public bool PurgeEnabled { get; set; } = true;

        /// <summary>Only log the expired sessions that would be removed (registry:2's uploadpurging.dryrun).</summary>
        public bool PurgeDryRun { get; set; }

        /// <summary>An upload session not finished this long after it started is removed.</summary>
        public TimeSpan Expiry { get; set; } = TimeSpan.FromHours(24);
    }

    public sealed class ManifestSettings
    {
        /// <summary>Largest manifest accepted (spec: registries SHOULD accept at least 4 MiB).</summary>
        public int MaxSize { get; set; } = 4 * 1024 * 1024;
    }

    public sealed class PaginationSettings
    {
        /// <summary>Most entries in one page of tags, catalog or referrers, whatever <c>n</c> asks.</summary>
        public int MaxPageSize { get; set; } = 10_000;
    }
}

/// <summary>Checks the whole configuration at start-up and reports every problem at once.</summary>
/// <param name="urls">The listen addresses (<c>urls</c>), checked against the TLS settings.</param>
internal sealed class RegistryOptionsValidator(string? urls) : IValidateOptions<RegistryOptions>
{
    public ValidateOptionsResult Validate(string? name, RegistryOptions options)
    {
        var errors = new List<string>();
        if (string.IsNullOrWhiteSpace(options.Storage.Path))
            errors.Add("Registry:Storage:Path must name a folder.");
        if (options.Storage.Kind is not (RegistryOptions.StorageKinds.FileSystem or RegistryOptions.StorageKinds.S3))
            errors.Add($"Registry:Storage:Kind must be '{RegistryOptions.StorageKinds.FileSystem}' or '{RegistryOptions.StorageKinds.S3}' (got '{options.Storage.Kind}').");
        else if (options.Storage.Kind == RegistryOptions.StorageKinds.S3)
            options.Storage.S3.Validate(errors);
        if (options.Storage.InlineBytes is < 0 or > RegistryOptions.StorageSettings.MaxInlineBytes)
            errors.Add($"Registry:Storage:InlineBytes must be between 0 and {RegistryOptions.StorageSettings.MaxInlineBytes} (got {options.Storage.InlineBytes}).");
        ValidateMetadata(options.Metadata, errors);
        if (options.Uploads.MaxSessions < 1)
            errors.Add("Registry:Uploads:MaxSessions must be at least 1.");
        if (options.Uploads.MaxSessionsPerClient < 1)
            errors.Add("Registry:Uploads:MaxSessionsPerClient must be at least 1.");
        if (options.Uploads.PurgeInterval <= TimeSpan.Zero)
            errors.Add("Registry:Uploads:PurgeInterval must be positive (e.g. 00:10:00).");
        if (options.Http.PublicUrl is { Length: > 0 } publicUrl
            && (!Uri.TryCreate(publicUrl, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https")))
            errors.Add($"Registry:Http:PublicUrl must be an absolute http or https URL (got '{publicUrl}').");
        foreach (var proxy in options.Http.TrustedProxyList.Where(p => !RegistryOptions.HttpSettings.TryParseProxy(p, out _)))
            errors.Add($"Registry:Http:TrustedProxies: '{proxy}' is not an IP address or a CIDR network (e.g. 10.0.0.7 or 10.0.0.0/8).");
        if (options.Uploads.Expiry <= TimeSpan.Zero)
            errors.Add("Registry:Uploads:Expiry must be positive (e.g. 24:00:00).");
        if (options.Manifests.MaxSize < 4 * 1024 * 1024)
            errors.Add("Registry:Manifests:MaxSize must be at least 4194304 (4 MiB), as the spec asks.");
        if (options.Events.Retention <= TimeSpan.Zero)
            errors.Add("Registry:Events:Retention must be positive (e.g. 7.00:00:00).");
        if (options.Pagination.MaxPageSize < 1)
            errors.Add("Registry:Pagination:MaxPageSize must be at least 1.");
        options.Auth.Validate(errors);
        if (options.Metadata.IsPostgres && options.Auth.Mode == AuthMode.Token && !options.Auth.Token.IsExternal
            && string.IsNullOrWhiteSpace(options.Auth.Token.SigningKey))
            // Each replica would generate a key of its own, and refuse the tokens the others issue.
            errors.Add("Registry:Auth:Token:SigningKey must name a key file every replica shares when " +
                       "Registry:Metadata:Kind is postgres (several replicas): a generated key is per replica, and " +
                       "a token one replica issued would be refused by the others.");
        if (options.ShutdownTimeout < TimeSpan.Zero)
            errors.Add("Registry:ShutdownTimeout must not be negative (e.g. 00:00:30).");
        if (options.Logging.Format is not (RegistryOptions.LogFormats.Text or RegistryOptions.LogFormats.Json))
            errors.Add($"Registry:Logging:Format must be '{RegistryOptions.LogFormats.Text}' or '{RegistryOptions.LogFormats.Json}'.");
        foreach (var url in options.Metrics.UrlList.Where(url => RegistryOptions.MetricsSettings.PortOf(url) is null))
            errors.Add($"Registry:Metrics:Urls: '{url}' must be http://<host>:<port> with a port other than 0 (e.g. http://127.0.0.1:9090).");
        ValidateTls(options.Http.Tls, errors);
        var gc = options.Gc;
        if (gc.GracePeriod < TimeSpan.Zero)
            errors.Add("Registry:Gc:GracePeriod must not be negative (e.g. 01:00:00).");
        if (gc.UntaggedAfter is { } untagged && untagged < TimeSpan.Zero)
            errors.Add("Registry:Gc:UntaggedAfter must not be negative (e.g. 30.00:00:00), or be left out.");
        if (gc.Interval < TimeSpan.Zero)
            errors.Add("Registry:Gc:Interval must not be negative (00:00:00 turns the schedule off).");
        if (gc.KeepReports < 1)
            errors.Add("Registry:Gc:KeepReports must be at least 1.");
        for (var i = 0; i < gc.Policies.Count; i++)
        {
            var policy = gc.Policies[i];
            if (policy.Repositories.Count == 0 || policy.Repositories.Any(string.IsNullOrWhiteSpace))
                errors.Add($"Registry:Gc:Policies:{i}:Repositories must list at least one repository pattern (e.g. team/*).");
            if (policy.KeepLast is null && policy.OlderThan is null)
                errors.Add($"Registry:Gc:Policies:{i} needs KeepLast, OlderThan or both.");
            if (policy.KeepLast is < 0)
                errors.Add($"Registry:Gc:Policies:{i}:KeepLast must not be negative.");
            if (policy.OlderThan is { } age && age < TimeSpan.Zero)
                errors.Add($"Registry:Gc:Policies:{i}:OlderThan must not be negative.");
        }
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    private static void ValidateMetadata(RegistryOptions.MetadataSettings metadata, List<string> errors)
    {
        if (!metadata.IsPostgres && !string.Equals(metadata.Kind, RegistryOptions.MetadataSettings.Sqlite, StringComparison.OrdinalIgnoreCase))
        {
            errors.Add($"Registry:Metadata:Kind must be '{RegistryOptions.MetadataSettings.Sqlite}' or " +
                       $"'{RegistryOptions.MetadataSettings.Postgres}' (got '{metadata.Kind}').");
            return;
        }
        if (!metadata.IsPostgres) return;
        if (string.IsNullOrWhiteSpace(metadata.ConnectionString))
        {
            errors.Add("Registry:Metadata:ConnectionString must be set when Registry:Metadata:Kind is postgres " +
                       "(e.g. Host=db;Database=registry;Username=registry;Password=...).");
            return;
        }
        try
        {
            var parsed = new Npgsql.NpgsqlConnectionStringBuilder(metadata.ConnectionString);
            if (string.IsNullOrWhiteSpace(parsed.Host))
                errors.Add("Registry:Metadata:ConnectionString must name a Host (a host name, an address or a socket folder).");
        }
        catch (ArgumentException e)
        {
            // The message names the keyword, never the value (it may hold the password).
            errors.Add($"Registry:Metadata:ConnectionString is not a valid PostgreSQL connection string: {e.Message}");
        }
    }

    private void ValidateTls(RegistryOptions.TlsSettings tls, List<string> errors)
    {
        var certificate = !string.IsNullOrWhiteSpace(tls.Certificate);
        var key = !string.IsNullOrWhiteSpace(tls.Key);
        if (certificate && key)
        {
            // Loaded as the server will load it, so every problem surfaces here rather than at the first handshake.
            using var loaded = PemCertificate.Load(tls.Certificate!, tls.Key!, errors);
            return;
        }
        if (certificate || key)
        {
            var (set, missing, path) = certificate
                ? ("Registry:Http:Tls:Certificate", "Registry:Http:Tls:Key", tls.Certificate!)
                : ("Registry:Http:Tls:Key", "Registry:Http:Tls:Certificate", tls.Key!);
            errors.Add($"{set} is set but {missing} is not: HTTPS needs both the certificate and the key (PEM files).");
            if (!File.Exists(path)) errors.Add($"{set}: '{path}' does not exist.");
            return;
        }
        foreach (var url in (urls ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            if (url.StartsWith("https://", StringComparison.OrdinalIgnoreCase))
                errors.Add($"urls: '{url}' asks for HTTPS, but no certificate is configured: set Registry:Http:Tls:Certificate and Registry:Http:Tls:Key.");
    }
}
