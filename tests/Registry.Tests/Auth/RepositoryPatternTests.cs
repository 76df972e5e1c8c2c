using System.Text;
using System.Text.RegularExpressions;
using Registry.Api.Auth;
using Registry.Storage.Model;

namespace Registry.Tests.Auth;

public sealed class RepositoryPatternTests
{
    [Theory]
    [InlineData("team/**", "team/app", true)]
    [InlineData("team/**", "team/a/b", true)]
    [InlineData("team/**", "team", false)]
    [InlineData("team/**", "teams/app", false)]
    [InlineData("team/*", "team/app", true)]
    [InlineData("team/*", "team/a/b", false)]
    [InlineData("**", "anything/at/all", true)]
    [InlineData("*/app", "x/app", true)]
    [InlineData("*/app", "x/y/app", false)]
    [InlineData("ci-*/**", "ci-42/build", true)]
    [InlineData("exact/name", "exact/name", true)]
    [InlineData("exact/name", "exact/names", false)]
    public void A_pattern_matches_as_documented(string pattern, string name, bool matches)
    {
        RepositoryPattern.TryParse(pattern, out var parsed).Should().BeTrue();
        RepositoryName.TryParse(name, out var repository).Should().BeTrue();

        parsed.Matches(repository).Should().Be(matches);
    }

    [Theory]
    [InlineData("")]
    [InlineData("Team/**")]
    [InlineData("team/[a]")]
    [InlineData("team/?")]
    public void Invalid_patterns_are_refused(string pattern) =>
        RepositoryPattern.IsValid(pattern).Should().BeFalse();

    [Fact]
    public void Matching_agrees_with_a_regular_expression_oracle_on_random_inputs()
    {
        var random = new Random(9);
        const string alphabet = "ab/";
        for (var i = 0; i < 20_000; i++)
        {
            var pattern = new StringBuilder();
            for (var k = random.Next(1, 8); k > 0; k--)
                pattern.Append(random.Next(5) switch { 0 => "*", 1 => "**", _ => alphabet[random.Next(2)].ToString() + (random.Next(3) == 0 ? "/" : "") });
            var name = new StringBuilder(alphabet[random.Next(2)].ToString());
            for (var k = random.Next(0, 8); k > 0; k--)
                name.Append(random.Next(4) == 0 && name[^1] != '/' ? '/' : alphabet[random.Next(2)]);
            if (name[^1] == '/') name.Append('a');
            if (!RepositoryName.TryParse(name.ToString(), out var repository)) continue;
            RepositoryPattern.TryParse(pattern.ToString(), out var parsed).Should().BeTrue();
            var oracle = "^" + Regex.Escape(pattern.ToString()).Replace(@"\*\*", "\u0001").Replace(@"\*", "[^/]*").Replace("\u0001", ".*") + "$";

            parsed.Matches(repository).Should().Be(Regex.IsMatch(name.ToString(), oracle), $"{pattern} against {name}");
        }
    }
}
