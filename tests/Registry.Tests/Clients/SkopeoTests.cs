using System.Text.Json;
using System.Text.RegularExpressions;
using Registry.Tests.Infrastructure;

namespace Registry.Tests.Clients;

/// <summary>skopeo pushes, copies, inspects, lists, pulls and deletes images built from scratch, byte for byte.</summary>
/// <remarks>Against one in-process server.</remarks>
public sealed class SkopeoTests(RegistryFixture fixture) : SkopeoTestsBase(fixture), IClassFixture<RegistryFixture>;

/// <summary>skopeo pushes, copies, inspects, lists, pulls and deletes images built from scratch, byte for byte.</summary>
/// <remarks>Run against one server and against the scale-out stack (<c>Stack.ScaleOutSkopeoTests</c>).</remarks>
public abstract class SkopeoTestsBase(IRegistryTarget registry) : IDisposable
{
    private readonly TempDir _temp = new();
    private string Host => registry.HostPort;

    public void Dispose()
    {
        _temp.Dispose();
        GC.SuppressFinalize(this);
    }

    private Skopeo Skopeo => new(_temp.Path);

    private string Remote(string repo, string reference) =>
        reference.StartsWith("sha256:", StringComparison.Ordinal)
            ? $"docker://{Host}/{repo}@{reference}"
            : $"docker://{Host}/{repo}:{reference}";

    private async Task PushAsync(OciLayoutBuilder layout, string tag, string repo, params string[] options) =>
        await Skopeo.RunAsync(["copy", "--dest-tls-verify=false", .. options, $"oci:{layout.Path}:{tag}", Remote(repo, tag)]);

    [Fact]
    public async Task Skopeo_copies_an_image_byte_for_byte()
    {
        var layout = new OciLayoutBuilder(_temp.Sub("source"));
        var image = layout.AddImage("v1");
        var repo = RegistryFixture.NewRepo("clients");

        await PushAsync(layout, "v1", repo);

        (await Skopeo.RawManifestAsync(Remote(repo, "v1"))).Should().Equal(image.Manifest.Bytes);
        (await Skopeo.RawManifestAsync(Remote(repo, image.Manifest.Digest))).Should().Equal(image.Manifest.Bytes);
        var inspect = await Skopeo.RunAsync("inspect", "--tls-verify=false", Remote(repo, "v1"));
        using (var json = JsonDocument.Parse(inspect.Stdout))
        {
            json.RootElement.GetProperty("Digest").GetString().Should().Be(image.Manifest.Digest);
            json.RootElement.GetProperty("Architecture").GetString().Should().Be("amd64");
            json.RootElement.GetProperty("Layers").EnumerateArray().Select(l => l.GetString())
                .Should().Equal(image.Layers.Select(l => l.Compressed.Digest));
        }
        (await Skopeo.RunAsync("inspect", "--tls-verify=false", "--config", "--raw", Remote(repo, "v1"))).StdoutBytes
            .Should().Equal(image.Config.Bytes);

        var back = _temp.Sub("back");
        await Skopeo.RunAsync("copy", "--src-tls-verify=false", Remote(repo, "v1"), $"oci:{back}:v1");
        OciLayout.ShouldHoldImage(back, "v1", image);
    }

    [Fact]
    public async Task Skopeo_copies_a_two_platform_index_byte_for_byte()
    {
        var layout = new OciLayoutBuilder(_temp.Sub("source"));
        var index = layout.AddIndex("multi");
        var repo = RegistryFixture.NewRepo("clients");

        await PushAsync(layout, "multi", repo, "--all", "--preserve-digests");

        (await Skopeo.RawManifestAsync(Remote(repo, "multi"))).Should().Equal(index.Index.Bytes);
        (await Skopeo.RawManifestAsync(Remote(repo, index.Index.Digest))).Should().Equal(index.Index.Bytes);
        foreach (var image in index.Images)
            (await Skopeo.RawManifestAsync(Remote(repo, image.Manifest.Digest))).Should().Equal(image.Manifest.Bytes);

        var back = _temp.Sub("back");
        await Skopeo.RunAsync("copy", "--all", "--preserve-digests", "--src-tls-verify=false",
            Remote(repo, "multi"), $"oci:{back}:multi");
        OciLayout.ShouldHoldIndex(back, "multi", index);
    }

