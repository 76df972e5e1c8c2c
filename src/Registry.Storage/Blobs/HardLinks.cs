using System.Runtime.InteropServices;

namespace Registry.Storage.Blobs;

/// <summary>link(2) and fsync(2) of a directory, which .NET does not expose: the import shares registry:2's blob files instead of copying them.</summary>
internal static partial class HardLinks
{
    private const int Eexist = 17;
    private const int Exdev = 18;
    private const int Eperm = 1;
    private const int Enotsup = 95;

    public enum Outcome
    {
        Linked,
        /// <summary>Something already exists at the target.</summary>
        Exists,
        /// <summary>The two paths are on different filesystems (or the filesystem has no hard links): copy instead.</summary>
        NotPossible,
    }

    [LibraryImport("libc", EntryPoint = "link", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int NativeLink(string existing, string created);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int NativeFsync(int fd);

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int NativeOpen(string path, int flags);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int NativeClose(int fd);

    public static Outcome Link(string existing, string created)
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS() && !OperatingSystem.IsFreeBSD())
            return Outcome.NotPossible;
        if (NativeLink(existing, created) == 0) return Outcome.Linked;
        var errno = Marshal.GetLastPInvokeError();
        return errno switch
        {
            Eexist => Outcome.Exists,
            Exdev or Eperm or Enotsup => Outcome.NotPossible,
            _ => throw new IOException($"link({existing}, {created}) failed: errno {errno}", errno),
        };
    }

    /// <summary>Makes the entries of a directory (files linked or renamed into it) durable: fsync(2) on the directory.</summary>
    public static void FlushDirectory(string path)
    {
        if (!OperatingSystem.IsLinux()) return;
        // O_RDONLY: a directory can be opened for reading, and fsync on it flushes its entries.
        var fd = NativeOpen(path, 0);
        if (fd < 0) throw new IOException($"open({path}) failed: errno {Marshal.GetLastPInvokeError()}");
        try
        {
            if (NativeFsync(fd) != 0) throw new IOException($"fsync({path}) failed: errno {Marshal.GetLastPInvokeError()}");
        }
        finally
        {
            NativeClose(fd);
        }
    }
}
