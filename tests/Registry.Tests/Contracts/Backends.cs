using System.Text;
using Registry.Storage;
using Registry.Storage.Blobs;
using Registry.Storage.Blobs.S3;
using Registry.Storage.Metadata;
using Registry.Storage.Metadata.Postgres;
using Registry.Storage.Model;
using Registry.Tests.Stack;

namespace Registry.Tests.Contracts;

/// <summary>
/// An implementation of the metadata contract under test, with its data. The first store it opens is empty; every
/// later one is another instance over the same data (as another process or replica would hold). Disposing it closes
/// every store it opened and removes the data.
/// </summary>
public interface IMetadataBackend : IAsyncDisposable
{
    Task<IMetadataStore> OpenAsync();
}

/// <summary>The same for blob stores: every store it opens sees the same content and upload sessions.</summary>
public interface IBlobBackend : IAsyncDisposable
{
    Task<IBlobStore> OpenAsync();
}

/// <summary>SQLite in a folder of its own, durable as in production (<c>Registry:Storage:FlushToDisk</c>).</summary>
public sealed class SqliteBackend : IMetadataBackend
{
    private readonly string _folder = Directory.CreateTempSubdirectory("contract-sqlite-").FullName;
    private readonly List<SqliteMetadataStore> _opened = [];

    public Task<IMetadataStore> OpenAsync()
    {
        var store = new SqliteMetadataStore(Path.Combine(_folder, "metadata.db"));
        _opened.Add(store);
        return Task.FromResult<IMetadataStore>(store);
    }

    public ValueTask DisposeAsync()
    {
        foreach (var store in _opened) store.Dispose();
        try { Directory.Delete(_folder, recursive: true); } catch (IOException) { }
        return ValueTask.CompletedTask;
    }
}

/// <summary>
/// PostgreSQL on the test stack (<see cref="PostgresStack"/>, started once per run), in a database of its own created
/// for this backend: every store it opens is another replica's connection to that database. The databases are left
/// for the stack's stop, which wipes them all.
/// </summary>
public sealed class PostgresBackend : IMetadataBackend
{
    private readonly List<PostgresMetadataStore> _opened = [];
    private string? _connectionString;

    public async Task<IMetadataStore> OpenAsync()
    {
        _connectionString ??= await PostgresStack.CreateDatabaseAsync();
        var store = await PostgresMetadataStore.OpenAsync(_connectionString);
        _opened.Add(store);
        return store;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var store in _opened) await store.DisposeAsync();
    }
}

/// <summary>The filesystem blob store in a storage root of its own.</summary>
public sealed class FileSystemBackend : IBlobBackend
{
    private readonly StorageLayout _layout = new(Directory.CreateTempSubdirectory("contract-fs-").FullName);

    public FileSystemBackend() => _layout.Initialise();

    public Task<IBlobStore> OpenAsync() => Task.FromResult<IBlobStore>(new FileSystemBlobStore(_layout, flushToDisk: true));

    public ValueTask DisposeAsync()
    {
        try { Directory.Delete(_layout.Root, recursive: true); } catch (IOException) { }
        return ValueTask.CompletedTask;
    }
}

/// <summary>
/// The filesystem blob store with small content inline in a SQLite metadata database beside it, as the server runs by
/// default (<c>Registry:Storage:InlineBytes</c>). Every store opened is another blob store instance over the same
/// folder and the one metadata store, as in a server process (inline content waits in that store's memory until a
/// write takes it).
/// </summary>
public sealed class InlineFileSystemBackend : IBlobBackend
{
    private readonly StorageLayout _layout = new(Directory.CreateTempSubdirectory("contract-inline-").FullName);
    private readonly SqliteMetadataStore _metadata;

    public InlineFileSystemBackend()
    {
        _layout.Initialise();
        _metadata = new SqliteMetadataStore(_layout.DatabasePath);
    }

    public Task<IBlobStore> OpenAsync() =>
        Task.FromResult<IBlobStore>(new FileSystemBlobStore(_layout, flushToDisk: true, _metadata, 16 * 1024));

    public ValueTask DisposeAsync()
    {
        _metadata.Dispose();
        try { Directory.Delete(_layout.Root, recursive: true); } catch (IOException) { }
        return ValueTask.CompletedTask;
    }
}

/// <summary>
/// The S3 blob store under a key prefix of its own (<paramref name="settings"/>); each store opened is another
/// instance with its own client, as another replica holds. Disposing it deletes every object and aborts every
/// multipart upload under the prefix.
/// </summary>
public sealed class S3Backend(S3Settings settings) : IBlobBackend
{
    private readonly List<S3Bucket> _opened = [];

