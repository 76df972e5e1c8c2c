using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Registry.Tests.Infrastructure;

namespace Registry.Tests.Clients;

/// <summary>Bytes as stored in a registry or a layout, with their media type and digest.</summary>
public sealed record Blob(string MediaType, byte[] Bytes)
{
    public string Digest { get; } = Http.Sha256(Bytes);
    public string Hex => Digest["sha256:".Length..];
    public long Size => Bytes.LongLength;

    public JsonObject Descriptor() => new()
    {
        ["mediaType"] = MediaType,
        ["digest"] = Digest,
        ["size"] = Size,
    };
}

/// <summary>A gzip-compressed tar layer: the stored blob, the digest of the uncompressed tar and the files in it.</summary>
public sealed record Layer(Blob Compressed, byte[] Tar, IReadOnlyDictionary<string, byte[]> Files)
{
    public string DiffId => Http.Sha256(Tar);
}

/// <summary>One image: manifest, config and layers, for one platform.</summary>
public sealed record Image(Blob Manifest, Blob Config, IReadOnlyList<Layer> Layers, string Architecture, string Os)
{
    public IEnumerable<Blob> Blobs => new[] { Manifest, Config }.Concat(Layers.Select(l => l.Compressed));

    /// <summary>The files of the unpacked root filesystem: every layer applied in order (later files replace earlier).</summary>
    public IReadOnlyDictionary<string, byte[]> RootFs
    {
        get
        {
            var files = new Dictionary<string, byte[]>();
            foreach (var layer in Layers)
                foreach (var (path, content) in layer.Files) files[path] = content;
            return files;
        }
    }
}

/// <summary>An image index with one image per platform.</summary>
public sealed record ImageIndex(Blob Index, IReadOnlyList<Image> Images)
{
    public IEnumerable<Blob> Blobs => new[] { Index }.Concat(Images.SelectMany(i => i.Blobs));
}

/// <summary>
/// Builds an OCI image layout (oci-layout, index.json, blobs/sha256/...) on disk from scratch: real tar layers of
/// random files compressed with gzip, a config whose rootfs.diff_ids are the digests of the uncompressed tars, an
/// OCI manifest per image, and optionally a multi-platform image index. Every call makes new random content.
/// </summary>
public sealed class OciLayoutBuilder
{
    private static readonly DateTimeOffset Created = new(2026, 1, 2, 3, 4, 5, TimeSpan.Zero);
    private const string CreatedText = "2026-01-02T03:04:05Z";
    private static readonly JsonSerializerOptions JsonOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
    private readonly List<JsonObject> _tags = [];

    public OciLayoutBuilder(string path)
    {
        Path = path;
        Directory.CreateDirectory(System.IO.Path.Combine(path, "blobs", "sha256"));
        File.WriteAllText(System.IO.Path.Combine(path, "oci-layout"), """{"imageLayoutVersion":"1.0.0"}""");
        WriteIndexJson();
    }

    public string Path { get; }

    /// <summary>Adds a single-platform image under the tag.</summary>
    /// <param name="largeFileBytes">when not 0, the first layer also holds one incompressible file of this size</param>
    public Image AddImage(string tag, string architecture = "amd64", string os = "linux", int layers = 2, int filesPerLayer = 3,
        int largeFileBytes = 0)
    {
        var image = BuildImage(architecture, os, layers, filesPerLayer, largeFileBytes);
        Tag(tag, image.Manifest);
        return image;
    }

