using Microsoft.Data.Sqlite;

namespace Registry.Storage;

/// <summary>
/// The one decision of what a full storage is. Only a full disk (ENOSPC), an exhausted quota (EDQUOT) or a full
/// database (SQLITE_FULL) is reported as "storage full"; any other I/O error (a permission problem, a file where a
/// folder belongs, a failing device) is a fault the operator must see, not a reason to ask the client for less data.
/// </summary>
public static class StorageErrors
{
    private const int Enospc = 28;
    private const int Edquot = 122;
    private const int SqliteFull = 13;

    public static bool IsDiskFull(Exception e) => e switch
    {
        SqliteException sqlite => sqlite.SqliteErrorCode == SqliteFull,
        // .NET on Unix puts the errno in the low bits of HResult for the IOExceptions it raises itself.
        IOException io => (io.HResult & 0xFFFF) is Enospc or Edquot
                          || io.Message.Contains("No space left", StringComparison.OrdinalIgnoreCase)
                          || io.Message.Contains("Disk quota exceeded", StringComparison.OrdinalIgnoreCase),
        _ => false,
    };
}