    [Fact]
    public async Task Skopeo_resolves_each_platform_of_an_index_to_its_own_image()
    {
        var layout = new OciLayoutBuilder(_temp.Sub("source"));
        var index = layout.AddIndex("multi");
        var repo = RegistryFixture.NewRepo("clients");
        await PushAsync(layout, "multi", repo, "--all", "--preserve-digests");

        foreach (var image in index.Images)
        {
            var platform = new[] { "--override-arch", image.Architecture, "--override-os", image.Os };
            (await Skopeo.RunAsync([.. platform, "inspect", "--tls-verify=false", "--config", "--raw", Remote(repo, "multi")]))
                .StdoutBytes.Should().Equal(image.Config.Bytes, $"the {image.Architecture} config should be served");

            var back = _temp.Sub("back-" + image.Architecture);
            await Skopeo.RunAsync([.. platform, "copy", "--src-tls-verify=false", Remote(repo, "multi"), $"oci:{back}:one"]);
            OciLayout.ShouldHoldImage(back, "one", image);
        }
    }

    [Fact]
    public async Task Skopeo_copies_between_repositories_of_the_same_registry_by_mounting_blobs()
    {
        var layout = new OciLayoutBuilder(_temp.Sub("source"));
        var image = layout.AddImage("v1", layers: 3);
        var first = RegistryFixture.NewRepo("clients");
        var second = RegistryFixture.NewRepo("clients");
        await PushAsync(layout, "v1", first);

        var copy = await Skopeo.RunAsync("--debug", "copy", "--src-tls-verify=false", "--dest-tls-verify=false",
            Remote(first, "v1"), Remote(second, "v2"));

        // Every layer comes over by a cross-repository mount, not by a new upload (skopeo uploads the small config).
        foreach (var layer in image.Layers)
            copy.Stderr.Should().MatchRegex($"(?i)mount=sha256(:|%3A){layer.Compressed.Hex}",
                $"skopeo should try to mount layer {layer.Compressed.Digest} from {first}");
        Regex.Matches(copy.Stderr, "Uploading /v2/").Count.Should().BeLessThanOrEqualTo(1,
            "only the config may be uploaded; every layer should be mounted:\n" + copy.Stderr);

        (await Skopeo.RawManifestAsync(Remote(second, "v2"))).Should().Equal(image.Manifest.Bytes);
        var back = _temp.Sub("back");
        await Skopeo.RunAsync("copy", "--src-tls-verify=false", Remote(second, "v2"), $"oci:{back}:v2");
        OciLayout.ShouldHoldImage(back, "v2", image);
    }

    [Fact]
    public async Task Skopeo_lists_every_tag_of_a_repository()
    {
        var layout = new OciLayoutBuilder(_temp.Sub("source"));
        layout.AddImage("v1");
        var repo = RegistryFixture.NewRepo("clients");
        string[] tags = ["v1", "latest", "1.0.0-rc.1", "Release_2"];
        foreach (var tag in tags)
            await Skopeo.RunAsync("copy", "--dest-tls-verify=false", $"oci:{layout.Path}:v1", Remote(repo, tag));

        var list = await Skopeo.RunAsync("list-tags", "--tls-verify=false", $"docker://{Host}/{repo}");
        using var json = JsonDocument.Parse(list.Stdout);
        json.RootElement.GetProperty("Repository").GetString().Should().Be($"{Host}/{repo}");
        json.RootElement.GetProperty("Tags").EnumerateArray().Select(t => t.GetString())
            .Should().BeEquivalentTo(tags);
    }

