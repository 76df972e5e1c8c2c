using Registry.Api.Tls;

namespace Registry.Tests.Tls;

/// <summary>As registry:2 does with its TLS settings, a certificate makes every listen address a TLS address.</summary>
public sealed class ListenUrlsTests
{
    [Theory]
    [InlineData("http://0.0.0.0:5000", "https://0.0.0.0:5000")]
    [InlineData("HTTP://[::]:5000", "https://[::]:5000")]
    [InlineData("https://127.0.0.1:5443", "https://127.0.0.1:5443")]
    [InlineData("http://127.0.0.1:5000; https://localhost:5443", "https://127.0.0.1:5000;https://localhost:5443")]
    public void With_a_certificate_every_url_is_served_over_https(string urls, string expected) =>
        RegistryTls.ListenUrls(urls, tls: true).Should().Be(expected);

    [Fact]
    public void Without_a_certificate_the_urls_are_left_as_given() =>
        RegistryTls.ListenUrls("http://0.0.0.0:5000;http://[::]:5001", tls: false).Should().Be("http://0.0.0.0:5000;http://[::]:5001");
}
