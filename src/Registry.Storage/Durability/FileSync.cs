using System.Runtime.InteropServices;
using System.Text;

namespace Registry.Storage.Durability;

/// <summary>
/// fsync of folders and of files by path. A rename or a new file is durable only once its folder is fsynced (POSIX:
/// the directory entry is the folder's data); .NET cannot open a folder, so this calls open/fsync directly. On other
/// systems than Linux it does nothing. Grouped rounds of publishes are <see cref="PublishRounds"/>.
/// </summary>
public static class FileSync
{
    private const int ReadOnly = 0;
    // O_DIRECTORY: 0x10000 on x86-64, 0x4000 on arm64.
    private static readonly int Directory = RuntimeInformation.ProcessArchitecture is Architecture.Arm64 ? 0x4000 : 0x10000;
    private const int CloseOnExec = 0x80000;

    /// <summary>An open descriptor of the folder (Linux only), for <see cref="Close"/>; throws when it cannot be opened.</summary>
    internal static int OpenFolder(string folder)
    {
        var fd = open(Encoding.UTF8.GetBytes(folder + "\0"), ReadOnly | Directory | CloseOnExec);
        if (fd < 0) throw new IOException($"cannot open folder {folder} (errno {Marshal.GetLastPInvokeError()})");
        return fd;
    }

    internal static void Close(int fd) => _ = close(fd);

    /// <summary>One fsync of the folder, now, on the calling thread.</summary>
    public static void SyncFolder(string folder)
    {
        if (!OperatingSystem.IsLinux()) return;
        var fd = OpenFolder(folder);
        try
        {
            if (fsync(fd) != 0) throw new IOException($"fsync of folder {folder} failed (errno {Marshal.GetLastPInvokeError()})");
        }
        finally
        {
            _ = close(fd);
        }
    }

    /// <summary>One fsync of a file by path (e.g. SQLite's WAL), now, on the calling thread; a missing file is skipped.</summary>
    public static void SyncFile(string path)
    {
        if (!OperatingSystem.IsLinux()) return;
        var fd = open(Encoding.UTF8.GetBytes(path + "\0"), ReadOnly | CloseOnExec);
        if (fd < 0) return;
        try
        {
            if (fsync(fd) != 0) throw new IOException($"fsync of {path} failed (errno {Marshal.GetLastPInvokeError()})");
        }
        finally
        {
            _ = close(fd);
        }
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int open(byte[] path, int flags);

    [DllImport("libc", SetLastError = true)]
    private static extern int fsync(int fd);

    [DllImport("libc", SetLastError = false)]
    private static extern int close(int fd);
}
