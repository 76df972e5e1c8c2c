using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace Registry.Api.Tls;

/// <summary>
/// The certificate every TLS handshake presents, read again from its files when either changes, so a renewed
/// certificate (certbot, cert-manager, a Kubernetes secret) is served without a restart. The cache key is each file's
/// last-write time and length, so a handshake costs two <c>stat</c> calls. A pair that does not load, e.g. a renewal
/// caught between writing the certificate and writing its key, is logged and the previous certificate stays in use
/// until the files change again.
/// </summary>
internal sealed class ServerCertificateSource(string certificatePath, string keyPath)
{
    private ILogger _logger = Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;
    private TimeProvider _time = TimeProvider.System;

    private readonly Lock _gate = new();
    private volatile Loaded? _loaded;
    private (FileStamp Certificate, FileStamp Key) _attempted;

    private sealed record Loaded((FileStamp Certificate, FileStamp Key) Stamp, SslStreamCertificateContext Context);

    private readonly record struct FileStamp(DateTime LastWriteUtc, long Length)
    {
        public static FileStamp Of(string path)
        {
            var file = new FileInfo(path);
            return file.Exists ? new FileStamp(file.LastWriteTimeUtc, file.Length) : default;
        }
    }

    /// <summary>
    /// The certificate and its chain as of the files now. MUST NOT be called before the first load succeeded
    /// (<see cref="Load"/>), which start-up does; afterwards it never throws.
    /// </summary>
    public SslStreamCertificateContext Current
    {
        get
        {
            var stamp = (FileStamp.Of(certificatePath), FileStamp.Of(keyPath));
            var loaded = _loaded;
            if (loaded is not null && loaded.Stamp == stamp) return loaded.Context;
            lock (_gate)
            {
                loaded = _loaded;
                if (loaded is null) throw new InvalidOperationException("the server certificate was never loaded");
                if (loaded.Stamp == stamp || _attempted == stamp) return loaded.Context;
                _attempted = stamp;
                var problems = new List<string>();
                var context = TryLoad(problems);
                if (context is null)
                {
                    _logger.LogWarning("The TLS certificate files changed but do not load; still serving {Subject}: {Problems}",
                        loaded.Context.TargetCertificate.Subject, string.Join(" ", problems));
                    return loaded.Context;
                }
                _loaded = new Loaded(stamp, context);
                LogServing("the renewed", context.TargetCertificate);
                return context;
            }
        }
    }

    /// <summary>Loads the files for the first time; throws with every problem when they do not load.</summary>
    public void Load()
    {
        lock (_gate)
        {
            var stamp = (FileStamp.Of(certificatePath), FileStamp.Of(keyPath));
            var problems = new List<string>();
            var context = TryLoad(problems)
                ?? throw new InvalidOperationException("TLS: " + string.Join(" ", problems));
            _attempted = stamp;
            _loaded = new Loaded(stamp, context);
        }
    }

    /// <summary>From here on renewals are logged (the first load runs before the host's logging exists).</summary>
    public void Started(ILogger<ServerCertificateSource> logger, TimeProvider time)
    {
        _logger = logger;
        _time = time;
        LogServing("the", _loaded?.Context.TargetCertificate ?? throw new InvalidOperationException("not loaded"));
    }

    private void LogServing(string which, X509Certificate2 certificate)
    {
        var now = _time.GetUtcNow().UtcDateTime;
        var (from, until) = (certificate.NotBefore.ToUniversalTime(), certificate.NotAfter.ToUniversalTime());
        _logger.LogInformation("HTTPS with {Which} certificate {Subject} (serial {Serial}, valid {NotBefore:u} to {NotAfter:u})",
            which, certificate.Subject, certificate.SerialNumber, from, until);
        if (now > until)
            _logger.LogWarning("The TLS certificate {Subject} expired at {NotAfter:u}: clients will refuse it", certificate.Subject, until);
        else if (now < from)
            _logger.LogWarning("The TLS certificate {Subject} is not valid before {NotBefore:u}: clients will refuse it", certificate.Subject, from);
    }

    private SslStreamCertificateContext? TryLoad(List<string> problems)
    {
        var pem = PemCertificate.Load(certificatePath, keyPath, problems);
        if (pem is null) return null;
        // offline: the chain is what the file holds; nothing is fetched (an air-gapped registry must start).
        return SslStreamCertificateContext.Create(pem.Leaf, pem.Intermediates, offline: true);
    }
}
