using Registry.Storage.Blobs;
using Registry.Storage.Metadata;
using Registry.Storage.Model;

namespace Registry.Storage.Import;

/// <summary>What the importer needs of a manifest; null with a reason when it is not one this registry serves.</summary>
public sealed record InspectedManifest(string MediaType, string? ArtifactType, Digest? Subject, string? AnnotationsJson,
    IReadOnlyList<ManifestReference> References);

public delegate InspectedManifest? ManifestInspector(ReadOnlyMemory<byte> bytes, out string? reason);

/// <summary>
/// What an import did. <see cref="Problems"/> (corrupt content, a full disk) mean the import is not complete;
/// <see cref="Notes"/> are things of the source that were left out on purpose (schema 1 manifests, dangling links,
/// unfinished uploads).
/// </summary>
public sealed record DistributionImportReport(
    int Repositories, int AlreadyImported, int Manifests, int Tags, int BlobLinks,
    int BlobsLinked, long BytesLinked, int BlobsCopied, long BytesCopied, int BlobsAlreadyStored,
    IReadOnlyList<string> Problems, IReadOnlyList<string> Notes)
{
    public bool Complete => Problems.Count == 0;

    public string Summary =>
        $"{Repositories} repositories imported ({AlreadyImported} already imported before), {Manifests} manifests, " +
        $"{Tags} tags, {BlobLinks} blob links; blobs: {BlobsLinked} hard-linked ({BytesLinked} bytes, no extra disk), " +
        $"{BlobsCopied} copied ({BytesCopied} bytes{(BlobsCopied > 0 ? ", the source is on another filesystem" : "")}), " +
        $"{BlobsAlreadyStored} already stored; every digest verified; {Problems.Count} problems, {Notes.Count} notes";
}

