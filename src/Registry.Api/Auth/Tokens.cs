using System.Buffers.Text;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Registry.Api.Auth;

/// <summary>
/// The built-in token service's signing key: from <c>Registry:Auth:Token:SigningKey</c>, or generated (EC P-256) on
/// first start and kept in the data folder (<c>auth/token-signing-key.pem</c>, mode 0600), so tokens survive restarts.
/// Its public half is published as a JWKS; its <c>kid</c> is the RFC 7638 thumbprint.
/// </summary>
internal sealed class TokenSigningKey
{
    private readonly ECDsa? _ec;
    private readonly RSA? _rsa;

    private TokenSigningKey(ECDsa? ec, RSA? rsa)
    {
        _ec = ec;
        _rsa = rsa;
        Jwk = ec is not null ? EcJwk(ec.ExportParameters(false)) : RsaJwk(rsa!.ExportParameters(false));
        KeyId = Thumbprint(Jwk);
        Algorithm = ec is not null ? "ES256" : "RS256";
        SecurityKey = ec is not null ? new ECDsaSecurityKey(ec) { KeyId = KeyId } : new RsaSecurityKey(rsa!) { KeyId = KeyId };
    }

    public string KeyId { get; }
    public string Algorithm { get; }
    public SecurityKey SecurityKey { get; }

    /// <summary>The public key's JWK members in RFC 7638 order (for the thumbprint), without kid/alg/use.</summary>
    private SortedDictionary<string, string> Jwk { get; }

    public static TokenSigningKey Load(string? configuredPath, string dataFolder)
    {
        if (!string.IsNullOrWhiteSpace(configuredPath)) return FromPem(File.ReadAllText(configuredPath), configuredPath);
        var path = Path.Combine(dataFolder, "auth", "token-signing-key.pem");
        if (File.Exists(path)) return FromPem(File.ReadAllText(path), path);

        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var ec = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var temp = path + ".tmp";
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        using (var file = new FileStream(temp, options))
        {
            file.Write(Encoding.ASCII.GetBytes(ec.ExportPkcs8PrivateKeyPem()));
            file.Flush(flushToDisk: true);
        }
        File.Move(temp, path, overwrite: false);
        return new TokenSigningKey(ec, null);
    }

    private static TokenSigningKey FromPem(string pem, string path)
    {
        try
        {
            var ec = ECDsa.Create();
            ec.ImportFromPem(pem);
            if (ec.KeySize != 256) throw new InvalidOperationException($"{path}: EC signing keys must be P-256 (ES256)");
            return new TokenSigningKey(ec, null);
        }
        catch (CryptographicException)
        {
            var rsa = RSA.Create();
            try
            {
                rsa.ImportFromPem(pem);
            }
            catch (Exception e) when (e is CryptographicException or ArgumentException)
            {
                throw new InvalidOperationException($"{path}: not a PEM EC P-256 or RSA private key", e);
            }
            if (rsa.KeySize < 2048) throw new InvalidOperationException($"{path}: RSA signing keys need at least 2048 bits");
            return new TokenSigningKey(null, rsa);
        }
    }

    /// <summary>Signs <c>base64url(header).base64url(payload)</c> and returns the whole compact JWS.</summary>
    public string Sign(Action<Utf8JsonWriter> payload)
    {
        var header = Json(writer =>
        {
            writer.WriteStartObject();
            writer.WriteString("alg", Algorithm);
            writer.WriteString("typ", "JWT");
            writer.WriteString("kid", KeyId);
            writer.WriteEndObject();
        });
        var input = $"{Base64Url.EncodeToString(header)}.{Base64Url.EncodeToString(Json(payload))}";
        var data = Encoding.ASCII.GetBytes(input);
        var signature = _ec is not null
            ? _ec.SignData(data, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation)
            : _rsa!.SignData(data, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        return $"{input}.{Base64Url.EncodeToString(signature)}";
    }

    /// <summary>The JWKS document: <c>{"keys":[…]}</c>.</summary>
    public void WriteJwks(Utf8JsonWriter writer)
    {
        writer.WriteStartObject();
        writer.WriteStartArray("keys");
        writer.WriteStartObject();
        foreach (var (name, value) in Jwk) writer.WriteString(name, value);
        writer.WriteString("kid", KeyId);
        writer.WriteString("use", "sig");
        writer.WriteString("alg", Algorithm);
        writer.WriteEndObject();
        writer.WriteEndArray();
        writer.WriteEndObject();
    }

    private static byte[] Json(Action<Utf8JsonWriter> write)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer)) write(writer);
        return buffer.ToArray();
    }

    private static SortedDictionary<string, string> EcJwk(ECParameters p) => new(StringComparer.Ordinal)
    {
        ["crv"] = "P-256", ["kty"] = "EC", ["x"] = Base64Url.EncodeToString(p.Q.X!), ["y"] = Base64Url.EncodeToString(p.Q.Y!),
    };

    private static SortedDictionary<string, string> RsaJwk(RSAParameters p) => new(StringComparer.Ordinal)
    {
        ["e"] = Base64Url.EncodeToString(p.Exponent!), ["kty"] = "RSA", ["n"] = Base64Url.EncodeToString(p.Modulus!),
    };

    /// <summary>RFC 7638: SHA-256 of the required members in lexical order, base64url.</summary>
    private static string Thumbprint(SortedDictionary<string, string> jwk) =>
        Base64Url.EncodeToString(SHA256.HashData(Json(writer =>
        {
            writer.WriteStartObject();
            foreach (var (name, value) in jwk) writer.WriteString(name, value);
            writer.WriteEndObject();
        })));
}

