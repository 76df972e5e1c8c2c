using Microsoft.Extensions.Options;
using Registry.Tests.Infrastructure;

namespace Registry.Tests.Api;

public class StartupTests
{
    [Fact]
    public async Task Invalid_settings_stop_start_up_before_any_storage_is_created()
    {
        var path = Path.Combine(Path.GetTempPath(), $"registry-test-{Guid.NewGuid():N}");

        var start = () => RegistryServer.StartAsync(new Dictionary<string, string?>
        {
            ["Registry:Uploads:MaxSessions"] = "0",
        }, storagePath: path);

        await start.Should().ThrowAsync<OptionsValidationException>();
        await Task.Delay(TimeSpan.FromMilliseconds(500)); // storage is opened on another thread: give it the time to (wrongly) appear
        Directory.Exists(path).Should().BeFalse();
    }
}