/// <summary>
/// Imports a registry:2 (CNCF distribution) filesystem storage in place. Its layout, under the root directory:
/// <code>
/// docker/registry/v2/
///   blobs/sha256/&lt;2 hex&gt;/&lt;hex&gt;/data                           content, by digest (layers, configs, manifests)
///   repositories/&lt;name&gt;/
///     _layers/sha256/&lt;hex&gt;/link                             "sha256:&lt;hex&gt;": a blob linked to the repository
///     _manifests/revisions/sha256/&lt;hex&gt;/link                 a manifest of the repository
///     _manifests/tags/&lt;tag&gt;/current/link                     the manifest the tag points at (index/: its history)
///     _uploads/&lt;id&gt;/                                        unfinished uploads (not imported)
/// </code>
/// Every blob and manifest is hashed and must match its digest; it is then hard-linked into this registry's blob
/// store (no bytes copied, so disk use does not double) or copied when the source is on another filesystem. Each
/// repository's metadata is then written in one transaction that also records it as imported, so the import is
/// idempotent and resumable: after a kill, running it again skips finished repositories and redoes the one that
/// was in progress. The source tree is only read.
/// </summary>
public sealed class DistributionImporter(FileSystemBlobStore blobs, IDistributionImportStore store,
    ManifestInspector inspect, TimeProvider time)
{
    private const int MaxManifestSize = 4 * 1024 * 1024;

    public static string V2Root(string root) => Path.Combine(root, "docker", "registry", "v2");

    /// <summary>Whether <paramref name="root"/> holds a registry:2 storage tree.</summary>
    public static bool HoldsDistributionTree(string root) => Directory.Exists(Path.Combine(V2Root(root), "repositories"))
                                                            || Directory.Exists(Path.Combine(V2Root(root), "blobs"));

    private sealed class Totals
    {
        public int Repositories, AlreadyImported, Manifests, Tags, BlobLinks, Linked, Copied, Stored;
        public long BytesLinked, BytesCopied;
        public readonly List<string> Problems = [];
        public readonly List<string> Notes = [];
    }

    /// <param name="root">The registry:2 root directory (its <c>rootdirectory</c> setting), holding <c>docker/registry/v2</c>.</param>
    /// <param name="progress">Receives one line per repository.</param>
    public async Task<DistributionImportReport> ImportAsync(string root, Action<string> progress, CancellationToken ct)
    {
        var totals = new Totals();
        var v2 = V2Root(Path.GetFullPath(root));
        var repositories = FindRepositories(Path.Combine(v2, "repositories"), totals).ToList();
        for (var i = 0; i < repositories.Count; i++)
        {
            ct.ThrowIfCancellationRequested();
            var (name, folder) = repositories[i];
            var prefix = $"[{i + 1}/{repositories.Count}] {name}";
            if (await store.IsRepositoryImportedAsync(name, ct))
            {
                totals.AlreadyImported++;
                progress($"{prefix}: imported before, skipped");
                continue;
            }
            var before = (totals.Linked, totals.Copied, totals.Stored, totals.Problems.Count);
            var import = await ReadRepositoryAsync(v2, name, folder, totals, ct);
            if (import is null)
            {
                progress($"{prefix}: NOT imported ({totals.Problems[^1]})");
                continue;
            }
            blobs.FlushImportedLinks();
            if (await store.ImportRepositoryAsync(import, Path.GetFullPath(root), time.GetUtcNow(), ct))
            {
                totals.Repositories++;
                totals.Manifests += import.Manifests.Count;
                totals.Tags += import.Tags.Count;
                totals.BlobLinks += import.Blobs.Count;
            }
            progress($"{prefix}: {import.Manifests.Count} manifests, {import.Tags.Count} tags, {import.Blobs.Count} blob links; " +
                     $"blobs {totals.Linked - before.Linked} linked, {totals.Copied - before.Copied} copied, " +
                     $"{totals.Stored - before.Stored} already stored" +
                     (totals.Problems.Count > before.Item4 ? $"; {totals.Problems.Count - before.Item4} problems" : ""));
        }
        return new DistributionImportReport(totals.Repositories, totals.AlreadyImported, totals.Manifests, totals.Tags,
            totals.BlobLinks, totals.Linked, totals.BytesLinked, totals.Copied, totals.BytesCopied, totals.Stored,
            totals.Problems, totals.Notes);
    }

    /// <summary>Every folder holding <c>_manifests</c> or <c>_layers</c>, named by its path below repositories/, in name order.</summary>
    private static IEnumerable<(RepositoryName Name, string Folder)> FindRepositories(string repositoriesRoot, Totals totals)
    {
        if (!Directory.Exists(repositoriesRoot)) yield break;
        var found = new List<(string, string)>();
        var pending = new Stack<string>();
        pending.Push(repositoriesRoot);
        while (pending.Count > 0)
        {
            var folder = pending.Pop();
            if (folder != repositoriesRoot
                && (Directory.Exists(Path.Combine(folder, "_manifests")) || Directory.Exists(Path.Combine(folder, "_layers"))))
                found.Add((Path.GetRelativePath(repositoriesRoot, folder).Replace(Path.DirectorySeparatorChar, '/'), folder));
            foreach (var child in Directory.EnumerateDirectories(folder))
                if (!Path.GetFileName(child).StartsWith('_')) pending.Push(child);
        }
        foreach (var (name, folder) in found.OrderBy(f => f.Item1, StringComparer.Ordinal))
        {
            if (RepositoryName.TryParse(name, out var repository)) yield return (repository, folder);
            else totals.Problems.Add($"repository folder '{name}' is not a valid repository name; not imported");
        }
    }

    private async Task<RepositoryImport?> ReadRepositoryAsync(string v2, RepositoryName name, string folder, Totals totals,
        CancellationToken ct)
    {
        // A repository with a problem (corrupt content, a full disk) is not recorded at all, so a later run retries it.
        var problemsBefore = totals.Problems.Count;
        var linked = new Dictionary<Digest, long>();
        foreach (var (digest, _) in Links(Path.Combine(folder, "_layers"), totals, name))
        {
            ct.ThrowIfCancellationRequested();
            if (await ImportBlobAsync(v2, digest, name, totals, ct) is { } size) linked[digest] = size;
        }

        var manifests = new Dictionary<Digest, ImportedManifest>();
        foreach (var (digest, linkFile) in Links(Path.Combine(folder, "_manifests", "revisions"), totals, name))
        {
            ct.ThrowIfCancellationRequested();
            if (await ImportBlobAsync(v2, digest, name, totals, ct) is not { } size) continue;
            if (size > MaxManifestSize)
            {
                totals.Notes.Add($"{name}@{digest}: manifest of {size} bytes is larger than 4 MiB; skipped");
                continue;
            }
            var bytes = await File.ReadAllBytesAsync(blobs.PathOf(digest), ct);
            if (inspect(bytes, out var reason) is not { } parsed)
            {
                totals.Notes.Add($"{name}@{digest}: not imported: {reason}");
                continue;
            }
            var pushed = new DateTimeOffset(File.GetLastWriteTimeUtc(linkFile), TimeSpan.Zero);
            manifests[digest] = new ImportedManifest(new ManifestRecord(digest, parsed.MediaType, size, parsed.ArtifactType,
                parsed.Subject, parsed.AnnotationsJson, pushed), parsed.References);
        }

        foreach (var (digest, manifest) in manifests)
            foreach (var reference in manifest.References)
                if (reference.Kind == ReferenceKind.Blob ? !linked.ContainsKey(reference.Target) : !manifests.ContainsKey(reference.Target))
                    totals.Notes.Add($"{name}@{digest} references {reference.Target}, which the registry:2 repository does not hold (imported as it was)");

        var tags = new List<ImportedTag>();
        var tagsRoot = Path.Combine(folder, "_manifests", "tags");
        if (Directory.Exists(tagsRoot))
            foreach (var tagFolder in Directory.EnumerateDirectories(tagsRoot).Order(StringComparer.Ordinal))
            {
                var tagName = Path.GetFileName(tagFolder);
                var current = Path.Combine(tagFolder, "current", "link");
                if (!File.Exists(current)) continue; // a deleted tag keeps its index/ history only
                if (!Tag.TryParse(tagName, out var tag))
                {
                    totals.Notes.Add($"{name}:{tagName}: not a valid tag; skipped");
                    continue;
                }
                if (!Digest.TryParse((await File.ReadAllTextAsync(current, ct)).Trim(), out var target) || !manifests.ContainsKey(target))
                {
                    totals.Notes.Add($"{name}:{tagName} points at a manifest that was not imported; skipped");
                    continue;
                }
                tags.Add(new ImportedTag(tag, target, new DateTimeOffset(File.GetLastWriteTimeUtc(current), TimeSpan.Zero)));
            }

        var uploads = Path.Combine(folder, "_uploads");
        if (Directory.Exists(uploads) && Directory.EnumerateDirectories(uploads).Any())
            totals.Notes.Add($"{name}: {Directory.EnumerateDirectories(uploads).Count()} unfinished registry:2 uploads are not imported");

        if (totals.Problems.Count > problemsBefore) return null;
        return new RepositoryImport(name, linked.Select(l => (l.Key, l.Value)).ToList(), manifests.Values.ToList(), tags);
    }

    /// <summary>The digests named by <c>&lt;algorithm&gt;/&lt;hex&gt;/link</c> files below <paramref name="folder"/>.</summary>
    private static IEnumerable<(Digest Digest, string LinkFile)> Links(string folder, Totals totals, RepositoryName name)
    {
        if (!Directory.Exists(folder)) yield break;
        foreach (var algorithm in Directory.EnumerateDirectories(folder).Order(StringComparer.Ordinal))
        foreach (var entry in Directory.EnumerateDirectories(algorithm).Order(StringComparer.Ordinal))
        {
            var link = Path.Combine(entry, "link");
            if (!File.Exists(link)) continue;
            var text = File.ReadAllText(link).Trim();
            if (Digest.TryParse(text, out var digest) && digest.Hex == Path.GetFileName(entry)
                && digest.AlgorithmName == Path.GetFileName(algorithm))
                yield return (digest, link);
            else totals.Problems.Add($"{name}: link {link} holds '{text}', not its own digest; skipped");
        }
    }

    /// <summary>Verifies and publishes one blob of the source; its size, or null (with the reason recorded) when it cannot be.</summary>
    private async Task<long?> ImportBlobAsync(string v2, Digest digest, RepositoryName name, Totals totals, CancellationToken ct)
    {
        var source = Path.Combine(v2, "blobs", digest.AlgorithmName, digest.Hex[..2], digest.Hex, "data");
        var result = await blobs.ImportFileAsync(digest, source, ct);
        switch (result.Status)
        {
            case BlobImportStatus.Linked:
                totals.Linked++;
                totals.BytesLinked += result.Size;
                return result.Size;
            case BlobImportStatus.Copied:
                totals.Copied++;
                totals.BytesCopied += result.Size;
                return result.Size;
            case BlobImportStatus.AlreadyStored:
                totals.Stored++;
                return result.Size;
            case BlobImportStatus.Missing:
                totals.Notes.Add($"{name}: {digest} is linked but its data is missing from the registry:2 blobs (garbage collected?); not linked");
                return null;
            case BlobImportStatus.DigestMismatch:
                totals.Problems.Add($"{name}: {digest} in the registry:2 storage is corrupt (its data hashes to {result.Actual}); not imported");
                return null;
            default:
                totals.Problems.Add($"storage full while importing {name}: {digest}; free space and run the import again");
                return null;
        }
    }
}
