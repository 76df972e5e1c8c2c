using System.Text;
using Registry.Tests.Clients;
using Xunit.Sdk;

namespace Registry.Tests.Stack;

/// <summary>
/// One of the project's stack scripts (<c>scripts/stack/&lt;name&gt;.sh start|stop</c>), run the way an operator runs
/// it: its settings in the environment, its <c>export KEY=VALUE</c> lines read back from stdout. The tests inherit
/// REGISTRY_STACK_DIR and the port variables from their own environment; a port variable that is not set gets a
/// free port, so two stacks on one machine only need different REGISTRY_STACK_DIRs.
/// </summary>
public sealed class StackScript(string name, IReadOnlyDictionary<string, string> environment)
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromMinutes(4);
    private static readonly TimeSpan StopTimeout = TimeSpan.FromMinutes(1);

    public string Path { get; } = System.IO.Path.Combine(RepositoryRoot(), "scripts", "stack", name + ".sh");

    /// <summary>The settings the script runs with (besides the inherited environment).</summary>
    public IReadOnlyDictionary<string, string> Environment { get; } = environment;

    /// <summary>Runs <c>start</c>; fails (with the script's stderr) unless it exits 0 and prints export lines.</summary>
    public async Task<IReadOnlyDictionary<string, string>> StartAsync()
    {
        var result = await Cli.TryRunAsync("bash", [Path, "start"], StartTimeout, Environment);
        if (result.ExitCode != 0)
            throw new XunitException($"scripts/stack/{name}.sh start failed (exit {result.ExitCode}):\n{result.Stderr}");
        var exports = ParseExports(result.Stdout);
        if (exports.Count == 0)
            throw new XunitException($"scripts/stack/{name}.sh start printed no export lines:\n{result}");
        return exports;
    }

    /// <summary>Runs <c>stop</c>; fails (with the script's stderr) unless it exits 0.</summary>
    public async Task StopAsync()
    {
        var result = await Cli.TryRunAsync("bash", [Path, "stop"], StopTimeout, Environment);
        if (result.ExitCode != 0)
            throw new XunitException($"scripts/stack/{name}.sh stop failed (exit {result.ExitCode}):\n{result.Stderr}");
    }

    /// <summary>Runs the script with an argument and returns whatever it did.</summary>
    public Task<CliResult> RunAsync(string argument) =>
        Cli.TryRunAsync("bash", [Path, argument], StartTimeout, Environment);

    /// <summary>The value of an inherited environment variable, or a free loopback port.</summary>
    public static string PortFromEnvironment(string variable) =>
        System.Environment.GetEnvironmentVariable(variable) is { Length: > 0 } value
            ? value
            : CrashHarness.ServerProcess.FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>
    /// <c>export KEY=VALUE</c> lines as bash's <c>printf %q</c> writes them: backslash escapes are undone, and the
    /// values the scripts print (URLs, paths, keys) need nothing more.
    /// </summary>
    public static IReadOnlyDictionary<string, string> ParseExports(string stdout)
    {
        var exports = new Dictionary<string, string>();
        foreach (var raw in stdout.Split('\n'))
        {
            var line = raw.Trim();
            if (!line.StartsWith("export ", StringComparison.Ordinal)) continue;
            var pair = line["export ".Length..];
            var equals = pair.IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0) continue;
            exports[pair[..equals]] = Unescape(pair[(equals + 1)..]);
        }
        return exports;
    }

    private static string Unescape(string value)
    {
        var result = new StringBuilder(value.Length);
        for (var i = 0; i < value.Length; i++)
        {
            if (value[i] == '\\' && i + 1 < value.Length) i++;
            result.Append(value[i]);
        }
        return result.ToString();
    }

    private static string RepositoryRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(System.IO.Path.Combine(dir.FullName, "Registry.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("Registry.sln not found above the test binaries");
    }
}
