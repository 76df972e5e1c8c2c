using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Registry.Api.Observability;
using Registry.Tests.Clients;
using Registry.Tests.Conformance;
using Registry.Tests.Infrastructure;

namespace Registry.Tests.Operations;

/// <summary>
/// <c>/metrics</c> in the Prometheus text format: request counters and latency histograms by operation, body bytes,
/// storage gauges, webhook, auth and GC series; checked by promtool and scraped by a real Prometheus server.
/// Each test has a server of its own, so the counts it reads are its own.
/// </summary>
public class MetricsTests
{
    private const string Requests = "registry_http_requests_total";

    [Fact]
    public async Task Promtool_check_metrics_accepts_the_output()
    {
        await using var server = await RegistryServer.StartAsync();
        using var client = server.CreateClient();
        var repo = RegistryFixture.NewRepo();
        await client.PushImageAsync(repo, "v1");
        await client.GetAsync($"v2/{repo}/manifests/v1");
        await client.GetAsync($"v2/{repo}/tags/list");
        await client.GetAsync("v2/_catalog");
        var text = await Metrics.ScrapeUntilAsync(client, t => Metrics.Has(t, "registry_repositories"), "the storage gauges");

        using var dir = new TempDir("promtool-");
        await File.WriteAllTextAsync(dir.Sub("metrics.txt"), text);
        Cli.Require("promtool");
        var check = await Cli.TryRunAsync("bash", ["-c", $"promtool check metrics < '{dir.Sub("metrics.txt")}'"]);

        check.ExitCode.Should().Be(0, check.ToString());
        check.Stdout.Should().BeEmpty("promtool prints every problem it finds (lint included)");
    }

    [Fact]
    public async Task Requests_are_counted_by_operation_method_and_status_class()
    {
        await using var server = await RegistryServer.StartAsync();
        using var client = server.CreateClient();
        var repo = RegistryFixture.NewRepo();
        var image = await client.PushImageAsync(repo, "v1");
        await client.GetAsync($"v2/{repo}/manifests/v1");
        await client.SendAsync(new HttpRequestMessage(HttpMethod.Head, $"v2/{repo}/manifests/v1"));
        await client.GetAsync($"v2/{repo}/manifests/missing");
        await client.SendAsync(new HttpRequestMessage(HttpMethod.Head, $"v2/{repo}/blobs/{image.Config.Digest}"));

        var text = await Metrics.ScrapeAsync(client);

        Metrics.Sum(text, Requests, ("operation", "manifest_put"), ("method", "PUT"), ("status_class", "2xx")).Should().Be(1);
        Metrics.Sum(text, Requests, ("operation", "manifest_get"), ("method", "GET"), ("status_class", "2xx")).Should().Be(1);
        Metrics.Sum(text, Requests, ("operation", "manifest_get"), ("method", "GET"), ("status_class", "4xx")).Should().Be(1);
        Metrics.Sum(text, Requests, ("operation", "manifest_head"), ("method", "HEAD"), ("status_class", "2xx")).Should().Be(1);
        Metrics.Sum(text, Requests, ("operation", "blob_head"), ("method", "HEAD"), ("status_class", "2xx")).Should().Be(1);
        Metrics.Sum(text, Requests, ("operation", "upload_start")).Should().BeGreaterThan(0);
    }

    [Fact]
    public async Task Every_counted_request_has_a_latency_histogram_with_the_same_count()
    {
        await using var server = await RegistryServer.StartAsync();
        using var client = server.CreateClient();
        var repo = RegistryFixture.NewRepo();
        await client.PushImageAsync(repo, "v1");
        for (var i = 0; i < 3; i++) await client.GetAsync($"v2/{repo}/tags/list");

        var text = await Metrics.ScrapeAsync(client);

        var tags = new[] { ("operation", "tags_list"), ("method", "GET"), ("status_class", "2xx") };
        Metrics.Sum(text, Requests, tags).Should().Be(3);
        Metrics.Sum(text, "registry_http_request_duration_seconds_count", tags).Should().Be(3);
        Metrics.Sum(text, "registry_http_request_duration_seconds_bucket", [.. tags, ("le", "+Inf")]).Should().Be(3);
        Metrics.Has(text, "registry_http_request_duration_seconds_bucket", [.. tags, ("le", "0.005")]).Should().BeTrue();
    }

