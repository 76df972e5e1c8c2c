namespace Registry.Api.Http;

internal enum RouteKind
{
    Manifest,
    Blob,
    UploadStart,
    Upload,
    Tags,
    Referrers,
    Extension,
}

/// <summary>
/// A parsed path below <c>/v2/</c>. <see cref="Name"/> is the raw repository name, not yet validated (empty, and
/// <see cref="RegistryScope"/> true, for registry-level extensions); <see cref="Argument"/> is the reference, digest, upload id or, for extensions, the
/// path from the first <c>_</c> segment on.
/// </summary>
internal readonly record struct RegistryRoute(RouteKind Kind, string Name, string Argument, bool RegistryScope = false);

/// <summary>
/// The one parser of <c>/v2/&lt;name&gt;/&lt;kind&gt;/&lt;arg&gt;</c>. Names contain slashes and may even contain a component
/// called <c>manifests</c> or <c>blobs</c>, so the kind is read from the end. A segment starting with <c>_</c> can
/// never be part of a repository name, which is what makes it safe to reserve for extensions:
/// <c>/v2/_ext/component/module</c> (registry scope) and <c>/v2/&lt;name&gt;/_ext/component/module</c> (repository scope).
/// </summary>
internal static class RegistryPath
{
    /// <param name="path">The path after <c>/v2/</c>, still percent-encoded where ASP.NET keeps it so (<c>%2F</c>).</param>
    public static RegistryRoute? Parse(string path)
    {
        var segments = path.Split('/');
        var firstReserved = Array.FindIndex(segments, s => s.StartsWith('_'));
        if (MatchCore(segments) is { } core && (firstReserved < 0 || firstReserved >= core.NameSegments))
            return core.Route;
        if (firstReserved >= 0)
            return new RegistryRoute(RouteKind.Extension, string.Join('/', segments[..firstReserved]),
                string.Join('/', segments[firstReserved..]), RegistryScope: firstReserved == 0);
        return null;
    }

    private static (RegistryRoute Route, int NameSegments)? MatchCore(string[] s)
    {
        var n = s.Length;
        if (n >= 4 && s[n - 3] == "blobs" && s[n - 2] == "uploads")
            return s[n - 1].Length == 0
                ? Core(RouteKind.UploadStart, s, n - 3, "")
                : Core(RouteKind.Upload, s, n - 3, s[n - 1]);
        if (n >= 3 && s[n - 2] == "blobs" && s[n - 1] == "uploads")
            return Core(RouteKind.UploadStart, s, n - 2, "");
        if (n >= 3 && s[n - 2] == "tags" && s[n - 1] == "list")
            return Core(RouteKind.Tags, s, n - 2, "");
        if (n >= 3 && s[n - 1].Length > 0)
        {
            var kind = s[n - 2] switch
            {
                "manifests" => RouteKind.Manifest,
                "blobs" => RouteKind.Blob,
                "referrers" => RouteKind.Referrers,
                _ => (RouteKind?)null,
            };
            if (kind is { } k) return Core(k, s, n - 2, s[n - 1]);
        }
        return null;
    }

    private static (RegistryRoute, int) Core(RouteKind kind, string[] segments, int nameSegments, string argument) =>
        (new RegistryRoute(kind, string.Join('/', segments[..nameSegments]), argument), nameSegments);
}