/// <summary>A token that passed every check, and who it speaks for.</summary>
internal sealed record ValidatedToken(string? Subject, string Issuer, IReadOnlyList<TokenGrant> Grants, DateTimeOffset Expires);

/// <summary>
/// Validates Bearer tokens: signature by a trusted key (the built-in key, or an external issuer's keys from a JWKS file
/// or PEM certificates, with <c>kid</c> and <c>x5c</c> honoured), an algorithm from an allow-list of asymmetric ones
/// (never <c>none</c>, never HMAC, so no RS/HS confusion), <c>exp</c> and <c>nbf</c> within the configured clock skew,
/// <c>iss</c> and <c>aud</c>.
/// </summary>
internal sealed class TokenValidator
{
    private static readonly string[] Algorithms = ["ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"];

    private readonly JsonWebTokenHandler _handler = new() { MapInboundClaims = false };
    private readonly TokenValidationParameters _parameters;
    private readonly TimeProvider _time;
    private readonly TimeSpan _skew;
    private readonly X509Certificate2Collection _roots = new();

    public TokenValidator(TokenSettings settings, TokenSigningKey? builtIn, TimeProvider time)
    {
        _time = time;
        _skew = settings.ClockSkew;
        var keys = new List<SecurityKey>();
        if (builtIn is not null) keys.Add(builtIn.SecurityKey);
        if (!string.IsNullOrWhiteSpace(settings.Jwks))
            foreach (var key in new JsonWebKeySet(File.ReadAllText(settings.Jwks)).GetSigningKeys())
                keys.Add(key);
        if (!string.IsNullOrWhiteSpace(settings.Certificates))
        {
            _roots.ImportFromPemFile(settings.Certificates);
            foreach (var certificate in _roots)
                if (KeyOf(certificate, LibtrustKeyId(certificate)) is { } key) keys.Add(key);
        }
        IssuerKeys = keys;
        _parameters = new TokenValidationParameters
        {
            ValidIssuer = settings.Issuer,
            ValidAudience = settings.Service,
            IssuerSigningKeys = keys,
            ValidAlgorithms = Algorithms,
            ClockSkew = settings.ClockSkew,
            RequireExpirationTime = true,
            RequireSignedTokens = true,
            ValidateLifetime = true,
            ValidateIssuer = true,
            ValidateAudience = true,
            TryAllIssuerSigningKeys = true,
            LifetimeValidator = (notBefore, expires, _, parameters) =>
            {
                var now = _time.GetUtcNow().UtcDateTime;
                return expires is { } exp && exp + parameters.ClockSkew >= now
                       && (notBefore is not { } nbf || nbf - parameters.ClockSkew <= now);
            },
            IssuerSigningKeyResolver = (_, token, _, _) => ResolveKeys(token),
        };
    }

    public IReadOnlyList<SecurityKey> IssuerKeys { get; }

    /// <summary>
    /// The keys to try: the chain in the token's <c>x5c</c> header when it leads to a configured certificate, else the
    /// configured keys (the handler matches <c>kid</c> first).
    /// </summary>
    private IEnumerable<SecurityKey> ResolveKeys(SecurityToken token)
    {
        if (_roots.Count > 0 && token is JsonWebToken jwt && ChainOf(jwt) is { Count: > 0 } chain)
        {
            try
            {
                var certificates = chain.Select(c => X509CertificateLoader.LoadCertificate(Convert.FromBase64String(c))).ToList();
                using var builder = new X509Chain();
                builder.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                builder.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                builder.ChainPolicy.CustomTrustStore.AddRange(_roots);
                foreach (var intermediate in certificates.Skip(1)) builder.ChainPolicy.ExtraStore.Add(intermediate);
                var leaf = certificates[0];
                var trusted = _roots.Any(r => r.RawDataMemory.Span.SequenceEqual(leaf.RawDataMemory.Span)) || builder.Build(leaf);
                if (trusted && KeyOf(leaf, null) is { } key) return [key];
            }
            catch (Exception e) when (e is FormatException or CryptographicException)
            {
                // An x5c that cannot be read trusts nothing.
            }
            return [];
        }
        return IssuerKeys;
    }

