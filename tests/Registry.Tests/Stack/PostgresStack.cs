using System.Diagnostics;
using Npgsql;

namespace Registry.Tests.Stack;

/// <summary>
/// The PostgreSQL of the test stack: started once per test run by <c>scripts/stack/postgres.sh start</c> (state under
/// <c>REGISTRY_STACK_DIR</c>, port <c>PG_PORT</c>, as the script takes them) on first use, stopped by its
/// <c>stop</c> when the test process exits. A start that fails fails the test with the script's output.
/// Each test asks for a database of its own (<see cref="CreateDatabaseAsync"/>).
/// </summary>
public sealed class PostgresStack
{
    private static readonly Lazy<Task<PostgresStack>> Started = new(StartAsync, LazyThreadSafetyMode.ExecutionAndPublication);

    private PostgresStack(string connectionString) => ConnectionString = connectionString;

    /// <summary>The connection string the script printed (its own database, "registry").</summary>
    public string ConnectionString { get; }

    public static Task<PostgresStack> GetAsync() => Started.Value;

    /// <summary>A new empty database and the connection string that opens it.</summary>
    public static async Task<string> CreateDatabaseAsync()
    {
        var stack = await GetAsync();
        var name = $"t_{Guid.NewGuid():N}";
        await using (var connection = new NpgsqlConnection(stack.ConnectionString))
        {
            await connection.OpenAsync();
            await using var create = new NpgsqlCommand($"CREATE DATABASE {name}", connection);
            await create.ExecuteNonQueryAsync();
        }
        return new NpgsqlConnectionStringBuilder(stack.ConnectionString) { Database = name }.ConnectionString;
    }

    private static string Script =>
        Path.Combine(RepositoryRoot(), "scripts", "stack", "postgres.sh");

    private static async Task<PostgresStack> StartAsync()
    {
        var (code, stdout, stderr) = await RunAsync("start");
        if (code != 0)
            throw new InvalidOperationException($"scripts/stack/postgres.sh start failed ({code}):\n{stderr}\n{stdout}");
        AppDomain.CurrentDomain.ProcessExit += (_, _) => RunAsync("stop").GetAwaiter().GetResult();
        const string prefix = "export PG_CONNECTION_STRING=";
        var line = stdout.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.StartsWith(prefix, StringComparison.Ordinal))
            ?? throw new InvalidOperationException($"scripts/stack/postgres.sh start printed no PG_CONNECTION_STRING:\n{stdout}");
        return new PostgresStack(line[prefix.Length..].Trim('\''));
    }

    private static async Task<(int Code, string Stdout, string Stderr)> RunAsync(string command)
    {
        var start = new ProcessStartInfo("bash", [Script, command])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var process = Process.Start(start) ?? throw new InvalidOperationException("bash did not start");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, await stdout, await stderr);
    }

    private static string RepositoryRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Registry.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("Registry.sln not found above the test binaries");
    }
}