    [Fact]
    public async Task Repository_names_and_raw_paths_never_become_labels()
    {
        await using var server = await RegistryServer.StartAsync();
        using var client = server.CreateClient();
        var repo = $"secret-team/r{Guid.NewGuid():N}";
        await client.PushImageAsync(repo, "v1");
        await client.GetAsync($"v2/{repo}/manifests/v1");
        await client.GetAsync($"v2/{repo}/nothing/here");
        await client.GetAsync("no/such/path");
        await client.SendAsync(new HttpRequestMessage(new HttpMethod("BREW"), $"v2/{repo}/manifests/v1"));

        var text = await Metrics.ScrapeAsync(client);

        text.Should().NotContain("secret-team").And.NotContain("no/such").And.NotContain("BREW");
        Metrics.Sum(text, Requests, ("operation", "unknown")).Should().Be(2);
        Metrics.Sum(text, Requests, ("operation", "unsupported"), ("method", "_OTHER")).Should().Be(1);
    }

    [Fact]
    public async Task Body_bytes_received_and_sent_are_counted_per_operation()
    {
        await using var server = await RegistryServer.StartAsync();
        using var client = server.CreateClient();
        var repo = RegistryFixture.NewRepo();
        var blob = Oci.RandomBlob(300_000);
        (await client.PostBlobAsync(repo, blob.Bytes, blob.Digest)).StatusCode.Should().Be(HttpStatusCode.Created);
        (await client.GetByteArrayAsync($"v2/{repo}/blobs/{blob.Digest}")).Length.Should().Be(blob.Bytes.Length);
        var chunked = Oci.RandomBlob(200_000);
        await client.PushChunkedAsync(repo, chunked, 64 * 1024);

        var text = await Metrics.ScrapeAsync(client);

        Metrics.Sum(text, "registry_http_received_bytes_total", ("operation", "upload_start")).Should().Be(blob.Bytes.Length);
        Metrics.Sum(text, "registry_http_received_bytes_total", ("operation", "upload_patch")).Should().Be(chunked.Bytes.Length);
        Metrics.Sum(text, "registry_http_sent_bytes_total", ("operation", "blob_get")).Should().Be(blob.Bytes.Length);
    }

    [Fact]
    public async Task Storage_gauges_follow_pushes_and_open_uploads()
    {
        await using var server = await RegistryServer.StartAsync();
        using var client = server.CreateClient();
        var repo = RegistryFixture.NewRepo();
        var image = await client.PushImageAsync(repo, "v1");
        await Oci.StartUploadAsync(client, repo);
        var stored = image.Config.Bytes.Length + image.Layer.Bytes.Length + image.Manifest.Bytes.Length;

        var text = await Metrics.ScrapeUntilAsync(client, t => Metrics.Sum(t, "registry_uploads_active") == 1
                                                               && Metrics.Sum(t, "registry_manifests") == 1,
            "gauges after one image and one open upload");

        Metrics.Sum(text, "registry_repositories").Should().Be(1);
        Metrics.Sum(text, "registry_blobs").Should().Be(3, "config, layer and manifest");
        Metrics.Sum(text, "registry_storage_size_bytes").Should().Be(stored);
    }

