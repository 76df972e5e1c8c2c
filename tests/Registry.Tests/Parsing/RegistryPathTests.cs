using Registry.Api.Http;

namespace Registry.Tests.Parsing;

public class RegistryPathTests
{
    [Theory]
    [InlineData("library/alpine/manifests/latest", "Manifest", "library/alpine", "latest")]
    [InlineData("a/manifests/b/manifests/v1", "Manifest", "a/manifests/b", "v1")]
    [InlineData("a/blobs/sha256:abc", "Blob", "a", "sha256:abc")]
    [InlineData("a/b/c/blobs/uploads/", "UploadStart", "a/b/c", "")]
    [InlineData("a/blobs/uploads", "UploadStart", "a", "")]
    [InlineData("a/blobs/uploads/0123", "Upload", "a", "0123")]
    [InlineData("x/blobs/uploads/blobs/sha256:1", "Blob", "x/blobs/uploads", "sha256:1")]
    [InlineData("a/tags/list", "Tags", "a", "")]
    [InlineData("tags/tags/list", "Tags", "tags", "")]
    [InlineData("a/referrers/sha256:1", "Referrers", "a", "sha256:1")]
    [InlineData("a/manifests/_underscore_tag", "Manifest", "a", "_underscore_tag")]
    public void Core_routes_are_read_from_the_end(string path, string kindName, string name, string argument)
    {
        RegistryPath.Parse(path).Should().Be(new RegistryRoute(Enum.Parse<RouteKind>(kindName), name, argument));
    }

    [Theory]
    [InlineData("_oci/ext/discover", "", "_oci/ext/discover")]
    [InlineData("a/b/_oci/ext/discover", "a/b", "_oci/ext/discover")]
    [InlineData("a/_registry/tags/details", "a", "_registry/tags/details")]
    [InlineData("_registry/search/manifests/x", "", "_registry/search/manifests/x")]
    public void A_segment_starting_with_underscore_opens_the_extension_namespace(string path, string name, string rest)
    {
        RegistryPath.Parse(path).Should().Be(new RegistryRoute(RouteKind.Extension, name, rest, RegistryScope: name.Length == 0));
    }

    [Fact]
    public void An_empty_name_before_an_extension_is_not_registry_scope()
    {
        RegistryPath.Parse("/_oci/ext/discover").Should().Be(new RegistryRoute(RouteKind.Extension, "", "_oci/ext/discover"));
    }

    [Theory]
    [InlineData("")]
    [InlineData("a")]
    [InlineData("a/b")]
    [InlineData("manifests/latest")]
    [InlineData("a/manifests/")]
    [InlineData("a/tags/lists")]
    public void Unknown_paths_are_not_routes(string path)
    {
        RegistryPath.Parse(path).Should().BeNull();
    }
}
