using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Registry.Tests.Clients;

namespace Registry.Tests.Stack;

/// <summary>How the stack scripts behave for an operator: a clear, early failure on a taken port, a clean stop.</summary>
public sealed class StackScriptTests : IDisposable
{
    private readonly TempDir _state = new("stack-script-");
    private readonly TcpListener _taken = new(IPAddress.Loopback, 0);

    public StackScriptTests() => _taken.Start();

    public void Dispose()
    {
        _taken.Stop();
        _state.Dispose();
    }

    private string TakenPort => ((IPEndPoint)_taken.LocalEndpoint).Port.ToString(CultureInfo.InvariantCulture);

    private static bool IsRunning(int pid)
    {
        try
        {
            return !File.ReadAllLines($"/proc/{pid}/status").Any(line => line.StartsWith("State:", StringComparison.Ordinal) && line.Contains('Z', StringComparison.Ordinal));
        }
        catch (IOException)
        {
            return false;
        }
    }

    private static string FreePort() => CrashHarness.ServerProcess.FreePort().ToString(CultureInfo.InvariantCulture);

    [Fact]
    public async Task Ceph_start_fails_at_once_naming_the_S3_port_that_is_taken()
    {
        var script = new StackScript("ceph", new Dictionary<string, string>
        {
            ["REGISTRY_STACK_DIR"] = _state.Path,
            ["S3_PORT"] = TakenPort,
            ["S3_MON_PORT"] = FreePort(),
        });

        var result = await script.RunAsync("start");

        result.ExitCode.Should().NotBe(0);
        result.Stderr.Should().Contain($"127.0.0.1:{TakenPort} is already in use").And.Contain("S3_PORT");
        result.Stdout.Should().NotContain("export");
    }

    [Fact]
    public async Task Proxy_start_fails_at_once_naming_the_port_that_is_taken()
    {
        var script = new StackScript("nginx", new Dictionary<string, string>
        {
            ["REGISTRY_STACK_DIR"] = _state.Path,
            ["PROXY_PORT"] = TakenPort,
            ["PROXY_UPSTREAMS"] = $"127.0.0.1:{FreePort()}",
        });

        var result = await script.RunAsync("start");

        result.ExitCode.Should().NotBe(0);
        result.Stderr.Should().Contain($"127.0.0.1:{TakenPort} is already in use").And.Contain("PROXY_PORT");
    }

    [Fact]
    public async Task Proxy_stop_ends_its_nginx_and_wipes_its_dir()
    {
        var script = new StackScript("nginx", new Dictionary<string, string>
        {
            ["REGISTRY_STACK_DIR"] = _state.Path,
            ["PROXY_PORT"] = FreePort(),
            ["PROXY_UPSTREAMS"] = $"127.0.0.1:{FreePort()}",
        });
        var exports = await script.StartAsync();
        var master = int.Parse(await File.ReadAllTextAsync(Path.Combine(exports["PROXY_DIR"], "nginx.pid")), CultureInfo.InvariantCulture);

        await script.StopAsync();

        IsRunning(master).Should().BeFalse("the nginx master is gone");
        Directory.Exists(exports["PROXY_DIR"]).Should().BeFalse();
    }
}
