using Microsoft.Extensions.Options;

namespace Registry.Api.Configuration;

/// <summary>
/// Every setting, bound from the <c>Registry</c> section (environment: <c>Registry__Storage__Path</c>, …). Each has a
/// default that works with no configuration at all; the README's configuration table lists them.
/// </summary>
public sealed class RegistryOptions
{
    public const string Section = "Registry";

    public StorageSettings Storage { get; set; } = new();
    public DeletionSettings Deletion { get; set; } = new();
    public UploadSettings Uploads { get; set; } = new();
    public ManifestSettings Manifests { get; set; } = new();
    public PaginationSettings Pagination { get; set; } = new();
    public EventSettings Events { get; set; } = new();
    public Auth.AuthSettings Auth { get; set; } = new();
    public HttpSettings Http { get; set; } = new();

    public sealed class HttpSettings
    {
        /// <summary>
        /// The registry's URL as clients reach it (e.g. <c>https://registry.example.com</c> behind a proxy); absolute
        /// URLs the registry hands out (discovery document links) are built from it instead of the Host header.
        /// </summary>
        public string? PublicUrl { get; set; }
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
internal sealed class RegistryOptionsValidator : IValidateOptions<RegistryOptions>
{
    public ValidateOptionsResult Validate(string? name, RegistryOptions options)
    {
        var errors = new List<string>();
        if (string.IsNullOrWhiteSpace(options.Storage.Path))
            errors.Add("Registry:Storage:Path must name a folder.");
        if (options.Uploads.MaxSessions < 1)
            errors.Add("Registry:Uploads:MaxSessions must be at least 1.");
        if (options.Uploads.MaxSessionsPerClient < 1)
            errors.Add("Registry:Uploads:MaxSessionsPerClient must be at least 1.");
        if (options.Uploads.PurgeInterval <= TimeSpan.Zero)
            errors.Add("Registry:Uploads:PurgeInterval must be positive (e.g. 00:10:00).");
        if (options.Http.PublicUrl is { Length: > 0 } publicUrl
            && (!Uri.TryCreate(publicUrl, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https")))
            errors.Add($"Registry:Http:PublicUrl must be an absolute http or https URL (got '{publicUrl}').");
        if (options.Uploads.Expiry <= TimeSpan.Zero)
            errors.Add("Registry:Uploads:Expiry must be positive (e.g. 24:00:00).");
        if (options.Manifests.MaxSize < 4 * 1024 * 1024)
            errors.Add("Registry:Manifests:MaxSize must be at least 4194304 (4 MiB), as the spec asks.");
        if (options.Events.Retention <= TimeSpan.Zero)
            errors.Add("Registry:Events:Retention must be positive (e.g. 7.00:00:00).");
        if (options.Pagination.MaxPageSize < 1)
            errors.Add("Registry:Pagination:MaxPageSize must be at least 1.");
        options.Auth.Validate(errors);
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
