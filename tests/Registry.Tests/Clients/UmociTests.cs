using Registry.Tests.Infrastructure;

namespace Registry.Tests.Clients;

/// <summary>umoci reads what skopeo pulled back: the layout is valid and unpacks to the files that were built.</summary>
/// <remarks>Against one in-process server.</remarks>
public sealed class UmociTests(RegistryFixture fixture) : UmociTestsBase(fixture), IClassFixture<RegistryFixture>;

/// <summary>umoci reads what skopeo pulled back: the layout is valid and unpacks to the files that were built.</summary>
/// <remarks>Run against one server and against the scale-out stack (<c>Stack.ScaleOutUmociTests</c>).</remarks>
public abstract class UmociTestsBase(IRegistryTarget registry) : IDisposable
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
    public async Task Umoci_unpacks_a_pulled_back_image_into_exactly_the_files_that_were_built()
    {
        var layout = new OciLayoutBuilder(_temp.Sub("source"));
        var image = layout.AddImage("v1", layers: 3, filesPerLayer: 4);
        var remote = $"docker://{Host}/{RegistryFixture.NewRepo("clients")}:v1";
        await Skopeo.RunAsync("copy", "--dest-tls-verify=false", $"oci:{layout.Path}:v1", remote);

        var back = _temp.Sub("back");
        await Skopeo.RunAsync("copy", "--src-tls-verify=false", remote, $"oci:{back}:v1");
        OciLayout.ShouldHoldImage(back, "v1", image);

        var bundle = _temp.Sub("bundle");
        await Cli.RunAsync("umoci", ["unpack", "--image", $"{back}:v1", bundle]);
        RootFs.ShouldEqual(Path.Combine(bundle, "rootfs"), image.RootFs);
        File.Exists(Path.Combine(bundle, "config.json")).Should().BeTrue("umoci writes an OCI runtime config");
    }

    [Fact]
    public async Task A_layer_that_umoci_adds_is_pushed_and_pulled_back_byte_for_byte()
    {
        var layout = new OciLayoutBuilder(_temp.Sub("source"));
        var image = layout.AddImage("v1");
        var bundle = _temp.Sub("bundle");
        await Cli.RunAsync("umoci", ["unpack", "--image", $"{layout.Path}:v1", bundle]);
        var added = System.Security.Cryptography.RandomNumberGenerator.GetBytes(30_000);
        await File.WriteAllBytesAsync(Path.Combine(bundle, "rootfs", "app", "umoci.bin"), added);
        await Cli.RunAsync("umoci", ["repack", "--image", $"{layout.Path}:v2", bundle]);
        var (_, v2) = OciLayout.Resolve(layout.Path, "v2");
        var v2Manifest = OciLayout.ReadBlob(layout.Path, v2);

        var remote = $"docker://{Host}/{RegistryFixture.NewRepo("clients")}:v2";
        await Skopeo.RunAsync("copy", "--dest-tls-verify=false", $"oci:{layout.Path}:v2", remote);
        (await Skopeo.RawManifestAsync(remote)).Should().Equal(v2Manifest, "umoci's manifest (without mediaType) is served as pushed");

        var back = _temp.Sub("back");
        await Skopeo.RunAsync("copy", "--src-tls-verify=false", remote, $"oci:{back}:v2");
        OciLayout.Resolve(back, "v2").Digest.Should().Be(v2);
        var manifest = ManifestView.Parse(v2Manifest);
        var blobs = new[] { manifest.ConfigDigest }.Concat(manifest.Layers.Select(l => l.Digest))
            .Select(d => new Blob("", OciLayout.ReadBlob(layout.Path, d)));
        OciLayout.ShouldHoldBlobs(back, blobs);
        OciLayout.ShouldHaveIntactBlobs(back);

        var unpacked = _temp.Sub("unpacked");
        await Cli.RunAsync("umoci", ["unpack", "--image", $"{back}:v2", unpacked]);
        RootFs.ShouldEqual(Path.Combine(unpacked, "rootfs"),
            new Dictionary<string, byte[]>(image.RootFs) { ["app/umoci.bin"] = added });
    }
}
