using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Registry.Storage.Blobs;

/// <summary>
/// Early writeback on Linux: <c>sync_file_range(SYNC_FILE_RANGE_WRITE)</c> asks the kernel to start writing a range
/// without waiting for it, so the disk works while the rest of a blob is still arriving. Elsewhere it does nothing.
/// It is only a hint: durability still comes from the fsync at commit.
/// </summary>
internal static partial class Writeback
{
    private const uint SyncFileRangeWrite = 2;

    public static void Start(SafeFileHandle handle, long offset, long length)
    {
        if (!OperatingSystem.IsLinux()) return;
        var added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            _ = sync_file_range((int)handle.DangerousGetHandle(), offset, length, SyncFileRangeWrite);
        }
        finally
        {
            if (added) handle.DangerousRelease();
        }
    }

    [DllImport("libc", SetLastError = false)]
    private static extern int sync_file_range(int fd, long offset, long nbytes, uint flags);
}
