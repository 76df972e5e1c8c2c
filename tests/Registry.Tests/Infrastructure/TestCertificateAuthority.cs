using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Registry.Tests.Clients;

namespace Registry.Tests.Infrastructure;

/// <summary>
/// A throw-away certificate authority made with <c>openssl</c> in a temp folder, deleted on dispose: a root CA, and
/// server certificates it signs for 127.0.0.1 and localhost (subjectAltName), optionally through an intermediate CA.
/// Clients trust it the way each does: <see cref="CertDir"/> holds only <c>ca.crt</c>, the layout
/// containers/image (skopeo, podman, buildah) reads for <c>--cert-dir</c>; HttpClient gets <see cref="ChainPolicy"/>.
/// </summary>
public sealed class TestCertificateAuthority : IDisposable
{
    private readonly TempDir _dir = new("ca-");
    private int _issued;

    private TestCertificateAuthority() { }

    /// <summary>The root CA certificate (PEM).</summary>
    public string CertificatePath => _dir.Sub("ca.crt");

    /// <summary>A folder with only <c>ca.crt</c> in it, for <c>--cert-dir</c>.</summary>
    public string CertDir => _dir.Sub("cert-dir");

    public X509Certificate2 Certificate { get; private set; } = null!;

    public static async Task<TestCertificateAuthority> CreateAsync()
    {
        var ca = new TestCertificateAuthority();
        await OpenSsl(ca._dir.Path, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=Registry Test Root CA",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign");
        Directory.CreateDirectory(ca.CertDir);
        File.Copy(ca.CertificatePath, Path.Combine(ca.CertDir, "ca.crt"));
        ca.Certificate = X509CertificateLoader.LoadCertificateFromFile(ca.CertificatePath);
        return ca;
    }

    /// <summary>
    /// A new server key and certificate for 127.0.0.1 and localhost, signed by this CA (or by a new intermediate CA
    /// that this CA signs, with <paramref name="viaIntermediate"/>: the certificate file then holds the server
    /// certificate followed by the intermediate, as a chain file does).
    /// </summary>
    /// <param name="extendedKeyUsage">The certificate's extendedKeyUsage (serverAuth unless a test wants otherwise).</param>
    public async Task<ServerCertificateFiles> IssueServerCertificateAsync(bool viaIntermediate = false,
        string extendedKeyUsage = "serverAuth")
    {
        var id = $"server{Interlocked.Increment(ref _issued)}";
        var signer = ("ca.crt", "ca.key");
        if (viaIntermediate)
        {
            await File.WriteAllTextAsync(_dir.Sub($"{id}-intermediate.ext"),
                "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n");
            await OpenSsl(_dir.Path, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", $"{id}-intermediate.key", "-out", $"{id}-intermediate.csr", "-subj", $"/CN=Registry Test Intermediate CA {id}");
            await OpenSsl(_dir.Path, "x509", "-req", "-in", $"{id}-intermediate.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "2", "-extfile", $"{id}-intermediate.ext", "-out", $"{id}-intermediate.crt");
            signer = ($"{id}-intermediate.crt", $"{id}-intermediate.key");
        }
        await File.WriteAllTextAsync(_dir.Sub($"{id}.ext"), "basicConstraints=critical,CA:FALSE\n" +
            "keyUsage=critical,digitalSignature,keyEncipherment\n" +
            $"extendedKeyUsage={extendedKeyUsage}\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n");
        await OpenSsl(_dir.Path, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", $"{id}.key", "-out", $"{id}.csr", "-subj", "/CN=localhost");
        await OpenSsl(_dir.Path, "x509", "-req", "-in", $"{id}.csr", "-CA", signer.Item1, "-CAkey", signer.Item2,
            "-CAcreateserial", "-days", "2", "-extfile", $"{id}.ext", "-out", $"{id}.crt");
        if (viaIntermediate)
            await File.AppendAllTextAsync(_dir.Sub($"{id}.crt"), await File.ReadAllTextAsync(_dir.Sub($"{id}-intermediate.crt")));
        return new ServerCertificateFiles(_dir.Sub($"{id}.crt"), _dir.Sub($"{id}.key"));
    }

    /// <summary>Trust exactly this CA (and not the system's roots); names and dates are still checked.</summary>
    public X509ChainPolicy ChainPolicy() => new()
    {
        TrustMode = X509ChainTrustMode.CustomRootTrust,
        CustomTrustStore = { Certificate },
        RevocationMode = X509RevocationMode.NoCheck,
    };

    /// <summary>An HttpClient handler that trusts exactly this CA.</summary>
    public SocketsHttpHandler CreateHandler() => new()
    {
        SslOptions = new SslClientAuthenticationOptions { CertificateChainPolicy = ChainPolicy() },
    };

    private static Task<CliResult> OpenSsl(string directory, params string[] arguments) =>
        Cli.RunAsync("openssl", arguments, workingDirectory: directory);

    public void Dispose()
    {
        Certificate?.Dispose();
        _dir.Dispose();
    }
}

/// <summary>A server certificate (PEM; the server's first, then any intermediates) and its private key (PEM).</summary>
public sealed record ServerCertificateFiles(string CertificatePath, string KeyPath)
{
    /// <summary>The server's own certificate (the first in the file).</summary>
    public X509Certificate2 Load() => X509CertificateLoader.LoadCertificateFromFile(CertificatePath);
}
