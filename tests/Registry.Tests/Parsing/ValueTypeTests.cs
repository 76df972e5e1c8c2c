using Registry.Api.Http;
using Registry.Storage.Model;

namespace Registry.Tests.Parsing;

public class DigestTests
{
    private const string Hex64 = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    [Fact]
    public void Parses_sha256_and_sha512()
    {
        Digest.TryParse($"sha256:{Hex64}", out var d256).Should().BeTrue();
        d256.Algorithm.Should().Be(DigestAlgorithm.Sha256);
        Digest.TryParse($"sha512:{Hex64}{Hex64}", out var d512).Should().BeTrue();
        d512.ToString().Should().Be($"sha512:{Hex64}{Hex64}");
    }

    [Theory]
    [InlineData("sha256:2CF24DBA5FB0A30E26E83B2AC5B9E29E1B161E5C1FA7425E73043362938B9824")]
    [InlineData("sha256:2cf24dba")]
    [InlineData("sha256:" + Hex64 + "0")]
    [InlineData("md5:d41d8cd98f00b204e9800998ecf8427e")]
    [InlineData("sha256:../../../../etc/passwd")]
    [InlineData("sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b982/")]
    [InlineData(":" + Hex64)]
    [InlineData("sha256" + Hex64)]
    [InlineData("")]
    public void Rejects_wrong_case_length_algorithm_and_path_characters(string value)
    {
        Digest.TryParse(value, out _).Should().BeFalse();
    }

    [Fact]
    public void Compute_matches_the_well_known_digest_of_the_empty_json_object()
    {
        Digest.Compute(DigestAlgorithm.Sha256, "{}"u8).ToString()
            .Should().Be("sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
    }
}

public class RepositoryNameTests
{
    [Theory]
    [InlineData("a")]
    [InlineData("library/alpine")]
    [InlineData("a0/b-c/d__e/f.g/h---i/j_k")]
    [InlineData("manifests/blobs/uploads")]
    public void Accepts_the_spec_grammar(string value)
    {
        RepositoryName.TryParse(value, out var name).Should().BeTrue();
        name.Value.Should().Be(value);
    }

    [Theory]
    [InlineData("")]
    [InlineData("A")]
    [InlineData("a//b")]
    [InlineData("/a")]
    [InlineData("a/")]
    [InlineData("..")]
    [InlineData("a/../b")]
    [InlineData("a/./b")]
    [InlineData("a\\b")]
    [InlineData("a%2fb")]
    [InlineData("a\0b")]
    [InlineData("_oci")]
    [InlineData("a/_registry")]
    [InlineData("a___b")]
    [InlineData("a.")]
    [InlineData("-a")]
    [InlineData("a..b")]
    public void Rejects_anything_else(string value)
    {
        RepositoryName.TryParse(value, out _).Should().BeFalse();
    }

    [Fact]
    public void Limits_names_to_255_characters()
    {
        RepositoryName.TryParse(new string('a', 255), out _).Should().BeTrue();
        RepositoryName.TryParse(new string('a', 256), out _).Should().BeFalse();
    }
}

public class TagTests
{
    [Theory]
    [InlineData("latest")]
    [InlineData("_x")]
    [InlineData("v1.2.3-rc_1")]
    [InlineData("A")]
    public void Accepts_the_spec_grammar(string value) => Tag.TryParse(value, out _).Should().BeTrue();

    [Theory]
    [InlineData("")]
    [InlineData(".x")]
    [InlineData("-x")]
    [InlineData("a/b")]
    [InlineData("a:b")]
    [InlineData("..")]
    public void Rejects_anything_else(string value) => Tag.TryParse(value, out _).Should().BeFalse();

    [Fact]
    public void Limits_tags_to_128_characters()
    {
        Tag.TryParse(new string('a', 128), out _).Should().BeTrue();
        Tag.TryParse(new string('a', 129), out _).Should().BeFalse();
    }
}

public class UploadIdTests
{
    [Theory]
    [InlineData("../../../../etc/passwd0000000000")]
    [InlineData("0123456789ABCDEF0123456789abcdef")]
    [InlineData("0123456789abcdef")]
    [InlineData("")]
    public void Rejects_anything_but_32_lowercase_hex(string value) => UploadId.TryParse(value, out _).Should().BeFalse();

    [Fact]
    public void New_ids_parse() => UploadId.TryParse(UploadId.New().Value, out _).Should().BeTrue();
}

public class ContentRangeTests
{
    [Theory]
    [InlineData("0-99", 0, 99)]
    [InlineData("100-100", 100, 100)]
    [InlineData("bytes 5-9", 5, 9)]
    [InlineData("bytes=5-9", 5, 9)]
    [InlineData("bytes 5-9/*", 5, 9)]
    [InlineData("5-9/100", 5, 9)]
    public void Parses_the_forms_clients_send(string value, long start, long end)
    {
        ContentRange.TryParse(value, out var range).Should().BeTrue();
        range.Should().Be(new ContentRange(start, end));
    }

    [Theory]
    [InlineData("")]
    [InlineData("garbage")]
    [InlineData("9-5")]
    [InlineData("-5")]
    [InlineData("5-")]
    [InlineData("1-99999999999999999999999")]
    [InlineData("0-9223372036854775807")]
    [InlineData("+1-5")]
    [InlineData("1 -5")]
    [InlineData("bytes5-9")]
    [InlineData("5-9/x")]
    public void Rejects_garbage_and_overflow(string value) => ContentRange.TryParse(value, out _).Should().BeFalse();
}
