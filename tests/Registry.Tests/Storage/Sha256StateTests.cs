using System.Security.Cryptography;
using Registry.Storage.Blobs.S3;

namespace Registry.Tests.Storage;

public sealed class Sha256StateTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(55)]
    [InlineData(56)]
    [InlineData(63)]
    [InlineData(64)]
    [InlineData(65)]
    [InlineData(119)]
    [InlineData(120)]
    [InlineData(1_000_003)]
    public void Hashes_any_length_as_the_platform_does(int length)
    {
        var data = RandomNumberGenerator.GetBytes(length);
        var state = new Sha256State();

        state.Append(data);

        state.GetCurrentHash().Should().Equal(SHA256.HashData(data));
    }

    [Fact]
    public void Hashes_the_standard_test_vectors()
    {
        var abc = new Sha256State();
        abc.Append("abc"u8);
        var twoBlocks = new Sha256State();
        twoBlocks.Append("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"u8);

        Convert.ToHexStringLower(abc.GetCurrentHash()).Should().Be("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        Convert.ToHexStringLower(twoBlocks.GetCurrentHash()).Should().Be("248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    }

    [Fact]
    public void Random_splits_exported_and_imported_at_every_cut_hash_as_one_call_does()
    {
        // Property-style: 300 seeds, each a random length cut at random points, the state carried across each cut
        // through Export/Import (as a session carries it from one replica to the next).
        for (var seed = 0; seed < 300; seed++)
        {
            var random = new Random(seed);
            var data = new byte[random.Next(0, seed < 280 ? 5_000 : 300_000)];
            random.NextBytes(data);
            var state = new Sha256State();
            var position = 0;
            while (position < data.Length)
            {
                var take = Math.Min(data.Length - position, random.Next(0, random.Next(2) == 0 ? 70 : 10_000));
                state.Append(data.AsSpan(position, take));
                position += take;
                if (random.Next(3) == 0) state = Sha256State.Import(state.Export());
            }

            state.Length.Should().Be(data.Length, $"seed {seed}");
            state.GetCurrentHash().Should().Equal(SHA256.HashData(data), $"seed {seed}, {data.Length} bytes");
        }
    }

    [Fact]
    public void Reading_the_hash_leaves_the_state_able_to_continue()
    {
        var state = new Sha256State();
        state.Append("hello "u8);
        _ = state.GetCurrentHash();

        state.Append("world"u8);

        state.GetCurrentHash().Should().Equal(SHA256.HashData("hello world"u8));
    }

    [Fact]
    public void An_inconsistent_exported_state_is_refused()
    {
        var state = new Sha256State();
        state.Append(new byte[70]);
        var exported = state.Export();
        exported[40] = 3;

        var import = () => Sha256State.Import(exported);

        import.Should().Throw<FormatException>();
        ((Action)(() => Sha256State.Import(new byte[10]))).Should().Throw<FormatException>();
    }
}
