using System.Buffers;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;

namespace Registry.Api.Auth;

/// <summary>A cache key for a secret (an Authorization header, a password, a token) that is not the secret itself.</summary>
internal readonly record struct SecretHash(ulong A, ulong B, ulong C, ulong D);

/// <summary>
/// HMAC-SHA256 under a key that lives only in this process, so a cache of verified credentials holds no password or
/// token and its keys are useless outside it. One HMAC context per thread, reused: no per-call set-up.
/// </summary>
internal static class SecretHasher
{
    private static readonly byte[] Key = RandomNumberGenerator.GetBytes(32);

    [ThreadStatic] private static IncrementalHash? _hmac;

    public static SecretHash Of(string secret)
    {
        var hmac = _hmac ??= IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, Key);
        var length = Encoding.UTF8.GetMaxByteCount(secret.Length);
        byte[]? rented = null;
        var buffer = length <= 2048 ? stackalloc byte[length] : (rented = ArrayPool<byte>.Shared.Rent(length));
        try
        {
            hmac.AppendData(buffer[..Encoding.UTF8.GetBytes(secret, buffer)]);
            Span<byte> hash = stackalloc byte[32];
            hmac.GetHashAndReset(hash);
            var words = MemoryMarshal.Cast<byte, ulong>(hash);
            return new SecretHash(words[0], words[1], words[2], words[3]);
        }
        finally
        {
            if (rented is not null) ArrayPool<byte>.Shared.Return(rented, clearArray: true);
        }
    }
}
