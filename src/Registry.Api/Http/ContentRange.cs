using System.Globalization;

namespace Registry.Api.Http;

/// <summary>
/// The <c>Content-Range</c> of a chunk upload (spec: spec.md#pushing-a-blob-in-chunks): <c>&lt;start&gt;-&lt;end&gt;</c>,
/// inclusive. The <c>bytes </c> / <c>bytes=</c> prefix and a <c>/&lt;total&gt;</c> suffix that some clients send are
/// accepted too.
/// </summary>
internal readonly record struct ContentRange(long Start, long End)
{
    public long Length => End - Start + 1;

    public static bool TryParse(string? value, out ContentRange range)
    {
        range = default;
        if (string.IsNullOrWhiteSpace(value)) return false;
        var s = value.AsSpan().Trim(" \t");
        if (s.StartsWith("bytes", StringComparison.Ordinal))
        {
            s = s[5..];
            if (s.Length == 0 || s[0] is not (' ' or '=')) return false;
            s = s[1..];
        }
        var slash = s.IndexOf('/');
        if (slash >= 0)
        {
            var total = s[(slash + 1)..];
            if (total is not "*" && !long.TryParse(total, NumberStyles.None, CultureInfo.InvariantCulture, out _))
                return false;
            s = s[..slash];
        }
        var dash = s.IndexOf('-');
        if (dash <= 0) return false;
        if (!long.TryParse(s[..dash], NumberStyles.None, CultureInfo.InvariantCulture, out var start)
            || !long.TryParse(s[(dash + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var end)
            || end < start || end == long.MaxValue)
            return false;
        range = new ContentRange(start, end);
        return true;
    }
}