    public Task<IBlobStore> OpenAsync()
    {
        var bucket = new S3Bucket(settings);
        _opened.Add(bucket);
        return Task.FromResult<IBlobStore>(new S3BlobStore(bucket, new S3UploadSessionStore(bucket), partSize: S3BlobStore.MinPartSize));
    }

    public async ValueTask DisposeAsync()
    {
        var bucket = _opened.Count > 0 ? _opened[0] : new S3Bucket(settings);
        if (_opened.Count == 0) _opened.Add(bucket);
        await foreach (var upload in bucket.ListMultipartUploadsAsync(bucket.Prefix, default))
            await bucket.AbortAsync(upload.Key, upload.UploadId, default);
        await foreach (var item in bucket.ListAsync(bucket.Prefix, default))
            await bucket.DeleteAsync(item.Key, default);
        foreach (var opened in _opened) opened.Dispose();
    }
}

/// <summary>
/// Base of the metadata contract classes: a fresh backend and store per test. A subclass per implementation only
/// says which backend (<see cref="CreateBackend"/>).
/// </summary>
public abstract class MetadataContract : IAsyncLifetime
{
    private IMetadataBackend _backend = null!;

    /// <summary>The store under test, empty when the test starts.</summary>
    protected IMetadataStore Store { get; private set; } = null!;

    protected abstract IMetadataBackend CreateBackend();

    /// <summary>Another instance over the same data as <see cref="Store"/>.</summary>
    protected Task<IMetadataStore> OpenAnotherAsync() => _backend.OpenAsync();

    public async Task InitializeAsync()
    {
        _backend = CreateBackend();
        Store = await _backend.OpenAsync();
    }

    public async Task DisposeAsync() => await _backend.DisposeAsync();

    /// <summary>Links the references' blobs, then stores the manifest with its tags; asserts it was stored.</summary>
    protected async Task<ManifestRecord> PushAsync(RepositoryName repository, string content, string[]? tags = null,
        DateTimeOffset? at = null, Digest? subject = null, string? artifactType = null, string mediaType = Sample.ImageManifest,
        IReadOnlyList<ManifestReference>? references = null)
    {
        var manifest = Sample.Manifest(content, at, subject, artifactType, mediaType);
        var result = await Store.PutManifestAsync(repository, manifest, references ?? [],
            (tags ?? []).Select(Sample.Tag).ToList(), default);
        result.Status.Should().Be(PutManifestStatus.Stored);
        return manifest;
    }
}

/// <summary>Base of the blob store contract classes: a fresh backend and store per test.</summary>
public abstract class BlobContract : IAsyncLifetime
{
    private IBlobBackend _backend = null!;

    protected IBlobStore Store { get; private set; } = null!;

    protected abstract IBlobBackend CreateBackend();

    /// <summary>Another instance over the same content and sessions as <see cref="Store"/>.</summary>
    protected Task<IBlobStore> OpenAnotherAsync() => _backend.OpenAsync();

    public async Task InitializeAsync()
    {
        _backend = CreateBackend();
        Store = await _backend.OpenAsync();
    }

    public async Task DisposeAsync() => await _backend.DisposeAsync();
}

/// <summary>Values the contract tests build their data from.</summary>
public static class Sample
{
    public const string ImageManifest = "application/vnd.oci.image.manifest.v1+json";
    public const string ImageIndex = "application/vnd.oci.image.index.v1+json";

    public static readonly DateTimeOffset T0 = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    public static RepositoryName Repo(string name) =>
        RepositoryName.TryParse(name, out var repository) ? repository : throw new ArgumentException(name);

    public static Tag Tag(string name) => Registry.Storage.Model.Tag.TryParse(name, out var tag) ? tag : throw new ArgumentException(name);

    public static Digest DigestOf(string content) => DigestOf(Encoding.UTF8.GetBytes(content));

    public static Digest DigestOf(byte[] content) => Digest.Compute(DigestAlgorithm.Sha256, content);

    public static ManifestRecord Manifest(string content, DateTimeOffset? at = null, Digest? subject = null,
        string? artifactType = null, string mediaType = ImageManifest) =>
        new(DigestOf(content), mediaType, Encoding.UTF8.GetByteCount(content), artifactType, subject, null, at ?? T0);

    public static ManifestReference Blob(Digest digest) => new(digest, ReferenceKind.Blob);

    public static ManifestReference Child(Digest digest) => new(digest, ReferenceKind.Manifest);
}
