using Microsoft.Extensions.Options;
using Registry.Api.Configuration;
using Registry.Api.Endpoints;
using Registry.Api.Extensions.Events;
using Registry.Api.Extensions.Framework;
using Registry.Api.Extensions.Oci;
using Registry.Api.Extensions.Search;
using Registry.Api.Extensions.Storage;
using Registry.Api.Extensions.TagDetails;
using Registry.Api.Http;
using Registry.Api.Manifests;
using Registry.Api.Storage;
using Registry.Storage;
using Registry.Storage.Blobs;
using Registry.Storage.Gc;
using Registry.Storage.Metadata;

namespace Registry.Api;

/// <summary>Builds the registry: configuration, storage, and the /v2 API.</summary>
public static class RegistryApp
{
    public const string DefaultUrl = "http://0.0.0.0:5000";

    /// <param name="settings">Configuration that overrides every other source (tests).</param>
    /// <param name="services">Last word on the services, e.g. a fake clock (tests).</param>
    public static WebApplication Create(string[] args, IDictionary<string, string?>? settings = null,
        Action<IServiceCollection>? services = null)
    {
        // No configuration reload on change: its watcher would follow every folder under the content root, which
        // holds ./data by default (thousands of blob folders).
        var builder = WebApplication.CreateSlimBuilder(["--hostBuilder:reloadConfigOnChange=false", .. args]);
        if (settings is not null) builder.Configuration.AddInMemoryCollection(settings);
        var metadata = new EarlyMetadataStore(builder.Configuration);
        if (string.IsNullOrEmpty(builder.Configuration["urls"])) builder.WebHost.UseUrls(DefaultUrl);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            // Blobs have no size limit; manifests are limited by their endpoint.
            kestrel.Limits.MaxRequestBodySize = null;
        });
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);

        builder.Services.AddOptions<RegistryOptions>().Bind(builder.Configuration.GetSection(RegistryOptions.Section))
            .ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<RegistryOptions>, RegistryOptionsValidator>();
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddRegistryStorage(metadata);
        builder.Services.AddSingleton<RegistryServices>();
        builder.Services.AddSingleton<ManifestCache>();
        builder.Services.AddSingleton<IAccessPolicy, AllowAllPolicy>();
        builder.Services.AddSingleton<ExtensionRouter>();

        // Extensions: one line each (docs/extensions/).
        builder.AddExtension<DiscoveryExtension>();
        builder.AddExtension<SearchExtension>();
        builder.AddExtension<TagDetailsExtension>();
        builder.AddExtension<EventsExtension>();
        builder.AddExtension<StorageExtension>();
        builder.Services.AddSingleton<StorageJanitor>();
        builder.Services.AddHostedService(provider => provider.GetRequiredService<StorageJanitor>());
        services?.Invoke(builder.Services);

        var app = builder.Build();
        app.UseRegistryErrors();
        app.MapRegistryApi();
        app.MapExtensionDocs();
        app.MapFallback(() => new RegistryError(ErrorCode.NotFound));
        return app;
    }

    private static IServiceCollection AddRegistryStorage(this IServiceCollection services, EarlyMetadataStore metadata)
    {
        services.AddSingleton(provider =>
        {
            var layout = new StorageLayout(provider.GetRequiredService<IOptions<RegistryOptions>>().Value.Storage.Path);
            layout.Initialise();
            return layout;
        });
        services.AddSingleton<IBlobStore>(provider => new FileSystemBlobStore(provider.GetRequiredService<StorageLayout>(),
            provider.GetRequiredService<IOptions<RegistryOptions>>().Value.Storage.FlushToDisk));
        services.AddSingleton(provider =>
            metadata.Take(provider.GetRequiredService<IOptions<RegistryOptions>>().Value.Storage.Path)
            ?? new SqliteMetadataStore(provider.GetRequiredService<StorageLayout>().DatabasePath,
                durable: provider.GetRequiredService<IOptions<RegistryOptions>>().Value.Storage.FlushToDisk));
        services.AddSingleton<IMetadataStore>(provider => provider.GetRequiredService<SqliteMetadataStore>());
        services.AddSingleton<IGarbageCollectionStore>(provider => provider.GetRequiredService<SqliteMetadataStore>());
        services.AddSingleton<IStorageUsage>(provider => provider.GetRequiredService<SqliteMetadataStore>());
        services.AddSingleton<BlobPins>();
        services.AddSingleton<GarbageCollector>();
        services.AddSingleton<GcRunner>();
        return services;
    }
}
