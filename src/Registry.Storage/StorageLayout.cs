using Registry.Storage.Model;

namespace Registry.Storage;

/// <summary>
/// The one owner of the on-disk layout. Every path is built here, from parsed value types only, so no input can
/// name a path outside the root.
/// <code>
/// &lt;root&gt;/
///   metadata.db                     SQLite (WAL): repositories, tags, manifests, blob links, referrers, uploads
///   blobs/sha256/&lt;2 hex&gt;/&lt;hex&gt;      content, immutable, named by its digest (layers, configs, manifests)
///   blobs/sha512/&lt;2 hex&gt;/&lt;hex&gt;
///   uploads/&lt;upload id&gt;              bytes received so far for one upload session
///   tmp/                            manifests being published (written, flushed, then renamed into blobs/)
///   import-in-progress              a registry:2 import not finished yet (holds its source folder)
///   docker/registry/v2/             a registry:2 storage imported in place (read only; its blobs are hard-linked into blobs/)
///   registry.lock                   held (shared) by every server on this storage; the offline `gc` needs it alone
/// </code>
/// </summary>
public sealed class StorageLayout
{
    public StorageLayout(string root)
    {
        Root = Path.GetFullPath(root);
        BlobsRoot = Path.Combine(Root, "blobs");
        UploadsRoot = Path.Combine(Root, "uploads");
        TempRoot = Path.Combine(Root, "tmp");
        DatabasePath = Path.Combine(Root, "metadata.db");
        ImportMarkerPath = Path.Combine(Root, "import-in-progress");
        LockPath = Path.Combine(Root, "registry.lock");
    }

    public string Root { get; }
    public string BlobsRoot { get; }
    public string UploadsRoot { get; }
    public string TempRoot { get; }
    public string DatabasePath { get; }
    public string ImportMarkerPath { get; }
    public string LockPath { get; }

    /// <summary>
    /// Locks the storage: shared by every server on it, exclusive for an offline garbage collection. Null when the
    /// other kind is held (a server runs, or an offline collection does). Dispose to release.
    /// </summary>
    public FileStream? TryLock(bool exclusive)
    {
        if (!File.Exists(LockPath)) File.WriteAllBytes(LockPath, []);
        try
        {
            // .NET on Unix: FileShare.None takes flock(LOCK_EX), a shared read takes flock(LOCK_SH).
            return new FileStream(LockPath, FileMode.Open, FileAccess.Read, exclusive ? FileShare.None : FileShare.ReadWrite);
        }
        catch (IOException)
        {
            return null;
        }
    }

    public string BlobPath(Digest digest) =>
        Path.Combine(BlobsRoot, digest.AlgorithmName, digest.Hex[..2], digest.Hex);

    public string UploadPath(UploadId id) => Path.Combine(UploadsRoot, id.Value);

    public string NewTempPath() => Path.Combine(TempRoot, Guid.NewGuid().ToString("N"));

    /// <summary>Creates the folders.</summary>
    public void Initialise()
    {
        Directory.CreateDirectory(BlobsRoot);
        Directory.CreateDirectory(UploadsRoot);
        Directory.CreateDirectory(TempRoot);
    }

    /// <summary>Empties tmp/, which only ever holds writes that never completed. Only the server, at start-up.</summary>
    public void ClearTemp()
    {
        foreach (var file in Directory.EnumerateFiles(TempRoot)) File.Delete(file);
    }
}