    /// <summary>The base64 DER certificates of the token's <c>x5c</c> header, leaf first; null when it has none.</summary>
    private static List<string>? ChainOf(JsonWebToken jwt)
    {
        try
        {
            using var header = JsonDocument.Parse(Base64Url.DecodeFromChars(jwt.EncodedHeader));
            return header.RootElement.TryGetProperty("x5c", out var x5c) && x5c.ValueKind == JsonValueKind.Array
                ? x5c.EnumerateArray().Where(c => c.ValueKind == JsonValueKind.String).Select(c => c.GetString()!).ToList()
                : null;
        }
        catch (Exception e) when (e is JsonException or FormatException)
        {
            return null;
        }
    }

    private static SecurityKey? KeyOf(X509Certificate2 certificate, string? keyId)
    {
        if (certificate.GetECDsaPublicKey() is { } ec) return new ECDsaSecurityKey(ec) { KeyId = keyId };
        if (certificate.GetRSAPublicKey() is { } rsa) return new RsaSecurityKey(rsa) { KeyId = keyId };
        return null;
    }

    /// <summary>The token's claims when every check passes, else null. (Callers cache the answer until expiry.)</summary>
    public async ValueTask<ValidatedToken?> ValidateAsync(string token) =>
        await CheckAsync(token) is { } jwt ? ReadPayload(jwt) : null;

    /// <summary>The token when its signature, algorithm, lifetime, issuer and audience all pass, else null.</summary>
    private async ValueTask<JsonWebToken?> CheckAsync(string token)
    {
        if (token.Length > 16 * 1024) return null;
        var result = await _handler.ValidateTokenAsync(token, _parameters);
        return result.IsValid ? result.SecurityToken as JsonWebToken : null;
    }

    /// <summary>The allowance on exp and nbf.</summary>
    public TimeSpan ClockSkew => _skew;

    /// <summary>Reads <c>sub</c>, <c>access</c> and <c>exp</c>; a refresh token is not an access token.</summary>
    private static ValidatedToken? ReadPayload(JsonWebToken jwt)
    {
        try
        {
            using var document = JsonDocument.Parse(Base64Url.DecodeFromChars(jwt.EncodedPayload));
            var root = document.RootElement;
            if (root.TryGetProperty("token_use", out var use) && use.GetString() != "access") return null;
            var subject = root.TryGetProperty("sub", out var sub) && sub.ValueKind == JsonValueKind.String
                          && sub.GetString() is { Length: > 0 } name ? name : null;
            var grants = new List<TokenGrant>();
            if (root.TryGetProperty("access", out var access) && access.ValueKind == JsonValueKind.Array)
                foreach (var entry in access.EnumerateArray())
                {
                    if (entry.ValueKind != JsonValueKind.Object) continue;
                    var type = entry.TryGetProperty("type", out var t) ? t.GetString() : null;
                    var resource = entry.TryGetProperty("name", out var n) ? n.GetString() : null;
                    if (type is null || resource is null) continue;
                    var actions = entry.TryGetProperty("actions", out var a) && a.ValueKind == JsonValueKind.Array
                        ? a.EnumerateArray().Where(x => x.ValueKind == JsonValueKind.String).Select(x => x.GetString()!).ToList()
                        : [];
                    grants.Add(new TokenGrant(type, resource, actions));
                }
            return new ValidatedToken(subject, jwt.Issuer, grants, jwt.ValidTo);
        }
        catch (Exception e) when (e is JsonException or FormatException or InvalidOperationException)
        {
            return null;
        }
    }

    /// <summary>Validates one of our own refresh tokens; the subject it was issued to, else null.</summary>
    public async ValueTask<string?> ValidateRefreshAsync(string token)
    {
        if (await CheckAsync(token) is not { } jwt) return null;
        using var document = JsonDocument.Parse(Base64Url.DecodeFromChars(jwt.EncodedPayload));
        var root = document.RootElement;
        return root.TryGetProperty("token_use", out var use) && use.GetString() == "refresh"
               && root.TryGetProperty("sub", out var sub) && sub.GetString() is { Length: > 0 } name
            ? name
            : null;
    }

    /// <summary>
    /// The key id registry:2 and docker_auth put in <c>kid</c>: the libtrust fingerprint, base32 of the first 240 bits
    /// of the SHA-256 of the DER public key, in twelve groups of four.
    /// </summary>
    internal static string LibtrustKeyId(X509Certificate2 certificate)
    {
        var hash = SHA256.HashData(certificate.PublicKey.ExportSubjectPublicKeyInfo()).AsSpan(0, 30);
        const string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        var bits = new StringBuilder();
        int buffer = 0, count = 0;
        foreach (var b in hash)
        {
            buffer = (buffer << 8) | b;
            count += 8;
            while (count >= 5)
            {
                bits.Append(alphabet[(buffer >> (count - 5)) & 31]);
                count -= 5;
            }
        }
        var encoded = bits.ToString();
        return string.Join(':', Enumerable.Range(0, encoded.Length / 4).Select(i => encoded.Substring(i * 4, 4)));
    }
}
