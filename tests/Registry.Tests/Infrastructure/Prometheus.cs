using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using Registry.Tests.Clients;
using Xunit.Sdk;

namespace Registry.Tests.Infrastructure;

/// <summary>One sample of the Prometheus text format: <c>name{label="value",…} 12.5</c>.</summary>
public sealed record MetricSample(string Name, IReadOnlyDictionary<string, string> Labels, double Value);

/// <summary>Reads <c>/metrics</c> and finds samples in it.</summary>
public static partial class Metrics
{
    public static async Task<string> ScrapeAsync(HttpClient client, string path = "metrics")
    {
        using var response = await client.GetAsync(path);
        response.StatusCode.Should().Be(HttpStatusCode.OK);
        return await response.Content.ReadAsStringAsync();
    }

    public static IReadOnlyList<MetricSample> Parse(string text) =>
        text.Split('\n').Where(line => line.Length > 0 && !line.StartsWith('#')).Select(ParseLine).ToList();

    /// <summary>The sum of the samples of <paramref name="name"/> whose labels include all of <paramref name="labels"/>.</summary>
    public static double Sum(string text, string name, params (string Label, string Value)[] labels) =>
        Parse(text).Where(s => s.Name == name && labels.All(l => s.Labels.TryGetValue(l.Label, out var v) && v == l.Value))
            .Sum(s => s.Value);

    public static bool Has(string text, string name, params (string Label, string Value)[] labels) =>
        Parse(text).Any(s => s.Name == name && labels.All(l => s.Labels.TryGetValue(l.Label, out var v) && v == l.Value));

    /// <summary>Scrapes until <paramref name="done"/> holds (gauges refresh in the background); fails after 30 s.</summary>
    public static async Task<string> ScrapeUntilAsync(HttpClient client, Func<string, bool> done, string what)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            var text = await ScrapeAsync(client);
            if (done(text)) return text;
            if (deadline.Elapsed > TimeSpan.FromSeconds(30)) throw new XunitException($"not within 30 s: {what}\n{text}");
            await Task.Delay(100);
        }
    }

    private static MetricSample ParseLine(string line)
    {
        var brace = line.IndexOf('{');
        var space = line.LastIndexOf(' ');
        var name = brace >= 0 ? line[..brace] : line[..line.IndexOf(' ')];
        var labels = new Dictionary<string, string>();
        if (brace >= 0)
            foreach (Match m in Label().Matches(line[brace..line.LastIndexOf('}')]))
                labels[m.Groups[1].Value] = m.Groups[2].Value;
        var value = line[(space + 1)..] switch
        {
            "+Inf" => double.PositiveInfinity,
            "-Inf" => double.NegativeInfinity,
            var v => double.Parse(v, CultureInfo.InvariantCulture),
        };
        return new MetricSample(name, labels, value);
    }

    [GeneratedRegex("""([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)" """, RegexOptions.IgnorePatternWhitespace)]
    private static partial Regex Label();
}

/// <summary>
/// A real Prometheus server (Debian's <c>prometheus</c>) on a free loopback port with its own config and data folder,
/// scraping one target every second. Stopped by PID on dispose.
/// </summary>
public sealed class PrometheusServer : IAsyncDisposable
{
    private readonly Process _process;
    private readonly TempDir _dir;
    private readonly StringWriter _log = new();

    private PrometheusServer(Process process, TempDir dir, Uri address)
    {
        _process = process;
        _dir = dir;
        Address = address;
    }

    public Uri Address { get; }
    public string Log => _log.ToString();

    public static async Task<PrometheusServer> StartAsync(string target, string metricsPath = "/metrics")
    {
        var program = Cli.Require("prometheus");
        var dir = new TempDir("prometheus-");
        var config = dir.Sub("prometheus.yml");
        await File.WriteAllTextAsync(config, $"""
            global:
              scrape_interval: 1s
              evaluation_interval: 1s
            scrape_configs:
              - job_name: registry
                metrics_path: {metricsPath}
                static_configs:
                  - targets: ["{target}"]
            """);
        var port = WebhookReceiver.FreePort();
        var start = new ProcessStartInfo(program)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var argument in new[]
                 {
                     $"--config.file={config}", $"--storage.tsdb.path={dir.Sub("data")}",
                     $"--web.listen-address=127.0.0.1:{port}",
                 })
            start.ArgumentList.Add(argument);
        var process = new Process { StartInfo = start };
        var server = new PrometheusServer(process, dir, new Uri($"http://127.0.0.1:{port}/"));
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (server._log) server._log.WriteLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (server._log) server._log.WriteLine(e.Data); };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return server;
    }

    /// <summary>Runs an instant query until it returns at least one series; the first series' value, or a failure after 60 s.</summary>
    public async Task<double> QueryUntilFoundAsync(string promql)
    {
        using var client = new HttpClient { BaseAddress = Address, Timeout = TimeSpan.FromSeconds(5) };
        var deadline = Stopwatch.StartNew();
        var last = "";
        while (deadline.Elapsed < TimeSpan.FromSeconds(60))
        {
            if (_process.HasExited) throw new XunitException($"prometheus exited with {_process.ExitCode}:\n{Log}");
            try
            {
                last = await client.GetStringAsync($"api/v1/query?query={Uri.EscapeDataString(promql)}");
                using var json = JsonDocument.Parse(last);
                var result = json.RootElement.GetProperty("data").GetProperty("result");
                if (result.GetArrayLength() > 0)
                    return double.Parse(result[0].GetProperty("value")[1].GetString()!, CultureInfo.InvariantCulture);
            }
            catch (HttpRequestException) { }
            catch (TaskCanceledException) { }
            await Task.Delay(250);
        }
        throw new XunitException($"prometheus found no series for {promql} within 60 s; last answer {last}\n{Log}");
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited) _process.Kill();
        }
        catch (InvalidOperationException) { }
        await _process.WaitForExitAsync();
        _process.Dispose();
        _dir.Dispose();
    }
}
