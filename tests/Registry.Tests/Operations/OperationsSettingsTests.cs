using Microsoft.Extensions.Options;
using Registry.Tests.Infrastructure;

namespace Registry.Tests.Operations;

/// <summary>The operations settings are validated at start-up with the others, every problem reported at once.</summary>
public class OperationsSettingsTests
{
    [Fact]
    public async Task Invalid_log_format_metrics_listener_and_shutdown_timeout_are_all_reported_at_start_up()
    {
        var start = () => RegistryServer.StartAsync(new Dictionary<string, string?>
        {
            ["Registry:Logging:Format"] = "xml",
            ["Registry:Metrics:Urls"] = "http://127.0.0.1",
            ["Registry:ShutdownTimeout"] = "-00:00:01",
        });

        var failure = await start.Should().ThrowAsync<OptionsValidationException>();
        failure.Which.Failures.Should().HaveCount(3).And.Contain(f => f.Contains("Registry:Logging:Format"))
            .And.Contain(f => f.Contains("Registry:Metrics:Urls")).And.Contain(f => f.Contains("Registry:ShutdownTimeout"));
    }

    [Theory]
    [InlineData("http://127.0.0.1:9090", 9090)]
    [InlineData("http://*:9100/", 9100)]
    [InlineData("http://[::1]:9091", 9091)]
    [InlineData("http://localhost", null)]
    [InlineData("http://127.0.0.1:0", null)]
    [InlineData("https://127.0.0.1:9090", null)]
    [InlineData("http://127.0.0.1:9090/metrics", null)]
    public void A_metrics_listener_needs_http_and_a_port_of_its_own(string url, int? port)
    {
        Registry.Api.Configuration.RegistryOptions.MetricsSettings.PortOf(url).Should().Be(port);
    }
}
