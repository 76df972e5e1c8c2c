using System.Diagnostics;
using System.Text;
using Xunit.Sdk;

namespace Registry.Tests.Clients;

/// <summary>What a finished command printed.</summary>
public sealed record CliResult(string Command, int ExitCode, byte[] StdoutBytes, string Stderr)
{
    public string Stdout => Encoding.UTF8.GetString(StdoutBytes);

    public override string ToString() =>
        $"`{Command}` exited {ExitCode}\n--- stdout ---\n{Stdout}\n--- stderr ---\n{Stderr}";
}

/// <summary>Runs a real client (skopeo, podman, buildah, umoci, openssl) with a timeout and captures what it prints.</summary>
public static class Cli
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(120);

    /// <summary>Runs the command and fails the test, with both outputs, unless it exits 0.</summary>
    public static async Task<CliResult> RunAsync(string program, IEnumerable<string> arguments,
        TimeSpan? timeout = null, IReadOnlyDictionary<string, string>? environment = null, string? workingDirectory = null)
    {
        var result = await TryRunAsync(program, arguments, timeout, environment, workingDirectory);
        if (result.ExitCode != 0) throw new XunitException(result.ToString());
        return result;
    }

    /// <summary>Runs the command and returns whatever it did; fails the test only on a missing program or a timeout.</summary>
    public static async Task<CliResult> TryRunAsync(string program, IEnumerable<string> arguments,
        TimeSpan? timeout = null, IReadOnlyDictionary<string, string>? environment = null, string? workingDirectory = null)
    {
        var path = Require(program);
        var start = new ProcessStartInfo(path)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? "",
        };
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        if (environment is not null)
            foreach (var (key, value) in environment) start.Environment[key] = value;
        var command = string.Join(' ', new[] { program }.Concat(start.ArgumentList.Select(Quote)));

        using var process = new Process { StartInfo = start };
        process.Start();
        process.StandardInput.Close();
        var stdout = new MemoryStream();
        var stdoutDone = process.StandardOutput.BaseStream.CopyToAsync(stdout);
        var stderrDone = process.StandardError.ReadToEndAsync();

        var limit = timeout ?? DefaultTimeout;
        using var cancel = new CancellationTokenSource(limit);
        try
        {
            await process.WaitForExitAsync(cancel.Token);
        }
        catch (OperationCanceledException)
        {
            try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            await process.WaitForExitAsync();
            throw new XunitException($"`{command}` did not finish within {limit.TotalSeconds:0} s\n" +
                $"--- stdout ---\n{Encoding.UTF8.GetString(stdout.ToArray())}\n--- stderr ---\n{await stderrDone}");
        }
        await stdoutDone;
        return new CliResult(command, process.ExitCode, stdout.ToArray(), await stderrDone);
    }

    /// <summary>The full path of a program on PATH; fails the test clearly when it is not installed.</summary>
    public static string Require(string program)
    {
        if (Path.IsPathRooted(program))
            return File.Exists(program) ? program : throw Missing(program);
        foreach (var directory in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator))
        {
            if (directory.Length == 0) continue;
            var candidate = Path.Combine(directory, program);
            if (File.Exists(candidate)) return candidate;
        }
        throw Missing(program);
    }

    private static XunitException Missing(string program) => new(
        $"The real client '{program}' is not installed (not found on PATH). " +
        "Run `bash .ci/install-clients.sh` as root (scripts/test.sh does) to install skopeo, podman, buildah, umoci, prometheus (promtool), apache2-utils (htpasswd), openssl, docker-registry and docker-compose.");

    private static string Quote(string argument) =>
        argument.Length > 0 && argument.All(c => char.IsLetterOrDigit(c) || "-_./:=@,+%".Contains(c))
            ? argument
            : "'" + argument.Replace("'", "'\\''") + "'";
}

/// <summary>A temporary folder deleted with everything in it when disposed.</summary>
public sealed class TempDir : IDisposable
{
    /// <summary>Lower case only: podman and buildah name an image pulled from oci:PATH after the path.</summary>
    public TempDir(string prefix = "clients-", string? parent = null) =>
        Path = Directory.CreateDirectory(System.IO.Path.Combine(parent ?? System.IO.Path.GetTempPath(),
            prefix + Guid.NewGuid().ToString("N")[..16])).FullName;

    public string Path { get; }

    public string Sub(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