    /// <summary>Adds an image index with one image per platform (linux/amd64 and linux/arm64 unless told) under the tag.</summary>
    public ImageIndex AddIndex(string tag, params (string Architecture, string Os)[] platforms)
    {
        if (platforms.Length == 0) platforms = [("amd64", "linux"), ("arm64", "linux")];
        var images = platforms.Select(p => BuildImage(p.Architecture, p.Os, layers: 2, filesPerLayer: 2)).ToList();
        var manifests = new JsonArray();
        foreach (var image in images)
        {
            var descriptor = image.Manifest.Descriptor();
            descriptor["platform"] = new JsonObject { ["architecture"] = image.Architecture, ["os"] = image.Os };
            manifests.Add(descriptor);
        }
        var index = new JsonObject
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = MediaTypes.OciIndex,
            ["manifests"] = manifests,
            ["annotations"] = new JsonObject { ["org.example.nonce"] = Guid.NewGuid().ToString("N") },
        };
        var blob = Write(new Blob(MediaTypes.OciIndex, Json(index)));
        Tag(tag, blob);
        return new ImageIndex(blob, images);
    }

    /// <summary>
    /// Adds an artifact (image-spec's artifact guidance: empty config, one payload layer, <c>artifactType</c>) whose
    /// <c>subject</c> is <paramref name="subject"/>, under the tag.
    /// </summary>
    public Blob AddArtifact(string tag, Blob subject, string artifactType = "application/vnd.example.sbom.v1+json")
    {
        var config = Write(new Blob(MediaTypes.OciEmpty, "{}"u8.ToArray()));
        var payload = Write(new Blob("application/vnd.example.sbom.v1+json",
            Encoding.UTF8.GetBytes($$"""{"sbom":"{{Guid.NewGuid():N}}"}""")));
        var manifest = new JsonObject
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = MediaTypes.OciManifest,
            ["artifactType"] = artifactType,
            ["config"] = config.Descriptor(),
            ["layers"] = new JsonArray(payload.Descriptor()),
            ["subject"] = subject.Descriptor(),
            ["annotations"] = new JsonObject { ["org.opencontainers.image.created"] = CreatedText },
        };
        var blob = Write(new Blob(MediaTypes.OciManifest, Json(manifest)));
        Tag(tag, blob);
        return blob;
    }

    private Image BuildImage(string architecture, string os, int layers, int filesPerLayer, int largeFileBytes = 0)
    {
        var built = new List<Layer>();
        for (var i = 0; i < layers; i++) built.Add(Write(BuildLayer(i, filesPerLayer, i == 0 ? largeFileBytes : 0)));

        var history = new JsonArray();
        foreach (var _ in built)
            history.Add(new JsonObject { ["created"] = CreatedText, ["created_by"] = "OciLayoutBuilder" });
        var config = new JsonObject
        {
            ["created"] = CreatedText,
            ["architecture"] = architecture,
            ["os"] = os,
            ["config"] = new JsonObject
            {
                ["Env"] = new JsonArray("PATH=/usr/local/bin:/usr/bin:/bin"),
                ["Cmd"] = new JsonArray("/app/run"),
                ["Labels"] = new JsonObject { ["org.example.nonce"] = Guid.NewGuid().ToString("N") },
            },
            ["rootfs"] = new JsonObject
            {
                ["type"] = "layers",
                ["diff_ids"] = new JsonArray(built.Select(l => (JsonNode)l.DiffId).ToArray()),
            },
            ["history"] = history,
        };
        var configBlob = Write(new Blob(MediaTypes.OciConfig, Json(config)));

        var manifest = new JsonObject
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = MediaTypes.OciManifest,
            ["config"] = configBlob.Descriptor(),
            ["layers"] = new JsonArray(built.Select(l => (JsonNode)l.Compressed.Descriptor()).ToArray()),
            ["annotations"] = new JsonObject { ["org.opencontainers.image.created"] = CreatedText },
        };
        var manifestBlob = Write(new Blob(MediaTypes.OciManifest, Json(manifest)));
        return new Image(manifestBlob, configBlob, built, architecture, os);
    }

    /// <summary>A tar with a directory and random files; every layer also writes app/shared.txt, so later layers replace it.</summary>
    private static Layer BuildLayer(int number, int fileCount, int largeFileBytes)
    {
        var files = new Dictionary<string, byte[]>();
        if (largeFileBytes > 0) files[$"app/layer{number}/large.bin"] = RandomNumberGenerator.GetBytes(largeFileBytes);
        for (var i = 0; i < fileCount; i++)
            files[$"app/layer{number}/file{i}.bin"] = RandomNumberGenerator.GetBytes(RandomNumberGenerator.GetInt32(1, 64 * 1024));
        files["app/shared.txt"] = Encoding.UTF8.GetBytes($"layer {number} {Guid.NewGuid()}\n");

        using var tar = new MemoryStream();
        using (var writer = new TarWriter(tar, TarEntryFormat.Ustar, leaveOpen: true))
        {
            var directories = files.Keys
                .SelectMany(f => Ancestors(f))
                .Distinct()
                .Order(StringComparer.Ordinal);
            foreach (var directory in directories)
                writer.WriteEntry(new UstarTarEntry(TarEntryType.Directory, directory + "/")
                {
                    Mode = (UnixFileMode)Convert.ToInt32("755", 8),
                    ModificationTime = Created,
                });
            foreach (var (path, content) in files.OrderBy(f => f.Key, StringComparer.Ordinal))
                writer.WriteEntry(new UstarTarEntry(TarEntryType.RegularFile, path)
                {
                    Mode = (UnixFileMode)Convert.ToInt32("644", 8),
                    ModificationTime = Created,
                    DataStream = new MemoryStream(content),
                });
        }
        var tarBytes = tar.ToArray();

        using var gzipped = new MemoryStream();
        using (var gzip = new GZipStream(gzipped, CompressionLevel.Optimal, leaveOpen: true))
            gzip.Write(tarBytes);
        return new Layer(new Blob(MediaTypes.OciLayerGzip, gzipped.ToArray()), tarBytes, files);
    }

    private static IEnumerable<string> Ancestors(string file)
    {
        var parts = file.Split('/');
        for (var i = 1; i < parts.Length; i++) yield return string.Join('/', parts[..i]);
    }

    private Layer Write(Layer layer)
    {
        Write(layer.Compressed);
        return layer;
    }

    private Blob Write(Blob blob)
    {
        File.WriteAllBytes(System.IO.Path.Combine(Path, "blobs", "sha256", blob.Hex), blob.Bytes);
        return blob;
    }

    private void Tag(string tag, Blob target)
    {
        var descriptor = target.Descriptor();
        descriptor["annotations"] = new JsonObject { ["org.opencontainers.image.ref.name"] = tag };
        _tags.RemoveAll(t => t["annotations"]!["org.opencontainers.image.ref.name"]!.GetValue<string>() == tag);
        _tags.Add(descriptor);
        WriteIndexJson();
    }

    private void WriteIndexJson()
    {
        var index = new JsonObject
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = MediaTypes.OciIndex,
            ["manifests"] = new JsonArray(_tags.Select(t => t.DeepClone()).ToArray()),
        };
        File.WriteAllBytes(System.IO.Path.Combine(Path, "index.json"), Json(index));
    }

    private static byte[] Json(JsonNode node) => JsonSerializer.SerializeToUtf8Bytes(node, JsonOptions);
}

