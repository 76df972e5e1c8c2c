using System.Data.Common;
using Registry.Storage.Model;

namespace Registry.Storage.Metadata;

/// <summary>The manifest columns both SQL stores select (table alias <c>m</c>), and the record a row of them makes.</summary>
internal static class ManifestRows
{
    public const string Columns = "m.digest, m.media_type, m.size, m.artifact_type, m.subject, m.annotations, m.pushed_at";

    public static ManifestRecord Read(DbDataReader reader) => new(
        Digest.Parse(reader.GetString(0)),
        reader.GetString(1),
        reader.GetInt64(2),
        reader.IsDBNull(3) ? null : reader.GetString(3),
        reader.IsDBNull(4) ? null : Digest.Parse(reader.GetString(4)),
        reader.IsDBNull(5) ? null : reader.GetString(5),
        DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(6)));
}
