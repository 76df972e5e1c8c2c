using Registry.Api.Configuration;

namespace Registry.Api.Tls;

/// <summary>
/// HTTPS from PEM files (<c>Registry:Http:Tls:Certificate</c> and <c>Key</c>), for running without a reverse proxy.
/// As with registry:2's <c>REGISTRY_HTTP_TLS_*</c>, a certificate turns the listen addresses into TLS addresses:
/// every <c>urls</c> entry serves HTTPS, whether written <c>http://</c> or <c>https://</c>, and the default becomes
/// <c>https://0.0.0.0:5000</c>. TLS connections negotiate HTTP/2 or HTTP/1.1 by ALPN.
/// </summary>
internal static class RegistryTls
{
    /// <summary>The listen addresses after TLS is applied: each <c>http://</c> one becomes <c>https://</c>.</summary>
    public static string ListenUrls(string urls, bool tls) =>
        !tls ? urls : string.Join(';', urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(url => url.StartsWith("http://", StringComparison.OrdinalIgnoreCase) ? "https://" + url["http://".Length..] : url));

    /// <summary>
    /// When both files are configured: Kestrel's HTTPS on the listen addresses, with the certificate of
    /// <see cref="ServerCertificateSource"/>. The files are checked by <see cref="RegistryOptionsValidator"/> before
    /// Kestrel binds.
    /// </summary>
    public static void UseRegistryTls(this WebApplicationBuilder builder, RegistryOptions.TlsSettings tls)
    {
        if (!tls.Enabled) return;
        builder.WebHost.UseKestrelHttpsConfiguration();
        // The first load builds the certificate's chain, which reads the whole system trust store (~100 ms): it
        // runs while the host is built, and Kestrel waits for it when it binds. A failure here is reported by the
        // options validator first, with every other problem.
        var source = new ServerCertificateSource(tls.Certificate!, tls.Key!);
        var loading = Task.Run(source.Load);
        builder.Services.AddSingleton(provider =>
        {
            loading.GetAwaiter().GetResult();
            source.Started(provider.GetRequiredService<ILogger<ServerCertificateSource>>(), provider.GetRequiredService<TimeProvider>());
            return source;
        });
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.ConfigureHttpsDefaults(https =>
        {
            var source = kestrel.ApplicationServices.GetRequiredService<ServerCertificateSource>();
            // Kestrel wants a certificate or a selector up front; the selector would hand SslStream a bare certificate,
            // whose chain SslStream then builds per handshake and without the intermediates from the file. The cached
            // context carries them, so it replaces the selector on every connection.
            https.ServerCertificateSelector = (_, _) => source.Current.TargetCertificate;
            https.OnAuthenticate = (_, ssl) =>
            {
                ssl.ServerCertificateSelectionCallback = null;
                ssl.ServerCertificate = null;
                ssl.ServerCertificateContext = source.Current;
            };
        }));
    }
}
