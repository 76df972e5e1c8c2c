using System.Text.Json;
using Registry.Tests.Infrastructure;

namespace Registry.Tests.Clients;

/// <summary>
/// podman and buildah push from and pull into their own local storage (vfs, in a temp folder). They store layers
/// uncompressed and compress them again on push, so the uploads are streams of unknown length (chunked PATCH) and
/// the pushed layer digests are new; the config and the uncompressed tars must still be exactly those built.
/// </summary>
/// <remarks>Against one in-process server.</remarks>
public sealed class PodmanTests(RegistryFixture fixture) : PodmanTestsBase(fixture), IClassFixture<RegistryFixture>;

/// <summary>
/// podman and buildah push from and pull into their own local storage (vfs, in a temp folder). They store layers
/// uncompressed and compress them again on push, so the uploads are streams of unknown length (chunked PATCH) and
/// the pushed layer digests are new; the config and the uncompressed tars must still be exactly those built.
/// </summary>
/// <remarks>Run against one server and against the scale-out stack (<c>Stack.ScaleOutPodmanTests</c>).</remarks>
public abstract class PodmanTestsBase(IRegistryTarget registry) : IDisposable
{
    private readonly TempDir _temp = new();
    private string Host => registry.HostPort;
    private Skopeo Skopeo => new(_temp.Path);

    public void Dispose()
    {
        _temp.Dispose();
        GC.SuppressFinalize(this);
    }

    [Fact]
    public async Task Podman_pushes_and_pulls_an_image_whose_config_and_files_survive()
    {
        var layout = new OciLayoutBuilder(_temp.Sub("source"));
        var image = layout.AddImage("v1", layers: 3);
        var remote = $"{Host}/{RegistryFixture.NewRepo("clients")}:v1";
        using var storage = new ContainerStorage();
        var policy = new[] { "--signature-policy", storage.PolicyPath };

        var pulled = await storage.PodmanAsync(["pull", .. policy, $"oci:{layout.Path}:v1"]);
        var id = pulled.Stdout.Trim().Split('\n')[^1];
        id.Should().Be(image.Config.Hex, "podman's image id is the config digest");

        var digestFile = storage.Sub("digest");
        await storage.PodmanAsync(["push", .. policy, "--tls-verify=false", "--digestfile", digestFile, id, $"docker://{remote}"]);
        var digest = File.ReadAllText(digestFile).Trim();

        var raw = await Skopeo.RawManifestAsync($"docker://{remote}");
        Http.Sha256(raw).Should().Be(digest, "the registry should serve the manifest podman pushed");
        await ShouldHoldTheBuiltContentAsync(remote, raw, image);

        // A fresh pull from the registry gives back the same image, under the pushed digest.
        await storage.PodmanAsync("rmi", "--all", "--force");
        var again = await storage.PodmanAsync(["pull", .. policy, "--tls-verify=false", remote]);
        again.Stdout.Trim().Split('\n')[^1].Should().Be(image.Config.Hex);
        var inspect = await storage.PodmanAsync("image", "inspect", remote);
        using (var json = JsonDocument.Parse(inspect.Stdout))
        {
            var first = json.RootElement[0];
            first.GetProperty("Id").GetString().Should().Be(image.Config.Hex);
            first.GetProperty("Digest").GetString().Should().Be(digest);
            first.GetProperty("RepoDigests").EnumerateArray().Select(d => d.GetString())
                .Should().Contain($"{remote[..remote.LastIndexOf(':')]}@{digest}");
            first.GetProperty("Architecture").GetString().Should().Be("amd64");
        }

        var mount = (await storage.PodmanAsync("image", "mount", id)).Stdout.Trim();
        try
        {
            RootFs.ShouldEqual(mount, image.RootFs);
        }
        finally
        {
            await storage.PodmanAsync("image", "unmount", id);
        }
    }