/// <summary>Reads an OCI image layout written by a client (e.g. skopeo copy ... oci:dir:tag).</summary>
public static class OciLayout
{
    /// <summary>The descriptor that index.json gives for the tag.</summary>
    public static (string MediaType, string Digest) Resolve(string layout, string tag)
    {
        using var index = JsonDocument.Parse(File.ReadAllBytes(System.IO.Path.Combine(layout, "index.json")));
        var match = index.RootElement.GetProperty("manifests").EnumerateArray()
            .Where(d => d.TryGetProperty("annotations", out var a)
                        && a.TryGetProperty("org.opencontainers.image.ref.name", out var name)
                        && name.GetString() == tag)
            .ToList();
        match.Should().ContainSingle($"index.json of {layout} should name tag {tag}: {index.RootElement}");
        var descriptor = match[0];
        return (descriptor.TryGetProperty("mediaType", out var mediaType) ? mediaType.GetString()! : "",
            descriptor.GetProperty("digest").GetString()!);
    }

    public static byte[] ReadBlob(string layout, string digest)
    {
        var path = System.IO.Path.Combine(layout, "blobs", "sha256", digest["sha256:".Length..]);
        File.Exists(path).Should().BeTrue($"layout {layout} should hold blob {digest}");
        return File.ReadAllBytes(path);
    }

    /// <summary>Every blob file of the layout hashes to its name.</summary>
    public static void ShouldHaveIntactBlobs(string layout)
    {
        foreach (var file in Directory.EnumerateFiles(System.IO.Path.Combine(layout, "blobs", "sha256")))
            Http.Sha256(File.ReadAllBytes(file)).Should().Be("sha256:" + System.IO.Path.GetFileName(file),
                $"blob file {file} should hash to its name");
    }

    /// <summary>The tag resolves to the image's manifest and every blob of the image is there, byte for byte.</summary>
    public static void ShouldHoldImage(string layout, string tag, Image image)
    {
        var (mediaType, digest) = Resolve(layout, tag);
        digest.Should().Be(image.Manifest.Digest, "the tag should resolve to the very manifest that was pushed");
        mediaType.Should().Be(MediaTypes.OciManifest);
        ShouldHoldBlobs(layout, image.Blobs);
        ShouldHaveIntactBlobs(layout);
    }

    public static void ShouldHoldIndex(string layout, string tag, ImageIndex index)
    {
        var (mediaType, digest) = Resolve(layout, tag);
        digest.Should().Be(index.Index.Digest, "the tag should resolve to the very index that was pushed");
        mediaType.Should().Be(MediaTypes.OciIndex);
        ShouldHoldBlobs(layout, index.Blobs);
        ShouldHaveIntactBlobs(layout);
    }

    public static void ShouldHoldBlobs(string layout, IEnumerable<Blob> blobs)
    {
        foreach (var blob in blobs)
            ReadBlob(layout, blob.Digest).AsSpan().SequenceEqual(blob.Bytes).Should()
                .BeTrue($"blob {blob.Digest} ({blob.MediaType}) should come back byte for byte");
    }
}
