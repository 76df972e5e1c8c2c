using Registry.Api.Configuration;
using Registry.Storage;
using Registry.Storage.Gc;
using Registry.Storage.Metadata;
using Registry.Storage.Metadata.Postgres;

namespace Registry.Api.Storage;

/// <summary>
/// The metadata store <c>Registry:Metadata:Kind</c> names, opened once: SQLite in the storage folder (the default) or
/// a PostgreSQL database shared by several replicas. Every metadata contract resolves to this one object.
/// </summary>
internal sealed class MetadataBackend : IAsyncDisposable
{
    private readonly IMetadataStore _store;

    private MetadataBackend(IMetadataStore store)
    {
        _store = store;
        // Pins must be seen by every process that may sweep: the shared store's rows, or memory when one process owns it.
        Pins = store is PostgresMetadataStore shared
            ? new PostgresBlobPins(shared, $"{Environment.MachineName}/{Environment.ProcessId}/{Guid.NewGuid():N}")
            : new BlobPins();
    }

    /// <summary>The pins that keep pushes and garbage collection apart (see <see cref="IBlobPins"/>).</summary>
    public IBlobPins Pins { get; }

    public static MetadataBackend Open(RegistryOptions options, Func<StorageLayout> layout, EarlyMetadataStore early)
    {
        if (!options.Metadata.IsPostgres)
            return new MetadataBackend(early.Take(options.Storage.Path)
                ?? new SqliteMetadataStore(layout().DatabasePath, durable: options.Storage.FlushToDisk));
        try
        {
            return new MetadataBackend(PostgresMetadataStore.OpenAsync(options.Metadata.ConnectionString!).GetAwaiter().GetResult());
        }
        catch (Exception e) when (e is Npgsql.NpgsqlException or InvalidOperationException or TimeoutException
                                      or System.Net.Sockets.SocketException)
        {
            var target = new Npgsql.NpgsqlConnectionStringBuilder(options.Metadata.ConnectionString);
            throw new InvalidOperationException(
                $"Registry:Metadata: could not open the PostgreSQL database '{target.Database}' on {target.Host}:{target.Port} " +
                $"as '{target.Username}': {e.Message}", e);
        }
    }

    /// <summary>The store, registered as <see cref="IMetadataStore"/>; each narrow contract resolves to it.</summary>
    public IMetadataStore Store => _store;

    /// <summary>The shared store's leases, or in-memory ones when one process owns the metadata.</summary>
    public ILeaseStore Leases(TimeProvider time) => _store as ILeaseStore ?? new LocalLeaseStore(time);

    public async ValueTask DisposeAsync()
    {
        if (Pins is IAsyncDisposable pins) await pins.DisposeAsync();
        switch (_store)
        {
            case IAsyncDisposable asynchronous: await asynchronous.DisposeAsync(); break;
            case IDisposable disposable: disposable.Dispose(); break;
        }
    }
}
