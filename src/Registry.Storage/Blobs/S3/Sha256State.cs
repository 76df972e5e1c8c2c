using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace Registry.Storage.Blobs.S3;

/// <summary>
/// A SHA-256 (FIPS 180-4) whose running state can be exported and imported: the eight chaining words, the byte
/// count and the bytes of an unfinished 64-byte block. .NET's <see cref="System.Security.Cryptography.IncrementalHash"/>
/// cannot export its state, and an upload session that any replica may continue needs exactly that: the state is
/// stored with the session after each append, so the next append (in another process) hashes only its own bytes.
/// Managed code, so slower than the platform's (OpenSSL, SHA-NI): used only where a hash must resume.
/// </summary>
public sealed class Sha256State
{
    /// <summary>Size of <see cref="Export"/>: 8 words, the byte count, the pending length, 64 pending bytes.</summary>
    public const int ExportedSize = 32 + 8 + 1 + 64;

    private static readonly uint[] K =
    [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
    ];

    private readonly uint[] _h = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
    private readonly byte[] _pending = new byte[64];
    private readonly uint[] _w = new uint[64];
    private int _pendingLength;

    /// <summary>Bytes hashed so far.</summary>
    public long Length { get; private set; }

    public void Append(ReadOnlySpan<byte> data)
    {
        Length += data.Length;
        if (_pendingLength > 0)
        {
            var take = Math.Min(64 - _pendingLength, data.Length);
            data[..take].CopyTo(_pending.AsSpan(_pendingLength));
            _pendingLength += take;
            data = data[take..];
            if (_pendingLength < 64) return;
            Compress(_pending);
            _pendingLength = 0;
        }
        while (data.Length >= 64)
        {
            Compress(data[..64]);
            data = data[64..];
        }
        data.CopyTo(_pending);
        _pendingLength = data.Length;
    }

    /// <summary>The digest of the bytes so far; the state is left as it was (more bytes may follow).</summary>
    public byte[] GetCurrentHash()
    {
        var copy = Import(Export());
        var bitLength = (ulong)copy.Length * 8;
        Span<byte> padding = stackalloc byte[72];
        padding.Clear();
        padding[0] = 0x80;
        var padLength = (int)((copy._pendingLength < 56 ? 56 : 120) - copy._pendingLength);
        BinaryPrimitives.WriteUInt64BigEndian(padding[padLength..], bitLength);
        copy.Append(padding[..(padLength + 8)]);
        var hash = new byte[32];
        for (var i = 0; i < 8; i++) BinaryPrimitives.WriteUInt32BigEndian(hash.AsSpan(i * 4), copy._h[i]);
        return hash;
    }

    public byte[] Export()
    {
        var state = new byte[ExportedSize];
        for (var i = 0; i < 8; i++) BinaryPrimitives.WriteUInt32BigEndian(state.AsSpan(i * 4), _h[i]);
        BinaryPrimitives.WriteInt64BigEndian(state.AsSpan(32), Length);
        state[40] = (byte)_pendingLength;
        _pending.AsSpan(0, _pendingLength).CopyTo(state.AsSpan(41));
        return state;
    }

    /// <summary>Restores an <see cref="Export"/>; throws <see cref="FormatException"/> for anything else.</summary>
    public static Sha256State Import(ReadOnlySpan<byte> state)
    {
        if (state.Length != ExportedSize) throw new FormatException($"a SHA-256 state is {ExportedSize} bytes, not {state.Length}");
        var result = new Sha256State();
        for (var i = 0; i < 8; i++) result._h[i] = BinaryPrimitives.ReadUInt32BigEndian(state[(i * 4)..]);
        result.Length = BinaryPrimitives.ReadInt64BigEndian(state[32..]);
        result._pendingLength = state[40];
        if (result.Length < 0 || result._pendingLength >= 64 || result.Length % 64 != result._pendingLength)
            throw new FormatException("inconsistent SHA-256 state");
        state.Slice(41, result._pendingLength).CopyTo(result._pending);
        return result;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void Compress(ReadOnlySpan<byte> block)
    {
        var w = _w.AsSpan(0, 64);
        for (var i = 0; i < 16; i++) w[i] = BinaryPrimitives.ReadUInt32BigEndian(block[(i * 4)..]);
        for (var i = 16; i < 64; i++)
        {
            var w15 = w[i - 15];
            var w2 = w[i - 2];
            var s0 = uint.RotateRight(w15, 7) ^ uint.RotateRight(w15, 18) ^ (w15 >> 3);
            var s1 = uint.RotateRight(w2, 17) ^ uint.RotateRight(w2, 19) ^ (w2 >> 10);
            w[i] = w[i - 16] + s0 + w[i - 7] + s1;
        }
        uint a = _h[0], b = _h[1], c = _h[2], d = _h[3], e = _h[4], f = _h[5], g = _h[6], h = _h[7];
        var k = K.AsSpan(0, 64);
        for (var i = 0; i < 64; i++)
        {
            var t1 = h + (uint.RotateRight(e, 6) ^ uint.RotateRight(e, 11) ^ uint.RotateRight(e, 25))
                     + ((e & f) ^ (~e & g)) + k[i] + w[i];
            var t2 = (uint.RotateRight(a, 2) ^ uint.RotateRight(a, 13) ^ uint.RotateRight(a, 22))
                     + ((a & b) ^ (a & c) ^ (b & c));
            h = g;
            g = f;
            f = e;
            e = d + t1;
            d = c;
            c = b;
            b = a;
            a = t1 + t2;
        }
        _h[0] += a;
        _h[1] += b;
        _h[2] += c;
        _h[3] += d;
        _h[4] += e;
        _h[5] += f;
        _h[6] += g;
        _h[7] += h;
    }
}
