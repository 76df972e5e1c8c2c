using System.Globalization;

namespace Registry.Api.Configuration.Distribution;

/// <summary>
/// Go's <c>time.ParseDuration</c> syntax, which registry:2 uses for every duration: a sequence of decimal numbers, each
/// with a unit (<c>ns</c>, <c>us</c>/<c>µs</c>, <c>ms</c>, <c>s</c>, <c>m</c>, <c>h</c>), e.g. <c>168h</c>, <c>24h0m0s</c>,
/// <c>1h30m</c>, <c>1.5h</c>, <c>500ms</c>; <c>0</c> alone is zero.
/// </summary>
internal static class GoDuration
{
    public static bool TryParse(string? text, out TimeSpan duration)
    {
        duration = TimeSpan.Zero;
        if (string.IsNullOrWhiteSpace(text)) return false;
        var s = text.Trim();
        var negative = false;
        if (s[0] is '+' or '-')
        {
            negative = s[0] == '-';
            s = s[1..];
        }
        if (s == "0") return true;
        if (s.Length == 0) return false;
        decimal ticks = 0;
        var i = 0;
        while (i < s.Length)
        {
            var start = i;
            while (i < s.Length && (char.IsAsciiDigit(s[i]) || s[i] == '.')) i++;
            if (i == start || !decimal.TryParse(s.AsSpan(start, i - start), NumberStyles.AllowDecimalPoint,
                    CultureInfo.InvariantCulture, out var number))
                return false;
            var unitStart = i;
            while (i < s.Length && !char.IsAsciiDigit(s[i]) && s[i] != '.') i++;
            decimal? perUnit = s[unitStart..i] switch
            {
                "ns" => 0.01m,
                "us" or "µs" or "μs" => 10m,
                "ms" => TimeSpan.TicksPerMillisecond,
                "s" => TimeSpan.TicksPerSecond,
                "m" => TimeSpan.TicksPerMinute,
                "h" => TimeSpan.TicksPerHour,
                _ => null,
            };
            if (perUnit is not { } unit) return false;
            ticks += number * unit;
            if (ticks > TimeSpan.MaxValue.Ticks) return false;
        }
        duration = TimeSpan.FromTicks((long)decimal.Round(ticks) * (negative ? -1 : 1));
        return true;
    }
}
