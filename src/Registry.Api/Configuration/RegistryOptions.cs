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
    }

    public sealed class DeletionSettings
    {
        public bool Enabled { get; set; } = true;
    }

    public sealed class UploadSettings
    {
        /// <summary>Open upload sessions allowed at once; a new one beyond it gets 429 TOOMANYREQUESTS.</summary>
        public int MaxSessions { get; set; } = 10_000;

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
        if (options.Uploads.Expiry <= TimeSpan.Zero)
            errors.Add("Registry:Uploads:Expiry must be positive (e.g. 24:00:00).");
        if (options.Manifests.MaxSize < 4 * 1024 * 1024)
            errors.Add("Registry:Manifests:MaxSize must be at least 4194304 (4 MiB), as the spec asks.");
        if (options.Events.Retention <= TimeSpan.Zero)
            errors.Add("Registry:Events:Retention must be positive (e.g. 7.00:00:00).");
        if (options.Pagination.MaxPageSize < 1)
            errors.Add("Registry:Pagination:MaxPageSize must be at least 1.");
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
}
