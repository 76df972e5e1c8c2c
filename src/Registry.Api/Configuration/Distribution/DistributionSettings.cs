using System.Globalization;
using YamlDotNet.RepresentationModel;

namespace Registry.Api.Configuration.Distribution;

/// <summary>
/// What a registry:2 (CNCF distribution) configuration says, mapped onto this registry's settings: its
/// <c>REGISTRY_*</c> environment variables and the <c>config.yml</c> named by <c>--config</c> (or
/// <c>REGISTRY_CONFIGURATION_PATH</c>, as distribution itself reads it). The environment overrides the file, as in
/// registry:2; this registry's own settings override both (the source is added below every other one).
/// Keys that have no equivalent are listed in <see cref="Ignored"/> (logged once as a warning at start-up); keys whose
/// silent omission would change what the registry protects or stores (another auth scheme, another storage driver)
/// and values that do not parse are <see cref="Errors"/>, which stop start-up.
/// </summary>
internal sealed class DistributionSettings
{
    public const string EnvironmentPrefix = "REGISTRY_";

    /// <summary>Our settings, e.g. <c>Registry:Storage:Path</c>, with values in our formats.</summary>
    public Dictionary<string, string?> Settings { get; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>registry:2 keys with no equivalent here, as the operator wrote them (<c>REGISTRY_LOG_LEVEL</c>, <c>log.level</c>).</summary>
    public List<string> Ignored { get; } = [];

    public List<string> Errors { get; } = [];

    /// <summary>The config.yml that was read, if any.</summary>
    public string? ConfigFile { get; private set; }

    public bool IsEmpty => Settings.Count == 0 && Ignored.Count == 0 && Errors.Count == 0;

    /// <summary>Reads the file named by <c>--config</c> or <c>serve &lt;file&gt;</c> (else <c>REGISTRY_CONFIGURATION_PATH</c>), then the environment over it.</summary>
    public static DistributionSettings Read(string[] args, IReadOnlyDictionary<string, string?> environment)
    {
        var result = new DistributionSettings();
        var values = new Dictionary<string, (string Value, string Source)>(StringComparer.Ordinal);

        var file = ConfigArgument(args)
                   ?? (environment.TryGetValue("REGISTRY_CONFIGURATION_PATH", out var fromEnv) && !string.IsNullOrEmpty(fromEnv) ? fromEnv : null);
        if (file is not null)
        {
            result.ConfigFile = file;
            try
            {
                foreach (var (path, value) in ReadYaml(file)) values[string.Join('_', path).ToUpperInvariant()] = (value, string.Join('.', path));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or YamlDotNet.Core.YamlException)
            {
                result.Errors.Add($"registry:2 configuration {file} cannot be read: {e.Message}");
            }
            // registry:2 keeps deleted content unless storage.delete.enabled says otherwise; keep its meaning for its file.
            values.TryAdd("STORAGE_DELETE_ENABLED", ("false", "storage.delete.enabled (registry:2 default)"));
        }

        foreach (var (name, value) in environment)
            if (value is not null && IsDistributionVariable(name))
                values[name[EnvironmentPrefix.Length..]] = (value, name);

        foreach (var (key, (value, source)) in values.OrderBy(v => v.Key, StringComparer.Ordinal))
            result.Map(key, value, source);
        result.FinishUrls(values);
        return result;
    }

    /// <summary>
    /// The top-level sections of registry:2's configuration: <c>REGISTRY_&lt;SECTION&gt;_…</c> overrides a key in one of
    /// them. Other <c>REGISTRY_</c> variables (our test stack's <c>REGISTRY_STACK_DIR</c>, a tool's own) are not
    /// registry:2 settings, so they are neither mapped nor warned about.
    /// </summary>
    private static readonly HashSet<string> Sections = new(StringComparer.Ordinal)
    {
        "VERSION", "LOG", "LOGLEVEL", "STORAGE", "AUTH", "MIDDLEWARE", "REPORTING", "HTTP", "NOTIFICATIONS", "REDIS",
        "HEALTH", "PROXY", "COMPATIBILITY", "VALIDATION", "POLICY", "CATALOG",
    };

    /// <summary>
    /// A registry:2 override: <c>REGISTRY_</c>, one of <see cref="Sections"/>, then its path joined by single
    /// underscores. <c>REGISTRY__STORAGE__PATH</c> is our own form (sections joined by "__"), not registry:2's;
    /// <c>REGISTRY_CONFIGURATION_PATH</c> names the file and is read apart.
    /// </summary>
    internal static bool IsDistributionVariable(string name)
    {
        if (!name.StartsWith(EnvironmentPrefix, StringComparison.Ordinal) || name.Contains("__", StringComparison.Ordinal))
            return false;
        var key = name[EnvironmentPrefix.Length..];
        var end = key.IndexOf('_');
        return Sections.Contains(end < 0 ? key : key[..end]);
    }

    private static string? ConfigArgument(string[] args)
    {
        if (args is ["serve", var served, ..]) return served;
        for (var i = 0; i < args.Length; i++)
        {
            if (args[i] == "--config" && i + 1 < args.Length) return args[i + 1];
            if (args[i].StartsWith("--config=", StringComparison.Ordinal)) return args[i]["--config=".Length..];
        }
        return null;
    }

    private void Map(string key, string value, string source)
    {
        switch (key)
        {
            case "VERSION":
                return; // config.yml's format version; nothing to map
            case "HTTP_ADDR":
            case "HTTP_TLS_CERTIFICATE":
            case "HTTP_TLS_KEY":
                // urls depends on both the address and TLS: FinishUrls.
                if (key == "HTTP_TLS_CERTIFICATE") Settings["Registry:Http:Tls:Certificate"] = value;
                if (key == "HTTP_TLS_KEY") Settings["Registry:Http:Tls:Key"] = value;
                return;
            case "HTTP_NET":
                if (value != "tcp") Errors.Add($"{source}={value}: only tcp is supported");
                return;
            case "HTTP_HOST":
                Settings["Registry:Http:PublicUrl"] = value;
                return;
            case "STORAGE_FILESYSTEM_ROOTDIRECTORY":
                Settings["Registry:Storage:Path"] = value;
                return;
            case "STORAGE_DELETE_ENABLED":
                Bool("Registry:Deletion:Enabled", value, source);
                return;
            case "STORAGE_MAINTENANCE_UPLOADPURGING_ENABLED":
                Bool("Registry:Uploads:PurgeEnabled", value, source);
                return;
            case "STORAGE_MAINTENANCE_UPLOADPURGING_DRYRUN":
                Bool("Registry:Uploads:PurgeDryRun", value, source);
                return;
            case "STORAGE_MAINTENANCE_UPLOADPURGING_AGE":
                Duration("Registry:Uploads:Expiry", value, source);
                return;
            case "STORAGE_MAINTENANCE_UPLOADPURGING_INTERVAL":
                Duration("Registry:Uploads:PurgeInterval", value, source);
                return;
            case "AUTH":
                // REGISTRY_AUTH=htpasswd selects the scheme (config.yml says it by the section's name).
                if (value is "htpasswd" or "token") Settings["Registry:Auth:Mode"] = value;
                else Errors.Add($"{source}={value}: only htpasswd and token are supported");
                return;
            case "AUTH_HTPASSWD_REALM":
                Settings["Registry:Auth:Mode"] = "htpasswd";
                Settings["Registry:Auth:Htpasswd:Realm"] = value;
                return;
            case "AUTH_HTPASSWD_PATH":
                Settings["Registry:Auth:Mode"] = "htpasswd";
                Settings["Registry:Auth:Htpasswd:Path"] = value;
                return;
        }
        if (key.StartsWith("AUTH_", StringComparison.Ordinal) && !key.StartsWith("AUTH_HTPASSWD_", StringComparison.Ordinal))
        {
            // Starting without the access control the operator configured would expose the registry.
            Errors.Add($"{source}: this registry:2 auth setting has no equivalent; configure Registry:Auth:* instead");
            return;
        }
        if (key.StartsWith("STORAGE_", StringComparison.Ordinal) && StorageDriver(key) is { } driver)
        {
            // Starting on an empty local folder instead of the configured driver would lose the operator's content.
            Errors.Add($"{source}: storage driver '{driver}' is not supported; only filesystem is");
            return;
        }
        Ignored.Add(source);
    }

    /// <summary>The driver a <c>STORAGE_*</c> key configures, unless it is the filesystem or a driver-independent section.</summary>
    private static string? StorageDriver(string key)
    {
        var section = key["STORAGE_".Length..].Split('_')[0].ToLowerInvariant();
        return section is "filesystem" or "delete" or "maintenance" or "cache" or "redirect" or "tag" ? null : section;
    }

    private void FinishUrls(Dictionary<string, (string Value, string Source)> values)
    {
        if (!values.TryGetValue("HTTP_ADDR", out var addr)) return;
        var tls = values.ContainsKey("HTTP_TLS_CERTIFICATE");
        if (ListenUrl(addr.Value, tls) is { } url) Settings["urls"] = url;
        else Errors.Add($"{addr.Source}={addr.Value}: expected host:port, e.g. :5000 or 127.0.0.1:5000");
    }

    /// <summary>Go's listen address (<c>:5000</c>, <c>127.0.0.1:5001</c>, <c>[::1]:5000</c>) as a Kestrel URL.</summary>
    internal static string? ListenUrl(string addr, bool tls)
    {
        var colon = addr.LastIndexOf(':');
        if (colon < 0 || !ushort.TryParse(addr.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port))
            return null;
        var host = addr[..colon];
        if (host.Length == 0) host = "0.0.0.0";
        else if (host.Contains(':') && !host.StartsWith('[')) return null; // an IPv6 address needs brackets
        return $"{(tls ? "https" : "http")}://{host}:{port.ToString(CultureInfo.InvariantCulture)}";
    }

    private void Bool(string setting, string value, string source)
    {
        // Go's strconv.ParseBool, which distribution's environment overrides use.
        bool? parsed = value switch
        {
            "1" or "t" or "T" or "true" or "TRUE" or "True" => true,
            "0" or "f" or "F" or "false" or "FALSE" or "False" => false,
            _ => null,
        };
        if (parsed is { } b) Settings[setting] = b ? "true" : "false";
        else Errors.Add($"{source}={value}: expected true or false");
    }

    private void Duration(string setting, string value, string source)
    {
        if (GoDuration.TryParse(value, out var duration))
            Settings[setting] = duration.ToString("c", CultureInfo.InvariantCulture);
        else Errors.Add($"{source}={value}: expected a duration such as 168h or 24h0m0s");
    }

    /// <summary>Every scalar leaf of the document with its key path (a sequence counts as one leaf).</summary>
    private static IEnumerable<(IReadOnlyList<string> Path, string Value)> ReadYaml(string file)
    {
        var stream = new YamlStream();
        using (var reader = new StreamReader(file)) stream.Load(reader);
        if (stream.Documents.Count == 0 || stream.Documents[0].RootNode is not YamlMappingNode root) yield break;
        var pending = new Stack<(List<string> Path, YamlNode Node)>();
        pending.Push(([], root));
        var leaves = new List<(IReadOnlyList<string>, string)>();
        while (pending.Count > 0)
        {
            var (path, node) = pending.Pop();
            switch (node)
            {
                case YamlMappingNode mapping when mapping.Children.Count > 0 || path.Count == 0:
                    foreach (var (key, child) in mapping.Children)
                        pending.Push(([.. path, ((YamlScalarNode)key).Value ?? ""], child));
                    break;
                case YamlScalarNode scalar:
                    leaves.Add((path, scalar.Value ?? ""));
                    break;
                default:
                    leaves.Add((path, node.ToString()));
                    break;
            }
        }
        foreach (var leaf in leaves.OrderBy(l => string.Join('.', l.Item1), StringComparer.Ordinal)) yield return leaf;
    }
}

/// <summary>Reports registry:2 settings that cannot be honoured together with the registry's own validation.</summary>
internal sealed class DistributionSettingsValidator(DistributionSettings distribution)
    : Microsoft.Extensions.Options.IValidateOptions<RegistryOptions>
{
    public Microsoft.Extensions.Options.ValidateOptionsResult Validate(string? name, RegistryOptions options) =>
        distribution.Errors.Count == 0
            ? Microsoft.Extensions.Options.ValidateOptionsResult.Success
            : Microsoft.Extensions.Options.ValidateOptionsResult.Fail(distribution.Errors);
}
