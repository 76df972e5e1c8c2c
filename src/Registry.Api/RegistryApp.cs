using Microsoft.Extensions.Options;
using Registry.Api.Auth;
using Registry.Api.Configuration;
using Registry.Api.Configuration.Distribution;
using Registry.Api.Endpoints;
using Registry.Api.Extensions.Events;
using Registry.Api.Extensions.Framework;
using Registry.Api.Extensions.Oci;
using Registry.Api.Extensions.Search;
using Registry.Api.Extensions.Storage;
using Registry.Api.Extensions.TagDetails;
using Registry.Api.Http;
using Registry.Api.Manifests;
using Registry.Api.Observability;
using Registry.Api.Storage;
using Registry.Api.Tls;
using Registry.Storage;
using Registry.Storage.Blobs;
using Registry.Storage.Blobs.S3;
using Registry.Storage.Gc;
using Registry.Storage.Metadata;

namespace Registry.Api;

/// <summary>Builds the registry: configuration, storage, and the /v2 API.</summary>
public static class RegistryApp
{
    public const string DefaultUrl = "http://0.0.0.0:5000";

    /// <param name="settings">Configuration that overrides every other source (tests).</param>
    /// <param name="services">Last word on the services, e.g. a fake clock (tests).</param>
    /// <param name="distributionEnvironment">The environment to read registry:2's <c>REGISTRY_*</c> variables from
    /// (null: the process environment; tests pass their own).</param>
    public static WebApplication Create(string[] args, IDictionary<string, string?>? settings = null,
        Action<IServiceCollection>? services = null, IReadOnlyDictionary<string, string?>? distributionEnvironment = null)
    {
        // No configuration reload on change: its watcher would follow every folder under the content root, which
        // holds ./data by default (thousands of blob folders).
        var builder = WebApplication.CreateSlimBuilder(["--hostBuilder:reloadConfigOnChange=false", .. args]);
        // registry:2's environment variables and config.yml, below every other source: where both forms set
        // something, ours wins.
        var distribution = DistributionSettings.Read(args, distributionEnvironment ?? ProcessEnvironment());
        if (!distribution.IsEmpty)
            builder.Configuration.Sources.Insert(0, new Microsoft.Extensions.Configuration.Memory.MemoryConfigurationSource
            {
                InitialData = distribution.Settings,
            });
        if (settings is not null) builder.Configuration.AddInMemoryCollection(settings);
        // Before the metadata store exists: a registry:2 tree and no database means "import it first".
        var startupImport = DistributionImport.PlanAtStartup(builder.Configuration);
        var tls = builder.Configuration.GetSection("Registry:Http:Tls").Get<RegistryOptions.TlsSettings>() ?? new();
        var configuredUrls = builder.Configuration["urls"];
        var urls = RegistryTls.ListenUrls(string.IsNullOrEmpty(configuredUrls) ? DefaultUrl : configuredUrls, tls.Enabled);
        builder.WebHost.UseUrls(urls);
        builder.UseRegistryTls(tls);
        var metadata = new EarlyMetadataStore(builder.Configuration);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            // Blobs have no size limit; manifests are limited by their endpoint.
            kestrel.Limits.MaxRequestBodySize = null;
            // Blob GETs hand file ranges to the kernel; over TLS the bytes must pass through SslStream instead.
            if (!tls.Enabled)
                kestrel.ConfigureEndpointDefaults(listen => listen.Use(SendFileTransport.Middleware(kestrel.Limits.MinResponseDataRate)));
        });
        builder.AddRegistryObservability(urls);
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);

        builder.Services.AddOptions<RegistryOptions>().Bind(builder.Configuration.GetSection(RegistryOptions.Section))
            .ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<RegistryOptions>>(
            provider => new RegistryOptionsValidator(provider.GetRequiredService<IConfiguration>()["urls"]));
        builder.Services.AddSingleton(distribution);
        builder.Services.AddSingleton<IValidateOptions<RegistryOptions>, DistributionSettingsValidator>();
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddRegistryStorage(metadata);
        builder.Services.AddSingleton<RegistryServices>();
        builder.Services.AddSingleton<ManifestCache>();
        builder.Services.AddRegistryAuth(builder.Configuration);
        builder.Services.AddForwardedClients();
        builder.Services.AddSingleton<ExtensionRouter>();

        // Extensions: one line each (docs/extensions/).
        builder.AddExtension<DiscoveryExtension>();
        builder.AddExtension<SearchExtension>();
        builder.AddExtension<TagDetailsExtension>();
        builder.AddExtension<EventsExtension>();
        builder.Services.AddSingleton(startupImport);
        builder.Services.AddHostedService<StartupImport>();
        builder.AddExtension<StorageExtension>();
        builder.Services.AddSingleton<StorageJanitor>();
        builder.Services.AddHostedService(provider => provider.GetRequiredService<StorageJanitor>());
        services?.Invoke(builder.Services);

        var app = builder.Build();
        if (distribution.Ignored.Count > 0)
            app.Logger.LogWarning("registry:2 settings with no equivalent here, ignored: {Keys}", string.Join(", ", distribution.Ignored));
        app.Lifetime.ApplicationStarted.Register(() =>
        {
            var trimmer = IdleMemoryTrimmer.Start(app.Services.GetRequiredService<TimeProvider>());
            app.Lifetime.ApplicationStopping.Register(trimmer.Dispose);
        });
        app.UseForwardedHeaders();
        app.UseRequestTelemetry();
        app.UseRegistryErrors();
        app.UseMetricsEndpoint();
        app.MapHealth();
        app.MapRegistryAuth();
        app.MapRegistryApi();
        app.MapExtensionDocs();
        app.MapFallback(() => new RegistryError(ErrorCode.NameUnknown, "no such endpoint"));
        return app;
    }

    private static Dictionary<string, string?> ProcessEnvironment()
    {
        var environment = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (System.Collections.DictionaryEntry entry in Environment.GetEnvironmentVariables())
            if (entry.Key is string name && name.StartsWith(DistributionSettings.EnvironmentPrefix, StringComparison.Ordinal))
                environment[name] = entry.Value as string;
        return environment;
    }

    private static IServiceCollection AddRegistryStorage(this IServiceCollection services, EarlyMetadataStore metadata)
    {
        services.AddSingleton(provider =>
        {
            var layout = new StorageLayout(provider.GetRequiredService<IOptions<RegistryOptions>>().Value.Storage.Path);
            layout.Initialise();
            return layout;
        });
        services.AddSingleton(provider =>
        {
            var storage = provider.GetRequiredService<IOptions<RegistryOptions>>().Value.Storage;
            // Inline only where the content shares the WAL of the rows that reference it: the SQLite store.
            var inline = provider.GetRequiredService<IMetadataStore>() as IInlineContent;
            return new FileSystemBlobStore(provider.GetRequiredService<StorageLayout>(), storage.FlushToDisk, inline,
                storage.InlineBytes);
        });
        services.AddSingleton<IBlobStore>(provider =>
            provider.GetRequiredService<IOptions<RegistryOptions>>().Value.Storage.Kind == RegistryOptions.StorageKinds.S3
                ? provider.GetRequiredService<S3BlobStore>()
                : provider.GetRequiredService<FileSystemBlobStore>());
        services.AddSingleton(provider => new S3Bucket(provider.GetRequiredService<IOptions<RegistryOptions>>().Value.Storage.S3));
        services.AddSingleton(provider =>
        {
            var bucket = provider.GetRequiredService<S3Bucket>();
            return new S3BlobStore(bucket, new S3UploadSessionStore(bucket));
        });
        // One store object behind every metadata contract, chosen by Registry:Metadata:Kind.
        services.AddSingleton(provider => MetadataBackend.Open(provider.GetRequiredService<IOptions<RegistryOptions>>().Value,
            provider.GetRequiredService<StorageLayout>, metadata));
        services.AddSingleton(provider => provider.GetRequiredService<MetadataBackend>().Store);
        // Consumers take the narrow contract they use; each resolves to the one IMetadataStore, so replacing that
        // registration (another backend, or a test's wrapper) replaces every concern at once.
        services.AddSingleton<ILinkStore>(provider => provider.GetRequiredService<IMetadataStore>());
        services.AddSingleton<IManifestStore>(provider => provider.GetRequiredService<IMetadataStore>());
        services.AddSingleton<IUploadStore>(provider => provider.GetRequiredService<IMetadataStore>());
        services.AddSingleton<IEventOutbox>(provider => provider.GetRequiredService<IMetadataStore>());
        services.AddSingleton<IVerificationStore>(provider => provider.GetRequiredService<IMetadataStore>());
        services.AddSingleton<ISearchReadModel>(provider => provider.GetRequiredService<IMetadataStore>());
        services.AddSingleton<ITagDetailsReadModel>(provider => provider.GetRequiredService<IMetadataStore>());
        services.AddSingleton<IDeliveryCursors>(provider => provider.GetRequiredService<IMetadataStore>());
        services.AddSingleton<IDistributionImportStore>(provider => provider.GetRequiredService<IMetadataStore>());
        services.AddSingleton<IGarbageCollectionStore>(provider => provider.GetRequiredService<IMetadataStore>());
        services.AddSingleton<IStorageUsage>(provider => provider.GetRequiredService<IMetadataStore>());
        // Leases coordinate replicas: the shared store's, or in-memory ones when one process owns the metadata.
        services.AddSingleton(provider => provider.GetRequiredService<MetadataBackend>()
            .Leases(provider.GetRequiredService<TimeProvider>()));
        services.AddSingleton(provider => provider.GetRequiredService<MetadataBackend>().Pins);
        services.AddSingleton<GarbageCollector>();
        services.AddSingleton<GcRunner>();
        return services;
    }
}
