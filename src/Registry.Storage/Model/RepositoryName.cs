using System.Diagnostics.CodeAnalysis;

namespace Registry.Storage.Model;

/// <summary>
/// A repository name (spec: distribution-spec spec.md#pulling-manifests, <c>&lt;name&gt;</c>): path components of
/// <c>[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*</c> joined by <c>/</c>, at most 255 characters. A valid name can never hold
/// <c>..</c>, a backslash, an empty component or a component starting with <c>_</c>, so it is safe as a path and can
/// never collide with the extension namespace.
/// </summary>
public readonly record struct RepositoryName
{
    public const int MaxLength = 255;

    private RepositoryName(string value) => Value = value;

    public string Value { get; }

    public override string ToString() => Value;

    public static bool TryParse([NotNullWhen(true)] string? value, out RepositoryName name)
    {
        name = default;
        if (string.IsNullOrEmpty(value) || value.Length > MaxLength) return false;
        foreach (var range in value.AsSpan().Split('/'))
            if (!IsComponent(value.AsSpan(range))) return false;
        name = new RepositoryName(value);
        return true;
    }

    /// <summary><c>[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*</c></summary>
    internal static bool IsComponent(ReadOnlySpan<char> s)
    {
        var i = 0;
        if (!AlphaNumRun(s, ref i)) return false;
        while (i < s.Length)
        {
            var c = s[i];
            if (c == '.') i++;
            else if (c == '_') i += i + 1 < s.Length && s[i + 1] == '_' ? 2 : 1;
            else if (c == '-') while (i < s.Length && s[i] == '-') i++;
            else return false;
            if (!AlphaNumRun(s, ref i)) return false;
        }
        return true;
    }

    private static bool AlphaNumRun(ReadOnlySpan<char> s, ref int i)
    {
        var start = i;
        while (i < s.Length && (char.IsAsciiLetterLower(s[i]) || char.IsAsciiDigit(s[i]))) i++;
        return i > start;
    }
}