    [Fact]
    public async Task Podman_pulls_each_platform_of_a_two_platform_index()
    {
        var layout = new OciLayoutBuilder(_temp.Sub("source"));
        var index = layout.AddIndex("multi");
        var repo = RegistryFixture.NewRepo("clients");
        await Skopeo.RunAsync("copy", "--all", "--preserve-digests", "--dest-tls-verify=false",
            $"oci:{layout.Path}:multi", $"docker://{Host}/{repo}:multi");
        using var storage = new ContainerStorage();

        foreach (var image in index.Images)
        {
            var pulled = await storage.PodmanAsync("pull", "--signature-policy", storage.PolicyPath, "--tls-verify=false",
                "--platform", $"{image.Os}/{image.Architecture}", $"{Host}/{repo}@{image.Manifest.Digest}");
            pulled.Stdout.Trim().Split('\n')[^1].Should().Be(image.Config.Hex);
            var mount = (await storage.PodmanAsync("image", "mount", image.Config.Hex)).Stdout.Trim();
            try { RootFs.ShouldEqual(mount, image.RootFs); }
            finally { await storage.PodmanAsync("image", "unmount", image.Config.Hex); }
        }

        // By tag, podman resolves the index to the platform asked for.
        await storage.PodmanAsync("rmi", "--all", "--force");
        var arm = index.Images.Single(i => i.Architecture == "arm64");
        var byTag = await storage.PodmanAsync("pull", "--signature-policy", storage.PolicyPath, "--tls-verify=false",
            "--arch", "arm64", $"{Host}/{repo}:multi");
        byTag.Stdout.Trim().Split('\n')[^1].Should().Be(arm.Config.Hex);
    }

    [Fact]
    public async Task Buildah_adds_a_layer_to_a_pulled_image_and_pushes_it()
    {
        var layout = new OciLayoutBuilder(_temp.Sub("source"));
        var image = layout.AddImage("v1");
        var remote = $"{Host}/{RegistryFixture.NewRepo("clients")}:built";
        using var storage = new ContainerStorage();
        var policy = new[] { "--signature-policy", storage.PolicyPath };

        var pulled = await storage.BuildahAsync(["pull", .. policy, $"oci:{layout.Path}:v1"]);
        pulled.Stdout.Trim().Split('\n')[^1].Should().Be(image.Config.Hex);
        var container = (await storage.BuildahAsync("from", "--pull-never", image.Config.Hex)).Stdout.Trim();
        var added = System.Security.Cryptography.RandomNumberGenerator.GetBytes(50_000);
        var addedPath = storage.Sub("added.bin");
        await File.WriteAllBytesAsync(addedPath, added);
        await storage.BuildahAsync("copy", container, addedPath, "/app/added.bin");
        await storage.BuildahAsync("config", "--label", "built-by=buildah", container);
        var built = (await storage.BuildahAsync(["commit", .. policy, "--format", "oci", container, "localhost/built:v1"]))
            .Stdout.Trim().Split('\n')[^1];
        await storage.BuildahAsync("rm", container);

        var digestFile = storage.Sub("digest");
        await storage.BuildahAsync(["push", .. policy, "--tls-verify=false", "--digestfile", digestFile, built, $"docker://{remote}"]);
        var raw = await Skopeo.RawManifestAsync($"docker://{remote}");
        Http.Sha256(raw).Should().Be(File.ReadAllText(digestFile).Trim());

        var manifest = ManifestView.Parse(raw);
        manifest.Layers.Should().HaveCount(image.Layers.Count + 1);
        manifest.ConfigDigest.Should().Be("sha256:" + built);

        // Pulled back with skopeo and unpacked with umoci: the built files plus the added one.
        var back = _temp.Sub("back");
        await Skopeo.RunAsync("copy", "--src-tls-verify=false", $"docker://{remote}", $"oci:{back}:built");
        OciLayout.Resolve(back, "built").Digest.Should().Be(Http.Sha256(raw));
        OciLayout.ShouldHaveIntactBlobs(back);
        var config = OciLayout.ReadBlob(back, manifest.ConfigDigest);
        using (var json = JsonDocument.Parse(config))
        {
            var diffIds = json.RootElement.GetProperty("rootfs").GetProperty("diff_ids").EnumerateArray()
                .Select(d => d.GetString()).ToList();
            diffIds.Take(image.Layers.Count).Should().Equal(image.Layers.Select(l => l.DiffId));
            json.RootElement.GetProperty("config").GetProperty("Labels").GetProperty("built-by").GetString().Should().Be("buildah");
        }
        for (var i = 0; i < image.Layers.Count; i++)
            Layers.Gunzip(OciLayout.ReadBlob(back, manifest.Layers[i].Digest)).AsSpan()
                .SequenceEqual(image.Layers[i].Tar).Should().BeTrue($"base layer {i} should hold exactly the tar that was built");

        var expected = new Dictionary<string, byte[]>(image.RootFs) { ["app/added.bin"] = added };
        var bundle = _temp.Sub("bundle");
        await Cli.RunAsync("umoci", ["unpack", "--image", $"{back}:built", bundle]);
        RootFs.ShouldEqual(Path.Combine(bundle, "rootfs"), expected);
    }

