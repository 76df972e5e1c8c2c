using System.Diagnostics;
using System.Net;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using Registry.Tests.Infrastructure;

namespace Registry.Tests.Gc;

/// <summary>Garbage collection over HTTP: start a run, wait for its report; and the storage settings GC tests use.</summary>
internal static class Gc
{
    /// <summary>No grace period and no schedule: a run collects everything unreferenced at once.</summary>
    public static Dictionary<string, string?> Aggressive(params (string Key, string? Value)[] more)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Registry:Gc:GracePeriod"] = "00:00:00",
            ["Registry:Gc:Interval"] = "00:00:00",
        };
        foreach (var (key, value) in more) settings[key] = value;
        return settings;
    }

    /// <summary>Starts a run and waits until it is no longer running; returns the run (with its report).</summary>
    public static async Task<JsonElement> RunAsync(this HttpClient client, bool dryRun = false)
    {
        var response = await client.PostAsync($"v2/_registry/gc/runs?dryRun={(dryRun ? "true" : "false")}", null);
        response.StatusCode.Should().Be(HttpStatusCode.Accepted, await response.Content.ReadAsStringAsync());
        return await client.WaitForRunAsync(response.Headers.Location!.ToString());
    }

    public static async Task<JsonElement> WaitForRunAsync(this HttpClient client, string location)
    {
        while (true)
        {
            var run = await client.GetJsonAsync(location.TrimStart('/'));
            if (run.GetProperty("status").GetString() != "running")
            {
                run.GetProperty("status").GetString().Should().Be("succeeded", run.ToString());
                return run;
            }
            await Task.Delay(20);
        }
    }

    public static JsonElement Report(this JsonElement run) => run.GetProperty("report");

    public static int Swept(this JsonElement run, string what) => run.Report().GetProperty("swept").GetProperty(what).GetInt32();

    public static long BytesReclaimed(this JsonElement run) => run.Report().GetProperty("bytesReclaimed").GetInt64();

    public static long InlineBytesReclaimed(this JsonElement run) =>
        run.Report().GetProperty("inlineBytesReclaimed").GetInt64();

    /// <summary>Every byte the run freed: blob files and content held inline in the metadata database.</summary>
    public static long AllBytesReclaimed(this JsonElement run) => run.BytesReclaimed() + run.InlineBytesReclaimed();

    public static IEnumerable<string> Deleted(this JsonElement run) =>
        run.Report().GetProperty("deleted").EnumerateArray().Select(e => e.GetString()!);

    /// <summary><c>du -sb</c> of a folder: the apparent bytes of its files and folders.</summary>
    public static long DiskUsage(string folder)
    {
        var du = Process.Start(new ProcessStartInfo("du", ["-sb", folder]) { RedirectStandardOutput = true })!;
        var output = du.StandardOutput.ReadToEnd();
        du.WaitForExit();
        du.ExitCode.Should().Be(0);
        return long.Parse(output.Split('\t')[0]);
    }

    public static string BlobFile(string storage, string digest) =>
        Path.Combine(storage, "blobs", "sha256", digest[7..9], digest[7..]);

    /// <summary>
    /// True when the storage holds the blob's content: its file, or (small content, <c>Registry:Storage:InlineBytes</c>)
    /// its row in the metadata database.
    /// </summary>
    public static bool Stored(string storage, string digest) =>
        File.Exists(BlobFile(storage, digest)) || Inline(storage, "SELECT count(*) FROM blob_content WHERE digest = $d", digest) > 0;

    /// <summary>How many blobs the storage's metadata database holds inline.</summary>
    public static long InlineCount(string storage) => Inline(storage, "SELECT count(*) FROM blob_content", null);

    /// <summary>Bytes of content held inline in the storage's metadata database.</summary>
    public static long InlineBytes(string storage) =>
        Inline(storage, "SELECT coalesce(sum(length(content)), 0) FROM blob_content", null);

    private static long Inline(string storage, string sql, string? digest)
    {
        // PostgreSQL metadata: there is no database beside the blobs, and nothing is inline.
        if (!File.Exists(Path.Combine(storage, "metadata.db"))) return 0;
        using var connection = new SqliteConnection(new SqliteConnectionStringBuilder
        {
            DataSource = Path.Combine(storage, "metadata.db"),
            Mode = SqliteOpenMode.ReadOnly,
            Pooling = false,
        }.ToString());
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        if (digest is not null) command.Parameters.AddWithValue("$d", digest);
        return (long)command.ExecuteScalar()!;
    }
}
