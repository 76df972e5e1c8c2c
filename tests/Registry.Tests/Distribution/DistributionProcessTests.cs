using System.Diagnostics;
using System.Net;
using System.Text;
using Registry.CrashHarness;

namespace Registry.Tests.Distribution;

/// <summary>
/// The built server as a process configured only with registry:2's variables, as a compose file written for
/// registry:2 would run it.
/// </summary>
public class DistributionProcessTests
{
    private static string ServerPath => Path.Combine(AppContext.BaseDirectory, "Registry.Api.dll");

    [Fact]
    public async Task A_server_configured_only_with_registry2_variables_listens_and_stores_where_they_say()
    {
        var root = Directory.CreateTempSubdirectory("registry2-env-").FullName;
        var port = ServerProcess.FreePort();
        var info = ServerProcess.StartInfo(ServerPath, []);
        info.Environment.Remove("Registry__Storage__Path");
        info.Environment["REGISTRY_HTTP_ADDR"] = $"127.0.0.1:{port}";
        info.Environment["REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY"] = root;
        info.Environment["REGISTRY_HTTP_SECRET"] = "not-used-here";
        var output = new StringBuilder();
        using var process = new Process { StartInfo = info };
        process.OutputDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/") };
            HttpResponseMessage? response = null;
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
            while (response is null)
            {
                try
                {
                    response = await client.GetAsync("v2/");
                }
                catch (HttpRequestException) when (DateTime.UtcNow < deadline && !process.HasExited)
                {
                    await Task.Delay(100);
                }
            }

            response.StatusCode.Should().Be(HttpStatusCode.OK);
            File.Exists(Path.Combine(root, "metadata.db")).Should().BeTrue("the storage is where REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY says");
            string log;
            lock (output) log = output.ToString();
            log.Should().Contain("REGISTRY_HTTP_SECRET", "a registry:2 setting with no equivalent is warned about, not silently ignored");
        }
        finally
        {
            if (!process.HasExited) process.Kill();
            await process.WaitForExitAsync();
            Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public async Task A_server_started_like_registry2_with_serve_and_a_config_yml_follows_the_file()
    {
        var root = Directory.CreateTempSubdirectory("registry2-serve-").FullName;
        var port = ServerProcess.FreePort();
        var config = Path.Combine(root, "config.yml");
        await File.WriteAllTextAsync(config, $"""
            version: 0.1
            storage:
              filesystem:
                rootdirectory: {root}/data
              delete:
                enabled: false
            http:
              addr: 127.0.0.1:{port}
            """);
        var info = ServerProcess.StartInfo(ServerPath, ["serve", config]);
        info.Environment.Remove("Registry__Storage__Path");
        using var process = new Process { StartInfo = info };
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/") };
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
            HttpResponseMessage? response = null;
            while (response is null)
            {
                try
                {
                    response = await client.DeleteAsync("v2/team/app/manifests/sha256:" + new string('a', 64));
                }
                catch (HttpRequestException) when (DateTime.UtcNow < deadline && !process.HasExited)
                {
                    await Task.Delay(100);
                }
            }

            response.StatusCode.Should().Be(HttpStatusCode.MethodNotAllowed, "storage.delete.enabled is false in the file");
            File.Exists(Path.Combine(root, "data", "metadata.db")).Should().BeTrue();
        }
        finally
        {
            if (!process.HasExited) process.Kill();
            await process.WaitForExitAsync();
            Directory.Delete(root, recursive: true);
        }
    }
}
