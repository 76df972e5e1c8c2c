using System.Net;
using Registry.Tests.Infrastructure;

namespace Registry.Tests.Api;

public class DeletionSettingTests
{
    [Fact]
    public async Task With_deletion_off_every_delete_answers_405_UNSUPPORTED_and_nothing_goes()
    {
        await using var server = await RegistryServer.StartAsync(new Dictionary<string, string?>
        {
            ["Registry:Deletion:Enabled"] = "false",
        });
        using var client = server.CreateClient();
        var (_, digest) = await client.PushImageAsync("nodelete/app", "v1");
        var blob = await client.PushBlobAsync("nodelete/app", [1, 2, 3]);

        foreach (var path in new[] { $"v2/nodelete/app/manifests/{digest}", "v2/nodelete/app/manifests/v1", $"v2/nodelete/app/blobs/{blob}" })
        {
            var response = await client.DeleteAsync(path);
            response.StatusCode.Should().Be(HttpStatusCode.MethodNotAllowed);
            (await response.ErrorCodeAsync()).Should().Be("UNSUPPORTED");
        }
        (await client.GetAsync("v2/nodelete/app/manifests/v1")).StatusCode.Should().Be(HttpStatusCode.OK);
        (await client.GetAsync($"v2/nodelete/app/blobs/{blob}")).StatusCode.Should().Be(HttpStatusCode.OK);
    }
}
