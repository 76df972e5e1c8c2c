using System.Text;
using Registry.Api.Manifests;
using Registry.Storage.Model;

namespace Registry.Tests.Parsing;

public class ManifestParserTests
{
    private static readonly string A = "sha256:" + new string('a', 64);
    private static readonly string B = "sha256:" + new string('b', 64);
    private static readonly string C = "sha256:" + new string('c', 64);

    private static ParsedManifest? Parse(string json, string? contentType, out string? error) =>
        ManifestParser.Parse(Encoding.UTF8.GetBytes(json), contentType, out error);

    private static string Image(string extra = "", string mediaType = MediaTypes.OciManifest) => $$"""
        {"schemaVersion":2,"mediaType":"{{mediaType}}",
         "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{{A}}","size":2},
         "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{{B}}","size":10}]{{extra}}}
        """;

    [Fact]
    public void An_image_manifest_references_its_config_and_layers()
    {
        var parsed = Parse(Image(), MediaTypes.OciManifest, out _);
        parsed!.MediaType.Should().Be(MediaTypes.OciManifest);
        parsed.References.Should().Equal(
            new ManifestReference(Digest.Parse(A), ReferenceKind.Blob),
            new ManifestReference(Digest.Parse(B), ReferenceKind.Blob));
    }

    [Fact]
    public void Without_artifactType_an_image_manifest_is_typed_by_its_config()
    {
        Parse(Image(), null, out _)!.ArtifactType.Should().Be("application/vnd.oci.image.config.v1+json");
        Parse(Image(""","artifactType":"application/x.sbom" """), null, out _)!.ArtifactType.Should().Be("application/x.sbom");
    }

    [Fact]
    public void Subject_and_annotations_are_kept()
    {
        var parsed = Parse(Image($$""","subject":{"mediaType":"{{MediaTypes.OciManifest}}","digest":"{{C}}","size":1},"annotations":{"k":"v"}"""),
            null, out _);
        parsed!.Subject.Should().Be(Digest.Parse(C));
        parsed.AnnotationsJson.Should().Be("""{"k":"v"}""");
    }

    [Fact]
    public void An_index_references_manifests()
    {
        var parsed = Parse($$"""{"schemaVersion":2,"mediaType":"{{MediaTypes.OciIndex}}","manifests":[{"mediaType":"{{MediaTypes.OciManifest}}","digest":"{{A}}","size":3}]}""",
            MediaTypes.OciIndex, out _);
        parsed!.References.Should().Equal(new ManifestReference(Digest.Parse(A), ReferenceKind.Manifest));
    }

    [Fact]
    public void Content_type_parameters_are_ignored() =>
        Parse(Image(), MediaTypes.OciManifest + "; charset=utf-8", out _).Should().NotBeNull();

    [Theory]
    [InlineData("not json")]
    [InlineData("[]")]
    [InlineData("{\"schemaVersion\":2}")]
    [InlineData("{\"schemaVersion\":1,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":[]}")]
    [InlineData("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"layers\":[]}")]
    [InlineData("{\"schemaVersion\":2,\"mediaType\":\"application/x-unknown\"}")]
    [InlineData("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":[{\"mediaType\":\"x\",\"digest\":\"md5:00\",\"size\":1}]}")]
    [InlineData("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":[{\"mediaType\":\"x\",\"digest\":\"sha256:" + "0000000000000000000000000000000000000000000000000000000000000000" + "\",\"size\":-1}]}")]
    public void Invalid_manifests_are_rejected_with_a_reason(string json)
    {
        Parse(json, null, out var error).Should().BeNull();
        error.Should().NotBeNullOrEmpty();
    }

    [Fact]
    public void A_mediaType_that_disagrees_with_the_content_type_is_rejected()
    {
        Parse(Image(), MediaTypes.DockerManifest, out var error).Should().BeNull();
        error.Should().Contain("does not match");
    }

    [Fact]
    public void Deeply_nested_json_is_rejected_not_crashed_on()
    {
        var deep = new string('[', 10_000) + new string(']', 10_000);
        Parse($$"""{"schemaVersion":2,"mediaType":"{{MediaTypes.OciIndex}}","manifests":[],"x":{{deep}}}""", null, out var error)
            .Should().BeNull();
        error.Should().Contain("JSON");
    }
}
