using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Registry.Api.Tls;

/// <summary>
/// A server certificate read from PEM files, as nginx and registry:2 take them: the certificate file holds the
/// server's certificate first, then any intermediate CA certificates clients need to reach their trusted root; the key
/// file holds its unencrypted private key (PKCS#8 <c>PRIVATE KEY</c>, <c>RSA PRIVATE KEY</c> or <c>EC PRIVATE KEY</c>).
/// </summary>
internal sealed class PemCertificate : IDisposable
{
    private const string CertificateSetting = "Registry:Http:Tls:Certificate";
    private const string KeySetting = "Registry:Http:Tls:Key";
    private const string ServerAuthentication = "1.3.6.1.5.5.7.3.1";

    private PemCertificate(X509Certificate2 leaf, X509Certificate2Collection intermediates)
    {
        Leaf = leaf;
        Intermediates = intermediates;
    }

    /// <summary>The server's certificate, with its private key.</summary>
    public X509Certificate2 Leaf { get; }

    /// <summary>The certificates after the first in the certificate file, sent to clients with it.</summary>
    public X509Certificate2Collection Intermediates { get; }

    /// <summary>
    /// Loads the pair, or returns null and adds every problem found to <paramref name="problems"/>, each naming the
    /// setting and the file: a file that is missing or unreadable, no certificate, no key or an encrypted one, a key that
    /// is not the certificate's, a certificate whose extended key usage rules out serving TLS.
    /// </summary>
    public static PemCertificate? Load(string certificatePath, string keyPath, ICollection<string> problems)
    {
        var before = problems.Count;
        var certificateText = Read(CertificateSetting, certificatePath, problems);
        var keyText = Read(KeySetting, keyPath, problems);

        var certificates = new X509Certificate2Collection();
        if (certificateText is not null)
        {
            try
            {
                certificates.ImportFromPem(certificateText);
                if (certificates.Count == 0)
                    problems.Add($"{CertificateSetting}: '{certificatePath}' holds no PEM certificate (-----BEGIN CERTIFICATE-----).");
            }
            catch (CryptographicException e)
            {
                problems.Add($"{CertificateSetting}: '{certificatePath}' holds a malformed certificate: {e.Message}");
            }
        }
        if (keyText is not null) CheckKey(keyPath, keyText, problems);
        if (problems.Count > before)
        {
            Dispose(certificates);
            return null;
        }

        X509Certificate2 leaf;
        try
        {
            leaf = X509Certificate2.CreateFromPem(certificateText!, keyText!);
        }
        catch (Exception e) when (e is CryptographicException or ArgumentException)
        {
            problems.Add($"{KeySetting}: '{keyPath}' is not the private key of the first certificate in '{certificatePath}' " +
                         "(the server's certificate must come first, intermediates after it).");
            Dispose(certificates);
            return null;
        }
        if (!AllowsServerAuthentication(leaf))
        {
            problems.Add($"{CertificateSetting}: the certificate in '{certificatePath}' ({leaf.Subject}) is not for TLS " +
                         "servers: its extended key usage lacks serverAuth.");
            leaf.Dispose();
            Dispose(certificates);
            return null;
        }

        // Windows' TLS stack cannot use the ephemeral key a PEM import gives; a PKCS#12 round trip persists it.
        if (OperatingSystem.IsWindows())
        {
            using var ephemeral = leaf;
            leaf = X509CertificateLoader.LoadPkcs12(ephemeral.Export(X509ContentType.Pkcs12), null);
        }

        certificates[0].Dispose();
        certificates.RemoveAt(0);
        return new PemCertificate(leaf, certificates);
    }

    private static string? Read(string setting, string path, ICollection<string> problems)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            problems.Add($"{setting}: '{path}' does not exist.");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            problems.Add($"{setting}: '{path}' cannot be read: {e.Message}");
        }
        return null;
    }

    /// <summary>The key file holds an unencrypted private key (whether it matches is checked with the certificate).</summary>
    private static void CheckKey(string keyPath, string keyText, ICollection<string> problems)
    {
        var encrypted = false;
        var rest = keyText.AsSpan();
        while (PemEncoding.TryFind(rest, out var fields))
        {
            var label = rest[fields.Label];
            if (label is "PRIVATE KEY" or "RSA PRIVATE KEY" or "EC PRIVATE KEY") return;
            encrypted |= label is "ENCRYPTED PRIVATE KEY";
            rest = rest[fields.Location.End..];
        }
        problems.Add(encrypted
            ? $"{KeySetting}: '{keyPath}' is encrypted; give the key unencrypted (e.g. `openssl pkey -in {keyPath} -out key.pem`) and protect it with file permissions."
            : $"{KeySetting}: '{keyPath}' holds no PEM private key (-----BEGIN PRIVATE KEY-----, RSA PRIVATE KEY or EC PRIVATE KEY).");
    }

    /// <summary>Without an extended key usage extension a certificate may serve any purpose (RFC 5280 4.2.1.12).</summary>
    private static bool AllowsServerAuthentication(X509Certificate2 certificate)
    {
        foreach (var extension in certificate.Extensions)
        {
            if (extension is not X509EnhancedKeyUsageExtension usage) continue;
            foreach (var oid in usage.EnhancedKeyUsages)
                if (oid.Value == ServerAuthentication) return true;
            return false;
        }
        return true;
    }

    private static void Dispose(X509Certificate2Collection certificates)
    {
        foreach (var certificate in certificates) certificate.Dispose();
    }

    public void Dispose()
    {
        Leaf.Dispose();
        Dispose(Intermediates);
    }
}
