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
internal readonly record struct RegistryRoute(RouteKind Kind, string Name, string Argument, bool RegistryScope = false)
{
    /// <summary>What a request with <paramref name="method"/> on this route is counted and logged as.</summary>
    public string Operation(string method) => RequestOperations.Of(Kind, method);
}

/// <summary>
/// The names requests are counted and logged under (the <c>operation</c> label of the metrics, a field of the access
/// log). A closed set, never the raw path, whose repository names are unbounded: core routes get theirs from the
/// path parser (<see cref="RegistryRoute.Operation"/>), fixed routes from their endpoint metadata.
/// </summary>
internal static class RequestOperations
{
    public const string Base = "base";
    public const string Catalog = "catalog";
    public const string Extension = "extension";
    public const string Docs = "docs";
    public const string Health = "healthz";
    public const string Ready = "readyz";
    public const string Metrics = "metrics";
    /// <summary>A path that names no endpoint.</summary>
    public const string Unknown = "unknown";
    /// <summary>A known path with a method it does not answer.</summary>
    public const string Unsupported = "unsupported";

    public static string Of(RouteKind kind, string method) => kind switch
    {
        RouteKind.Manifest when HttpMethods.IsGet(method) => "manifest_get",
        RouteKind.Manifest when HttpMethods.IsHead(method) => "manifest_head",
        RouteKind.Manifest when HttpMethods.IsPut(method) => "manifest_put",
        RouteKind.Manifest when HttpMethods.IsDelete(method) => "manifest_delete",
        RouteKind.Blob when HttpMethods.IsGet(method) => "blob_get",
        RouteKind.Blob when HttpMethods.IsHead(method) => "blob_head",
        RouteKind.Blob when HttpMethods.IsDelete(method) => "blob_delete",
        RouteKind.UploadStart when HttpMethods.IsPost(method) => "upload_start",
        RouteKind.Upload when HttpMethods.IsGet(method) => "upload_status",
        RouteKind.Upload when HttpMethods.IsPatch(method) => "upload_patch",
        RouteKind.Upload when HttpMethods.IsPut(method) => "upload_put",
        RouteKind.Upload when HttpMethods.IsDelete(method) => "upload_cancel",
        RouteKind.Tags when HttpMethods.IsGet(method) || HttpMethods.IsHead(method) => "tags_list",
        RouteKind.Referrers when HttpMethods.IsGet(method) || HttpMethods.IsHead(method) => "referrers",
        RouteKind.Extension => Extension,
        _ => Unsupported,
    };
}

/// <summary>Endpoint metadata: the operation name of a fixed route (<see cref="RequestOperations"/>).</summary>
internal sealed record OperationMetadata(string Name);

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
