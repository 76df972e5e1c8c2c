using Registry.Api.Http;

namespace Registry.Tests.Parsing;

/// <summary>The operation names of the metrics and the access log come from the path parser, never from the raw path.</summary>
public class RequestOperationTests
{
    [Theory]
    [InlineData("team/app/manifests/v1", "GET", "manifest_get")]
    [InlineData("team/app/manifests/v1", "HEAD", "manifest_head")]
    [InlineData("team/app/manifests/v1", "PUT", "manifest_put")]
    [InlineData("team/app/manifests/v1", "DELETE", "manifest_delete")]
    [InlineData("team/app/blobs/sha256:1", "GET", "blob_get")]
    [InlineData("team/app/blobs/sha256:1", "HEAD", "blob_head")]
    [InlineData("team/app/blobs/sha256:1", "DELETE", "blob_delete")]
    [InlineData("team/app/blobs/uploads/", "POST", "upload_start")]
    [InlineData("team/app/blobs/uploads/abc", "GET", "upload_status")]
    [InlineData("team/app/blobs/uploads/abc", "PATCH", "upload_patch")]
    [InlineData("team/app/blobs/uploads/abc", "PUT", "upload_put")]
    [InlineData("team/app/blobs/uploads/abc", "DELETE", "upload_cancel")]
    [InlineData("team/app/tags/list", "GET", "tags_list")]
    [InlineData("team/app/referrers/sha256:1", "GET", "referrers")]
    [InlineData("team/app/_registry/tags/details", "GET", "extension")]
    [InlineData("_oci/ext/discover", "GET", "extension")]
    [InlineData("team/app/manifests/v1", "POST", "unsupported")]
    [InlineData("team/app/tags/list", "BREW", "unsupported")]
    public void Each_route_and_method_has_one_operation_name(string path, string method, string operation)
    {
        RegistryPath.Parse(path)!.Value.Operation(method).Should().Be(operation);
    }

    [Fact]
    public void Operation_names_are_a_closed_set_whatever_the_repository()
    {
        var names = Enumerable.Range(0, 100)
            .Select(i => RegistryPath.Parse($"team{i}/app/manifests/tag{i}")!.Value.Operation("GET"))
            .Distinct();

        names.Should().Equal("manifest_get");
    }
}
