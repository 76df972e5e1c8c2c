using Registry.Api.Configuration;
using Registry.Storage;
using Registry.Storage.Metadata;

namespace Registry.Api.Storage;

/// <summary>
/// Opens the metadata store on another thread while the host is being built. Opening it (the native library, the
/// database and, on empty storage, its schema) is the registry's largest own share of start-up, and building the host
/// does not need it.
/// </summary>
internal sealed class EarlyMetadataStore
{
    private readonly string? _path;
    private readonly Task<SqliteMetadataStore>? _opening;

    /// <summary>Starts opening the store in the folder the configuration names, unless its settings are invalid (start-up then reports them, and nothing is created).</summary>
    public EarlyMetadataStore(IConfiguration configuration)
    {
        var options = configuration.GetSection(RegistryOptions.Section).Get<RegistryOptions>() ?? new RegistryOptions();
        if (new RegistryOptionsValidator(configuration["urls"]).Validate(null, options).Failed) return;
        // PostgreSQL is opened by the service registration; there is no SQLite file to open early.
        if (options.Metadata.IsPostgres) return;
        _path = options.Storage.Path;
        _opening = Task.Run(() =>
        {
            var layout = new StorageLayout(_path);
            layout.Initialise();
            return new SqliteMetadataStore(layout.DatabasePath, durable: options.Storage.FlushToDisk);
        });
    }

    /// <summary>
    /// The store opened early if it is for <paramref name="path"/> (waiting for it, and throwing what opening it threw),
    /// else null: the options name another folder, so the caller opens that one.
    /// </summary>
    public SqliteMetadataStore? Take(string path)
    {
        if (_opening is null) return null;
        if (path == _path) return _opening.GetAwaiter().GetResult();
        _opening.ContinueWith(opened => opened.Result.Dispose(), TaskContinuationOptions.OnlyOnRanToCompletion);
        return null;
    }
}
