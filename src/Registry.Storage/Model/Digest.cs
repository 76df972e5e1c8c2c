using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;

namespace Registry.Storage.Model;

/// <summary>Digest algorithms this registry can verify.</summary>
public enum DigestAlgorithm
{
    Sha256,
    Sha512,
}

/// <summary>
/// A content digest <c>algorithm:encoded</c> (spec: opencontainers/image-spec descriptor.md#digests). Only sha256 and
/// sha512 are accepted, with lowercase hex of the exact length, so a digest is also safe to use as a path segment.
/// </summary>
public readonly record struct Digest
{
    private Digest(DigestAlgorithm algorithm, string hex)
    {
        Algorithm = algorithm;
        Hex = hex;
    }

    public DigestAlgorithm Algorithm { get; }

    /// <summary>The encoded part: lowercase hex, 64 (sha256) or 128 (sha512) characters.</summary>
    public string Hex { get; }

    public string AlgorithmName => NameOf(Algorithm);

    public override string ToString() => $"{AlgorithmName}:{Hex}";

    public static string NameOf(DigestAlgorithm algorithm) => algorithm == DigestAlgorithm.Sha256 ? "sha256" : "sha512";

    public static int HexLength(DigestAlgorithm algorithm) => algorithm == DigestAlgorithm.Sha256 ? 64 : 128;

    public static bool TryParse([NotNullWhen(true)] string? value, out Digest digest)
    {
        digest = default;
        if (value is null) return false;
        var colon = value.IndexOf(':');
        if (colon <= 0) return false;
        var algorithm = value.AsSpan(0, colon);
        DigestAlgorithm alg;
        if (algorithm.SequenceEqual("sha256")) alg = DigestAlgorithm.Sha256;
        else if (algorithm.SequenceEqual("sha512")) alg = DigestAlgorithm.Sha512;
        else return false;
        var hex = value.AsSpan(colon + 1);
        if (hex.Length != HexLength(alg)) return false;
        foreach (var c in hex)
            if (!char.IsAsciiDigit(c) && c is not (>= 'a' and <= 'f')) return false;
        digest = new Digest(alg, hex.ToString());
        return true;
    }

    public static Digest Parse(string value) =>
        TryParse(value, out var digest) ? digest : throw new FormatException($"invalid digest '{value}'");

    /// <summary>True when <paramref name="value"/> has the general digest grammar but an algorithm we do not support.</summary>
    public static bool IsWellFormedButUnsupported(string value)
    {
        var colon = value.IndexOf(':');
        if (colon <= 0 || colon == value.Length - 1) return false;
        foreach (var c in value.AsSpan(0, colon))
            if (!char.IsAsciiLetterLower(c) && !char.IsAsciiDigit(c) && c is not ('.' or '+' or '_' or '-')) return false;
        foreach (var c in value.AsSpan(colon + 1))
            if (!char.IsAsciiLetterOrDigit(c) && c is not ('=' or '_' or '-')) return false;
        return !TryParse(value, out _);
    }

    public static Digest Compute(DigestAlgorithm algorithm, ReadOnlySpan<byte> content)
    {
        Span<byte> hash = stackalloc byte[64];
        var written = algorithm == DigestAlgorithm.Sha256
            ? SHA256.HashData(content, hash)
            : SHA512.HashData(content, hash);
        return FromHash(algorithm, hash[..written]);
    }

    public static Digest FromHash(DigestAlgorithm algorithm, ReadOnlySpan<byte> hash) =>
        new(algorithm, Convert.ToHexStringLower(hash));

    public static HashAlgorithmName HashName(DigestAlgorithm algorithm) =>
        algorithm == DigestAlgorithm.Sha256 ? HashAlgorithmName.SHA256 : HashAlgorithmName.SHA512;
}
