using System.Text;
using System.Text.RegularExpressions;
using Registry.Api.Extensions.Framework;
using Registry.Api.Http;
using Registry.Api.Manifests;
using Registry.Storage.Model;

namespace Registry.Tests.Parsing;

/// <summary>
/// Property tests: every parser is fed many random inputs (fixed seeds, so a failure reproduces) and compared with the
/// spec's regular expression as an oracle; none may throw.
/// </summary>
public class ParserPropertyTests
{
    private const int Iterations = 20_000;

    private static readonly Regex NameOracle = new(
        @"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$", RegexOptions.CultureInvariant);
    private static readonly Regex TagOracle = new(@"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$", RegexOptions.CultureInvariant);
    private static readonly Regex DigestOracle = new(@"^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$", RegexOptions.CultureInvariant);
    private static readonly Regex RangeOracle = new(@"^(bytes[ =])?([0-9]+)-([0-9]+)(/([0-9]+|\*))?$", RegexOptions.CultureInvariant);
    private static readonly Regex SegmentOracle = new(@"^[a-z0-9]+([._-][a-z0-9]+)*$", RegexOptions.CultureInvariant);

    /// <summary>Random strings biased towards the characters that matter to the grammar under test.</summary>
    private static string RandomString(Random random, string alphabet, int maxLength)
    {
        var length = random.Next(maxLength + 1);
        var builder = new StringBuilder(length);
        for (var i = 0; i < length; i++)
            builder.Append(random.Next(20) == 0 ? (char)random.Next(0, 0x250) : alphabet[random.Next(alphabet.Length)]);
        return builder.ToString();
    }

    [Fact]
    public void Repository_names_are_accepted_exactly_when_the_spec_grammar_matches()
    {
        var random = new Random(1);
        for (var i = 0; i < Iterations; i++)
        {
            var value = RandomString(random, "ab09._-/_%\\.A", random.Next(2) == 0 ? 12 : 300);
            var expected = value.Length <= 255 && NameOracle.IsMatch(value);
            RepositoryName.TryParse(value, out var name).Should().Be(expected, $"for '{value}'");
            if (expected) name.Value.Should().Be(value);
        }
    }

    [Fact]
    public void Tags_are_accepted_exactly_when_the_spec_grammar_matches()
    {
        var random = new Random(2);
        for (var i = 0; i < Iterations; i++)
        {
            var value = RandomString(random, "aZ09._-:/", random.Next(2) == 0 ? 10 : 140);
            Tag.TryParse(value, out _).Should().Be(TagOracle.IsMatch(value), $"for '{value}'");
        }
    }

    [Fact]
    public void Digests_are_accepted_exactly_when_supported_and_well_formed()
    {
        var random = new Random(3);
        for (var i = 0; i < Iterations; i++)
        {
            var prefix = random.Next(4) switch { 0 => "sha256:", 1 => "sha512:", 2 => "SHA256:", _ => RandomString(random, "sha2561:", 8) };
            var hexLength = random.Next(3) switch { 0 => 64, 1 => 128, _ => random.Next(130) };
            var value = prefix + RandomString(random, "0123456789abcdefABCDEF", hexLength);
            var accepted = Digest.TryParse(value, out var digest);
            accepted.Should().Be(DigestOracle.IsMatch(value), $"for '{value}'");
            if (accepted) digest.ToString().Should().Be(value);
        }
    }

    [Fact]
    public void References_are_a_digest_when_they_hold_a_colon_and_a_tag_otherwise()
    {
        var random = new Random(4);
        for (var i = 0; i < Iterations; i++)
        {
            var value = RandomString(random, "aZ09._-:", 70);
            var expected = value.Contains(':') ? DigestOracle.IsMatch(value) : TagOracle.IsMatch(value);
            Reference.TryParse(value, out var reference).Should().Be(expected, $"for '{value}'");
            if (expected) reference.ToString().Should().Be(value);
        }
    }

    [Fact]
    public void Content_ranges_parse_exactly_the_well_formed_ordered_ones()
    {
        var random = new Random(5);
        for (var i = 0; i < Iterations; i++)
        {
            var value = random.Next(3) == 0
                ? $"{random.NextInt64(-5, long.MaxValue)}-{random.NextInt64(-5, long.MaxValue)}"
                : RandomString(random, "0123456789-/ bytes=*", 24);
            // Whitespace around a header value is not part of it (RFC 9110 field values).
            var match = RangeOracle.Match(value.Trim(' ', '\t'));
            var expected = match.Success
                && long.TryParse(match.Groups[2].Value, out var start) && long.TryParse(match.Groups[3].Value, out var end)
                && end >= start && end < long.MaxValue
                && (!match.Groups[5].Success || match.Groups[5].Value == "*" || long.TryParse(match.Groups[5].Value, out _));
            ContentRange.TryParse(value, out var range).Should().Be(expected, $"for '{value}'");
            if (expected) range.Length.Should().BePositive();
        }
    }

    [Fact]
    public void Extension_segments_follow_the_extension_grammar()
    {
        var random = new Random(6);
        for (var i = 0; i < Iterations; i++)
        {
            var value = RandomString(random, "az09._-A", 10);
            ExtensionRouter.IsSegment(value).Should().Be(SegmentOracle.IsMatch(value), $"for '{value}'");
        }
    }

    [Fact]
    public void Every_route_is_an_exact_split_of_its_path()
    {
        var random = new Random(7);
        for (var i = 0; i < Iterations; i++)
        {
            var value = RandomString(random, "a/_.-:", 3) + string.Join('/', Enumerable.Range(0, random.Next(6))
                .Select(_ => new[] { "a", "b", "manifests", "blobs", "uploads", "tags", "list", "referrers", "_oci", "", "sha256:1" }[random.Next(11)]));
            var route = RegistryPath.Parse(value);
            if (route is null) continue;
            var rebuilt = route.Value.Kind switch
            {
                RouteKind.Manifest => $"{route.Value.Name}/manifests/{route.Value.Argument}",
                RouteKind.Blob => $"{route.Value.Name}/blobs/{route.Value.Argument}",
                RouteKind.Upload => $"{route.Value.Name}/blobs/uploads/{route.Value.Argument}",
                RouteKind.Tags => $"{route.Value.Name}/tags/list",
                RouteKind.Referrers => $"{route.Value.Name}/referrers/{route.Value.Argument}",
                RouteKind.Extension => route.Value.RegistryScope ? route.Value.Argument : $"{route.Value.Name}/{route.Value.Argument}",
                _ => null,
            };
            if (rebuilt is not null) rebuilt.Should().Be(value);
        }
    }

    [Fact]
    public void The_manifest_parser_never_throws_on_mutated_manifests()
    {
        var random = new Random(8);
        var valid = Encoding.UTF8.GetBytes("""
            {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"a/b",
             "config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},
             "layers":[{"mediaType":"application/octet-stream","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2}],
             "subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},
             "annotations":{"k":"v"}}
            """);
        ManifestParser.Parse(valid, null, out _).Should().NotBeNull();
        var interesting = "{}[]\",:0-9e.\\ntrue".ToCharArray();
        for (var i = 0; i < Iterations; i++)
        {
            var mutated = (byte[])valid.Clone();
            for (var m = random.Next(1, 4); m > 0; m--)
                mutated[random.Next(mutated.Length)] = random.Next(3) == 0
                    ? (byte)random.Next(256)
                    : (byte)interesting[random.Next(interesting.Length)];
            var parsed = ManifestParser.Parse(mutated, random.Next(2) == 0 ? null : MediaTypes.OciManifest, out var error);
            (parsed is null).Should().Be(error is not null);
        }
    }
}
