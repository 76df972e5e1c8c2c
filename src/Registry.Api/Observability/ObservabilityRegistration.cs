using System.Diagnostics.Metrics;
using Microsoft.Extensions.Options;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using Registry.Api.Configuration;
using Registry.Api.Http;

namespace Registry.Api.Observability;

/// <summary>
/// Health, metrics, the access log and shutdown: what an operator needs to run the registry. Metrics are
/// <see cref="System.Diagnostics.Metrics"/> instruments (<see cref="RegistryMetrics"/>) exported in the Prometheus
/// text format by OpenTelemetry's exporter: Native AOT clean like prometheus-net, but it exports those instruments
/// natively rather than through an adapter (the choice and its measured cost: README "Operating it").
/// </summary>
internal static class ObservabilityRegistration
{
    public const string MetricsPath = "/metrics";

    public static WebApplicationBuilder AddRegistryObservability(this WebApplicationBuilder builder, string mainUrls)
    {
        // Only the two sections needed before the host is built (binding the whole of Registry is a start-up cost;
        // the options validator binds and checks everything once).
        var settings = new RegistryOptions();
        builder.Configuration.GetSection($"{RegistryOptions.Section}:Logging").Bind(settings.Logging);
        builder.Configuration.GetSection($"{RegistryOptions.Section}:Metrics").Bind(settings.Metrics);

        builder.Logging.ClearProviders();
        if (settings.Logging.Format == RegistryOptions.LogFormats.Json)
            builder.Logging.AddJsonConsole(json =>
            {
                json.UseUtcTimestamp = true;
                json.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ";
            });
        else
            builder.Logging.AddSimpleConsole(text => text.SingleLine = true);

        // The metrics listener is one more Kestrel address; the pipeline tells its requests apart by local port.
        if (settings.Metrics.UrlList.Count > 0)
            builder.WebHost.UseUrls([.. mainUrls.Split(';', StringSplitOptions.RemoveEmptyEntries), .. settings.Metrics.UrlList]);

        builder.Services.AddOptions<HostOptions>().Configure<IOptions<RegistryOptions>>((host, registry) =>
            host.ShutdownTimeout = registry.Value.ShutdownTimeout);

        builder.Services.AddSingleton(new MetricsListener(settings.Metrics.Ports));
        builder.Services.AddSingleton<StorageStatistics>();
        builder.Services.AddSingleton<RegistryMetrics>();
        builder.Services.AddSingleton<RequestTelemetry>();
        builder.Services.AddSingleton<ReadinessCheck>();
        builder.Services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService("registry"))
            .WithMetrics(metrics => metrics.AddMeter(RegistryMetrics.MeterName)
                // Every scrape sees the current values (the exporter's default keeps an answer for 300 ms).
                .AddPrometheusExporter(exporter => exporter.ScrapeResponseCacheDurationMilliseconds = 0));
        builder.Services.ConfigureOpenTelemetryMeterProvider((provider, metrics) =>
            metrics.AddView(instrument => View(instrument, provider.GetRequiredService<IMeterFactory>())));
        return builder;
    }

    /// <summary>
    /// Only this registry's own instruments: the exporter listens to meters by name, and another registry in the
    /// same process (tests) has a meter of the same name from another factory. The exporter reserves room for
    /// 2 000 label sets per instrument up front; ours have far fewer, so each gets room for what
    /// <see cref="RegistryMetrics.MaxSeries"/> says it can have (anything beyond goes to one overflow series).
    /// </summary>
    private static MetricStreamConfiguration? View(Instrument instrument, IMeterFactory ours) =>
        instrument.Meter.Name != RegistryMetrics.MeterName ? null
        : !ReferenceEquals(instrument.Meter.Scope, ours) ? MetricStreamConfiguration.Drop
        : instrument.Name == RegistryMetrics.DurationInstrument
            ? new ExplicitBucketHistogramConfiguration
            {
                Boundaries = RegistryMetrics.DurationBuckets,
                CardinalityLimit = RegistryMetrics.MaxSeries(instrument.Name),
            }
            : new MetricStreamConfiguration { CardinalityLimit = RegistryMetrics.MaxSeries(instrument.Name) };

    /// <summary>First in the pipeline: the request id, the byte counts and the timing cover everything after it.</summary>
    public static IApplicationBuilder UseRequestTelemetry(this IApplicationBuilder app)
    {
        // Resolved on the first request, so that building the app opens no storage (invalid settings fail at start).
        RequestTelemetry? telemetry = null;
        return app.Use((context, next) =>
            (telemetry ??= app.ApplicationServices.GetRequiredService<RequestTelemetry>()).InvokeAsync(context, next));
    }

    /// <summary>
    /// <c>/metrics</c>: on the main listener, or, when <c>Registry:Metrics:Urls</c> is set, only on that listener,
    /// which then serves nothing else but the health endpoints.
    /// </summary>
    public static IApplicationBuilder UseMetricsEndpoint(this IApplicationBuilder app)
    {
        var ports = app.ApplicationServices.GetRequiredService<MetricsListener>().Ports;
        if (ports.Count > 0)
            app.Use((context, next) =>
            {
                if (!ports.Contains(context.Connection.LocalPort)) return next(context);
                var path = context.Request.Path;
                return path == MetricsPath || path == "/healthz" || path == "/readyz"
                    ? next(context)
                    : new RegistryError(ErrorCode.NameUnknown, "the metrics listener serves only /metrics, /healthz and /readyz").ExecuteAsync(context);
            });
        return app.UseOpenTelemetryPrometheusScrapingEndpoint(meterProvider: null,
            predicate: context => context.Request.Path == MetricsPath
                                  && (ports.Count == 0 || ports.Contains(context.Connection.LocalPort)),
            path: null,
            configureBranchedPipeline: branch => branch.Use((context, next) =>
            {
                context.Describe(RequestOperations.Metrics, null);
                return next(context);
            }),
            optionsName: null);
    }
}

/// <summary>The ports of the metrics listener (<c>Registry:Metrics:Urls</c>); empty when /metrics is on the main one.</summary>
internal sealed record MetricsListener(IReadOnlySet<int> Ports);