    [Fact]
    public async Task Skopeo_deletes_an_image_by_digest_and_it_can_no_longer_be_inspected()
    {
        var layout = new OciLayoutBuilder(_temp.Sub("source"));
        var doomed = layout.AddImage("v1");
        var kept = layout.AddImage("v2");
        var repo = RegistryFixture.NewRepo("clients");
        await PushAsync(layout, "v1", repo);
        await PushAsync(layout, "v2", repo);

        await Skopeo.RunAsync("delete", "--tls-verify=false", Remote(repo, doomed.Manifest.Digest));

        var byDigest = await Skopeo.TryRunAsync("inspect", "--tls-verify=false", "--raw", Remote(repo, doomed.Manifest.Digest));
        byDigest.ExitCode.Should().NotBe(0, byDigest.ToString());
        byDigest.Stderr.Should().ContainEquivalentOf("manifest unknown", byDigest.ToString());
        var byTag = await Skopeo.TryRunAsync("inspect", "--tls-verify=false", "--raw", Remote(repo, "v1"));
        byTag.ExitCode.Should().NotBe(0, "a tag of a deleted manifest must not resolve\n" + byTag);

        (await Skopeo.RawManifestAsync(Remote(repo, "v2"))).Should().Equal(kept.Manifest.Bytes);
        var list = await Skopeo.RunAsync("list-tags", "--tls-verify=false", $"docker://{Host}/{repo}");
        using var json = JsonDocument.Parse(list.Stdout);
        json.RootElement.GetProperty("Tags").EnumerateArray().Select(t => t.GetString()).Should().Equal("v2");
    }

    [Fact]
    public async Task Skopeo_pushes_and_pulls_the_docker_v2s2_format()
    {
        var layout = new OciLayoutBuilder(_temp.Sub("source"));
        var image = layout.AddImage("v1");
        var repo = RegistryFixture.NewRepo("clients");

        await PushAsync(layout, "v1", repo, "--format", "v2s2");

        var raw = await Skopeo.RawManifestAsync(Remote(repo, "v1"));
        var manifest = ManifestView.Parse(raw);
        manifest.MediaType.Should().Be(MediaTypes.DockerManifest);
        manifest.ConfigMediaType.Should().Be(MediaTypes.DockerConfig);
        manifest.ConfigDigest.Should().Be(image.Config.Digest, "the config bytes are not changed by the conversion");
        manifest.Layers.Should().Equal(image.Layers.Select(l => (MediaTypes.DockerLayerGzip, l.Compressed.Digest, l.Compressed.Size)));
        (await Skopeo.RawManifestAsync(Remote(repo, Http.Sha256(raw)))).Should().Equal(raw);

        // The dir: transport keeps the manifest and the blobs exactly as served.
        var back = _temp.Sub("back");
        await Skopeo.RunAsync("copy", "--src-tls-verify=false", Remote(repo, "v1"), $"dir:{back}");
        File.ReadAllBytes(Path.Combine(back, "manifest.json")).Should().Equal(raw);
        foreach (var blob in image.Blobs.Skip(1))
            File.ReadAllBytes(Path.Combine(back, blob.Hex)).AsSpan().SequenceEqual(blob.Bytes).Should()
                .BeTrue($"blob {blob.Digest} should come back byte for byte");

        // And back to an OCI layout: the same config and layers under an OCI manifest again.
        var oci = _temp.Sub("oci");
        await Skopeo.RunAsync("copy", "--src-tls-verify=false", Remote(repo, "v1"), $"oci:{oci}:v1");
        var ociManifest = ManifestView.Parse(OciLayout.ReadBlob(oci, OciLayout.Resolve(oci, "v1").Digest));
        ociManifest.ConfigDigest.Should().Be(image.Config.Digest);
        OciLayout.ShouldHoldBlobs(oci, image.Blobs.Skip(1));
    }

    [Fact]
    public async Task Skopeo_copies_a_24_MiB_layer_byte_for_byte()
    {
        var layout = new OciLayoutBuilder(_temp.Sub("source"));
        var image = layout.AddImage("big", layers: 2, largeFileBytes: 24 << 20);
        image.Layers[0].Compressed.Size.Should().BeGreaterThan(24 << 20, "random data does not compress");
        var repo = RegistryFixture.NewRepo("clients");

        await PushAsync(layout, "big", repo);

        var back = _temp.Sub("back");
        await Skopeo.RunAsync("copy", "--src-tls-verify=false", Remote(repo, "big"), $"oci:{back}:big");
        OciLayout.ShouldHoldImage(back, "big", image);
    }