    [Fact]
    public async Task Webhook_deliveries_and_transient_failures_are_counted_by_webhook()
    {
        await using var receiver = new WebhookReceiver(WebhookReceiver.FreePort()) { FailFirst = 2 };
        await receiver.StartAsync();
        await using var server = await RegistryServer.StartAsync(new Dictionary<string, string?>
        {
            ["Registry:Extensions:Events:Webhooks:0:Name"] = "ci",
            ["Registry:Extensions:Events:Webhooks:0:Url"] = receiver.Url + "?token=secret-token",
            ["Registry:Extensions:Events:Webhooks:0:RetryDelay"] = "00:00:00.05",
            ["Registry:Extensions:Events:Webhooks:0:MaxRetryDelay"] = "00:00:00.2",
            ["Registry:Extensions:Events:Webhooks:0:Actions:0"] = "manifest.push",
        });
        using var client = server.CreateClient();
        await client.PushImageAsync(RegistryFixture.NewRepo(), "v1");

        var text = await Metrics.ScrapeUntilAsync(client,
            t => Metrics.Sum(t, "registry_webhook_deliveries_total", ("webhook", "ci"), ("outcome", "delivered")) == 1,
            "one delivery");

        Metrics.Sum(text, "registry_webhook_failures_total", ("webhook", "ci")).Should().Be(2);
        Metrics.Sum(text, "registry_webhook_retries_total", ("webhook", "ci")).Should().Be(2);
        Metrics.Sum(text, "registry_webhook_deliveries_total", ("webhook", "ci"), ("outcome", "refused")).Should().Be(0);
        text.Should().NotContain("secret-token");
    }

    [Fact]
    public async Task Auth_failure_and_garbage_collection_instruments_are_exported_with_units()
    {
        await using var server = await RegistryServer.StartAsync();
        using var client = server.CreateClient();
        var metrics = server.Services.GetRequiredService<RegistryMetrics>();

        var before = await Metrics.ScrapeAsync(client);
        metrics.AuthFailed("invalid_credentials");
        metrics.GcRunCompleted(succeeded: true, blobsRemoved: 3, bytesReclaimed: 4096);
        var text = await Metrics.ScrapeAsync(client);

        Metrics.Sum(before, "registry_gc_runs_total").Should().Be(0, "the GC series exist before the first run");
        Metrics.Has(before, "registry_gc_reclaimed_bytes_total").Should().BeTrue();
        Metrics.Sum(text, "registry_auth_failures_total", ("reason", "invalid_credentials")).Should().Be(1);
        Metrics.Sum(text, "registry_gc_runs_total", ("outcome", "completed")).Should().Be(1);
        Metrics.Sum(text, "registry_gc_blobs_removed_total").Should().Be(3);
        Metrics.Sum(text, "registry_gc_reclaimed_bytes_total").Should().Be(4096);
    }

    [Fact]
    public async Task With_a_metrics_listener_metrics_are_served_only_there_and_nothing_else_is()
    {
        var port = WebhookReceiver.FreePort();
        await using var server = await RegistryServer.StartAsync(new Dictionary<string, string?>
        {
            ["Registry:Metrics:Urls"] = $"http://127.0.0.1:{port}",
        });
        using var client = server.CreateClient();
        using var metricsClient = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/") };
        (await client.GetAsync("v2/")).StatusCode.Should().Be(HttpStatusCode.OK);

        var text = await Metrics.ScrapeAsync(metricsClient);

        Metrics.Sum(text, Requests, ("operation", "base")).Should().Be(1);
        (await client.GetAsync("metrics")).StatusCode.Should().Be(HttpStatusCode.NotFound);
        (await metricsClient.GetAsync("v2/")).StatusCode.Should().Be(HttpStatusCode.NotFound);
        (await metricsClient.GetAsync("readyz")).StatusCode.Should().Be(HttpStatusCode.OK);
    }

    [Fact]
    public async Task A_Prometheus_server_scrapes_the_registry_and_its_query_API_returns_the_request_counter()
    {
        await using var server = await RegistryServer.StartAsync();
        using var client = server.CreateClient();
        var repo = RegistryFixture.NewRepo();
        await client.PushImageAsync(repo, "v1");
        for (var i = 0; i < 5; i++) await client.GetAsync($"v2/{repo}/manifests/v1");

        await using var prometheus = await PrometheusServer.StartAsync(server.HostPort);
        var value = await prometheus.QueryUntilFoundAsync(
            """sum(registry_http_requests_total{job="registry",operation="manifest_get",status_class="2xx"})""");

        value.Should().Be(5);
    }
}