    [Fact]
    public async Task Buildah_builds_an_image_from_scratch_pushes_it_and_pulls_it_back_into_fresh_storage()
    {
        var remote = $"{Host}/{RegistryFixture.NewRepo("clients")}:scratch";
        var files = new Dictionary<string, byte[]>
        {
            ["app/data.bin"] = System.Security.Cryptography.RandomNumberGenerator.GetBytes(300_000),
            ["etc/motd"] = "built from scratch by buildah\n"u8.ToArray(),
        };
        string built, pushed;
        using (var storage = new ContainerStorage())
        {
            var policy = new[] { "--signature-policy", storage.PolicyPath };
            var container = (await storage.BuildahAsync("from", "scratch")).Stdout.Trim();
            foreach (var (path, content) in files)
            {
                var source = storage.Sub(Path.GetFileName(path));
                await File.WriteAllBytesAsync(source, content);
                await storage.BuildahAsync("copy", container, source, "/" + path);
            }
            await storage.BuildahAsync("config", "--label", "built-by=buildah", "--cmd", "/app/run", container);
            built = (await storage.BuildahAsync(["commit", .. policy, "--format", "oci", container, "localhost/scratch:v1"]))
                .Stdout.Trim().Split('\n')[^1];
            await storage.BuildahAsync("rm", container);
            var digestFile = storage.Sub("digest");
            await storage.BuildahAsync(["push", .. policy, "--tls-verify=false", "--digestfile", digestFile, built, $"docker://{remote}"]);
            pushed = File.ReadAllText(digestFile).Trim();
        }

        using var fresh = new ContainerStorage();
        var pulled = await fresh.BuildahAsync("pull", "--signature-policy", fresh.PolicyPath, "--tls-verify=false", $"docker://{remote}");

        pulled.Stdout.Trim().Split('\n')[^1].Should().Be(built, "the image id is the config digest, which the push keeps");
        Http.Sha256(await Skopeo.RawManifestAsync($"docker://{remote}")).Should().Be(pushed);
        var inspect = await fresh.BuildahAsync("inspect", "--type", "image", built);
        using (var json = JsonDocument.Parse(inspect.Stdout))
            json.RootElement.GetProperty("OCIv1").GetProperty("config").GetProperty("Labels").GetProperty("built-by")
                .GetString().Should().Be("buildah");
        var working = (await fresh.BuildahAsync("from", "--pull-never", built)).Stdout.Trim();
        var mount = (await fresh.BuildahAsync("mount", working)).Stdout.Trim();
        try
        {
            RootFs.ShouldEqual(mount, files);
        }
        finally
        {
            await fresh.BuildahAsync("umount", working);
        }
    }

    /// <summary>The pushed image has the built config byte for byte and layers that decompress to the built tars.</summary>
    private async Task ShouldHoldTheBuiltContentAsync(string remote, byte[] raw, Image image)
    {
        var manifest = ManifestView.Parse(raw);
        manifest.ConfigDigest.Should().Be(image.Config.Digest);
        manifest.Layers.Should().HaveCount(image.Layers.Count);

        var dir = _temp.Sub("pushed-" + Guid.NewGuid().ToString("N"));
        await Skopeo.RunAsync("copy", "--src-tls-verify=false", $"docker://{remote}", $"dir:{dir}");
        File.ReadAllBytes(Path.Combine(dir, "manifest.json")).Should().Equal(raw);
        File.ReadAllBytes(Path.Combine(dir, image.Config.Hex)).Should().Equal(image.Config.Bytes);
        for (var i = 0; i < image.Layers.Count; i++)
        {
            var stored = File.ReadAllBytes(Path.Combine(dir, manifest.Layers[i].Digest["sha256:".Length..]));
            Http.Sha256(stored).Should().Be(manifest.Layers[i].Digest);
            stored.LongLength.Should().Be(manifest.Layers[i].Size);
            Layers.IsGzip(stored).Should().BeTrue();
            Layers.Gunzip(stored).AsSpan().SequenceEqual(image.Layers[i].Tar).Should()
                .BeTrue($"layer {i} should decompress to exactly the tar that was built");
        }
    }
}

public static class RootFs
{
    /// <summary>The regular files under the folder are exactly the expected ones, byte for byte.</summary>
    public static void ShouldEqual(string root, IReadOnlyDictionary<string, byte[]> expected)
    {
        var actual = Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories)
            .ToDictionary(f => Path.GetRelativePath(root, f).Replace('\\', '/'), File.ReadAllBytes);
        actual.Keys.Should().BeEquivalentTo(expected.Keys, $"the files under {root}");
        foreach (var (path, content) in expected)
            actual[path].AsSpan().SequenceEqual(content).Should().BeTrue($"{path} should hold exactly what was built");
    }
}