    [Fact]
    public async Task Skopeo_converts_a_two_platform_index_to_a_docker_manifest_list_and_back()
    {
        const string DockerList = "application/vnd.docker.distribution.manifest.list.v2+json";
        var layout = new OciLayoutBuilder(_temp.Sub("source"));
        var index = layout.AddIndex("multi");
        var repo = RegistryFixture.NewRepo("clients");

        await PushAsync(layout, "multi", repo, "--all", "--format", "v2s2");

        var rawList = await Skopeo.RawManifestAsync(Remote(repo, "multi"));
        using var list = JsonDocument.Parse(rawList);
        list.RootElement.GetProperty("mediaType").GetString().Should().Be(DockerList);
        var entries = list.RootElement.GetProperty("manifests").EnumerateArray().ToList();
        entries.Should().HaveCount(2);
        for (var i = 0; i < entries.Count; i++)
        {
            var image = index.Images[i];
            entries[i].GetProperty("mediaType").GetString().Should().Be(MediaTypes.DockerManifest);
            entries[i].GetProperty("platform").GetProperty("architecture").GetString().Should().Be(image.Architecture);
            var child = await Skopeo.RawManifestAsync(Remote(repo, entries[i].GetProperty("digest").GetString()!));
            Http.Sha256(child).Should().Be(entries[i].GetProperty("digest").GetString());
            child.LongLength.Should().Be(entries[i].GetProperty("size").GetInt64());
            var manifest = ManifestView.Parse(child);
            manifest.MediaType.Should().Be(MediaTypes.DockerManifest);
            manifest.ConfigDigest.Should().Be(image.Config.Digest);
            manifest.Layers.Select(l => l.Digest).Should().Equal(image.Layers.Select(l => l.Compressed.Digest));
        }

        var back = _temp.Sub("back");
        await Skopeo.RunAsync("copy", "--all", "--src-tls-verify=false", Remote(repo, "multi"), $"oci:{back}:multi");
        OciLayout.ShouldHoldBlobs(back, index.Images.SelectMany(i => i.Blobs.Skip(1)));
        OciLayout.ShouldHaveIntactBlobs(back);
    }

    [Fact]
    public async Task Skopeo_recompresses_layers_to_zstd_in_uploads_of_unknown_length_and_back()
    {
        var layout = new OciLayoutBuilder(_temp.Sub("source"));
        var image = layout.AddImage("v1");
        var repo = RegistryFixture.NewRepo("clients");

        // Recompressing on the fly means skopeo does not know the blob sizes: it streams them (chunked PATCH).
        await PushAsync(layout, "v1", repo, "--dest-compress-format", "zstd");

        var raw = await Skopeo.RawManifestAsync(Remote(repo, "v1"));
        var manifest = ManifestView.Parse(raw);
        manifest.ConfigDigest.Should().Be(image.Config.Digest);
        manifest.Layers.Should().HaveCount(image.Layers.Count);
        manifest.Layers.Should().OnlyContain(l => l.MediaType == MediaTypes.OciLayerZstd);

        var dir = _temp.Sub("dir");
        await Skopeo.RunAsync("copy", "--src-tls-verify=false", Remote(repo, "v1"), $"dir:{dir}");
        File.ReadAllBytes(Path.Combine(dir, "manifest.json")).Should().Equal(raw);
        foreach (var (_, digest, size) in manifest.Layers)
        {
            var stored = File.ReadAllBytes(Path.Combine(dir, digest["sha256:".Length..]));
            Layers.IsZstd(stored).Should().BeTrue($"layer {digest} should be zstd");
            stored.LongLength.Should().Be(size);
            Http.Sha256(stored).Should().Be(digest);
        }

        // Pulled back as gzip, every layer holds exactly the tar that was built.
        var back = _temp.Sub("back");
        await Skopeo.RunAsync("copy", "--src-tls-verify=false", "--dest-compress-format", "gzip",
            Remote(repo, "v1"), $"oci:{back}:v1");
        var pulled = ManifestView.Parse(OciLayout.ReadBlob(back, OciLayout.Resolve(back, "v1").Digest));
        OciLayout.ReadBlob(back, pulled.ConfigDigest).Should().Equal(image.Config.Bytes);
        pulled.Layers.Select(l => Layers.Gunzip(OciLayout.ReadBlob(back, l.Digest)))
            .Select(Http.Sha256).Should().Equal(image.Layers.Select(l => l.DiffId));
        OciLayout.ShouldHaveIntactBlobs(back);
    }
}
