using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Registry.Bench;

/// <summary>The result table, its JSON form, and the comparison of several runs of two registries.</summary>
internal static class Report
{
    public static string Format(double value) =>
        double.IsNaN(value) ? "-"
        : value == Math.Floor(value) && Math.Abs(value) < 1e12 ? value.ToString("F0", CultureInfo.InvariantCulture)
        : Math.Abs(value) >= 100 ? value.ToString("F0", CultureInfo.InvariantCulture)
        : Math.Abs(value) >= 10 ? value.ToString("F1", CultureInfo.InvariantCulture)
        : value.ToString("F2", CultureInfo.InvariantCulture);

    private static string Mib(long bytes) => (bytes / 1048576.0).ToString("F0", CultureInfo.InvariantCulture);

    public static string Table(Options options, Recorder recorder, double totalSeconds)
    {
        var text = new StringBuilder();
        text.AppendLine();
        text.AppendLine($"Registry benchmark{(options.Label.Length > 0 ? $" ({options.Label})" : "")}: "
                        + $"{options.Url?.ToString() ?? "ceilings only"}{(options.Quick ? "  [--quick]" : "")}  "
                        + $"{Environment.ProcessorCount} cores, {totalSeconds:F0} s");
        foreach (var group in recorder.Figures.GroupBy(f => f.Group))
        {
            text.AppendLine();
            text.AppendLine(group.Key switch
            {
                "ceiling" => "machine ceilings",
                "server" => "server process",
                _ => "registry",
            });
            foreach (var f in group)
                text.AppendLine($"  {f.Label,-58} {Format(f.Value),10} {f.Unit,-12}{f.Note}");
        }
        text.AppendLine();
        text.AppendLine("phases (CPU % is of one core; this machine has "
                        + $"{Environment.ProcessorCount}: the load generator near {100 * Environment.ProcessorCount}% "
                        + "would be the bottleneck)");
        text.AppendLine($"  {"phase",-26} {"wall s",7} {"client CPU",14} {"server CPU",14} {"peak RSS",9} {"requests",9} {"errors",7}");
        foreach (var p in recorder.Phases)
        {
            var client = $"{p.ClientCpuSeconds:F1}s {Percent(p.ClientCpuSeconds, p.WallSeconds)}";
            var server = p.ServerCpuSeconds is { } s ? $"{s:F1}s {Percent(s, p.WallSeconds)}" : "-";
            var rss = p.ServerPeakRss is { } r ? Mib(r) + " MiB" : "-";
            text.AppendLine($"  {p.Name,-26} {p.WallSeconds,7:F1} {client,14} {server,14} {rss,9} {p.Requests,9} {p.Errors,7}");
        }
        var errors = recorder.Phases.Where(p => p.Errors > 0).ToList();
        if (errors.Count > 0)
        {
            text.AppendLine();
            text.AppendLine("ERRORS (first few of each phase)");
            foreach (var p in errors)
                foreach (var sample in p.ErrorSamples)
                    text.AppendLine($"  {p.Name}: {sample}");
        }
        return text.ToString();
    }

    private static string Percent(double cpu, double wall) =>
        wall > 0 ? $"({100 * cpu / wall:F0}%)" : "";

    public static void WriteJson(string path, Options options, Recorder recorder, double totalSeconds)
    {
        using var stream = File.Create(path);
        using var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        w.WriteStartObject();
        w.WriteString("label", options.Label);
        w.WriteString("url", options.Url?.ToString());
        w.WriteBoolean("quick", options.Quick);
        w.WriteString("finished", DateTimeOffset.Now);
        w.WriteNumber("cores", Environment.ProcessorCount);
        w.WriteNumber("seconds", totalSeconds);
        w.WriteStartArray("figures");
        foreach (var f in recorder.Figures)
        {
            w.WriteStartObject();
            w.WriteString("key", f.Key);
            w.WriteString("group", f.Group);
            w.WriteString("label", f.Label);
            if (double.IsFinite(f.Value)) w.WriteNumber("value", f.Value);
            else w.WriteNull("value");
            w.WriteString("unit", f.Unit);
            w.WriteBoolean("higher_is_better", f.HigherIsBetter);
            if (f.Note is not null) w.WriteString("note", f.Note);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteStartArray("phases");
        foreach (var p in recorder.Phases)
        {
            w.WriteStartObject();
            w.WriteString("name", p.Name);
            w.WriteNumber("wall_s", p.WallSeconds);
            w.WriteNumber("client_cpu_s", p.ClientCpuSeconds);
            if (p.ServerCpuSeconds is { } s) w.WriteNumber("server_cpu_s", s);
            if (p.ServerPeakRss is { } r) w.WriteNumber("server_peak_rss_bytes", r);
            if (p.ServerPeakRssEach is { } each)
            {
                w.WriteStartArray("server_peak_rss_each_bytes");
                foreach (var b in each) w.WriteNumberValue(b);
                w.WriteEndArray();
            }
            w.WriteNumber("requests", p.Requests);
            w.WriteNumber("errors", p.Errors);
            w.WriteStartArray("error_samples");
            foreach (var e in p.ErrorSamples) w.WriteStringValue(e);
            w.WriteEndArray();
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }

    private sealed record RunFigure(string Key, string Group, string Label, double? Value, string Unit, bool Higher);

    private sealed record RunPhase(string Name, double Wall, double ClientCpu, double? ServerCpu, long? PeakRss, long Errors);

    private sealed record Run(List<RunFigure> Figures, List<RunPhase> Phases);

    private static Run Load(string path)
    {
        using var json = JsonDocument.Parse(File.ReadAllBytes(path));
        var root = json.RootElement;
        var figures = root.GetProperty("figures").EnumerateArray().Select(f => new RunFigure(
            f.GetProperty("key").GetString()!, f.GetProperty("group").GetString()!, f.GetProperty("label").GetString()!,
            f.GetProperty("value").ValueKind == JsonValueKind.Number ? f.GetProperty("value").GetDouble() : null,
            f.GetProperty("unit").GetString()!, f.GetProperty("higher_is_better").GetBoolean())).ToList();
        var phases = root.GetProperty("phases").EnumerateArray().Select(p => new RunPhase(
            p.GetProperty("name").GetString()!, p.GetProperty("wall_s").GetDouble(), p.GetProperty("client_cpu_s").GetDouble(),
            p.TryGetProperty("server_cpu_s", out var s) ? s.GetDouble() : null,
            p.TryGetProperty("server_peak_rss_bytes", out var r) ? r.GetInt64() : null, p.GetProperty("errors").GetInt64())).ToList();
        return new Run(figures, phases);
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        if (sorted.Length == 0) return double.NaN;
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2]
            : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }

    /// <summary>Spread of runs around their median, (max-min)/median, as a percentage.</summary>
    private static string Spread(IReadOnlyList<double> values)
    {
        if (values.Count < 2) return "";
        var median = Median(values);
        return median == 0 ? "" : $"±{50 * (values.Max() - values.Min()) / Math.Abs(median):F0}%";
    }

    /// <summary>
    /// The median of each figure over the runs of A and of B, and A/B. For a figure where higher is better a ratio
    /// above 1 means A is better; where lower is better (latency, memory) a ratio below 1 means A is better.
    /// </summary>
    public static string Compare(string nameA, IReadOnlyList<string> filesA, string nameB, IReadOnlyList<string> filesB)
    {
        var runsA = filesA.Select(Load).ToList();
        var runsB = filesB.Select(Load).ToList();
        var text = new StringBuilder();
        text.AppendLine($"Medians of {runsA.Count} runs of {nameA} and {runsB.Count} runs of {nameB}; "
                        + $"ratio = {nameA}/{nameB}; 'better' names the side the ratio favours; ± is half the min-max spread");
        text.AppendLine($"  {"figure",-58} {"unit",-11} {nameA,12} {"",5} {nameB,12} {"",5} {"ratio",7}  better");
        var keys = runsA.Concat(runsB).SelectMany(r => r.Figures).DistinctBy(f => f.Key).ToList();
        string? group = null;
        foreach (var figure in keys)
        {
            if (figure.Group != group)
            {
                group = figure.Group;
                text.AppendLine(group switch
                {
                    "ceiling" => "machine ceilings (same machine both times: the ratio shows run-to-run noise)",
                    "server" => "server process",
                    _ => "registry",
                });
            }
            var a = Values(runsA, figure.Key);
            var b = Values(runsB, figure.Key);
            var ma = Median(a);
            var mb = Median(b);
            var ratio = mb == 0 || double.IsNaN(ma) || double.IsNaN(mb) ? double.NaN : ma / mb;
            var better = double.IsNaN(ratio) || Math.Abs(ratio - 1) < 0.05 ? "~"
                : (ratio > 1) == figure.Higher ? nameA : nameB;
            if (figure.Group == "ceiling") better = "";
            text.AppendLine($"  {figure.Label,-58} {figure.Unit,-11} {Format(ma),12} {Spread(a),5} {Format(mb),12} "
                            + $"{Spread(b),5} {(double.IsNaN(ratio) ? "-" : ratio.ToString("F2", CultureInfo.InvariantCulture)),7}  {better}");
        }

        text.AppendLine();
        text.AppendLine("per phase, medians: wall seconds, server CPU seconds, load generator CPU % of one core, errors (sum)");
        text.AppendLine($"  {"phase",-26} {"wall " + nameA,16} {"wall " + nameB,16} {"srv CPU " + nameA,16} "
                        + $"{"srv CPU " + nameB,16} {"client% " + nameA,16} {"client% " + nameB,16} {"errors",9}");
        foreach (var phase in runsA.Concat(runsB).SelectMany(r => r.Phases).Select(p => p.Name).Distinct())
        {
            var pa = runsA.SelectMany(r => r.Phases).Where(p => p.Name == phase).ToList();
            var pb = runsB.SelectMany(r => r.Phases).Where(p => p.Name == phase).ToList();
            string M(IEnumerable<double> values) => Format(Median(values));
            string Cpu(List<RunPhase> ps) => M(ps.Where(p => p.ServerCpu is not null).Select(p => p.ServerCpu!.Value));
            string Client(List<RunPhase> ps) => M(ps.Where(p => p.Wall > 0).Select(p => 100 * p.ClientCpu / p.Wall));
            text.AppendLine($"  {phase,-26} {M(pa.Select(p => p.Wall)),16} {M(pb.Select(p => p.Wall)),16} {Cpu(pa),16} "
                            + $"{Cpu(pb),16} {Client(pa),16} {Client(pb),16} {$"{pa.Sum(p => p.Errors)}/{pb.Sum(p => p.Errors)}",9}");
        }
        return text.ToString();
    }

    /// <summary>
    /// Several registries side by side: the median of each figure for each (± half its spread), then the ratio
    /// of the first to each of the others; per phase, the medians of wall time, server CPU seconds and peak RSS.
    /// </summary>
    /// <param name="sideBySide">Also for two: this layout (with peak RSS per phase) instead of the two-way one.</param>
    public static string Compare(IReadOnlyList<(string Name, IReadOnlyList<string> Files)> sides, bool sideBySide = false)
    {
        if (sides.Count == 2 && !sideBySide) return Compare(sides[0].Name, sides[0].Files, sides[1].Name, sides[1].Files);
        var runs = sides.Select(side => side.Files.Select(Load).ToList()).ToList();
        var first = sides[0].Name;
        var text = new StringBuilder();
        text.AppendLine($"Medians of {string.Join(", ", sides.Select((side, i) => $"{runs[i].Count} runs of {side.Name}"))}; "
                        + $"ratio = {first}/other (> 1 favours {first} where higher is better, < 1 where lower is); "
                        + "± is half the min-max spread");
        var header = new StringBuilder($"  {"figure",-58} {"unit",-11}");
        foreach (var side in sides) header.Append($" {side.Name,14} {"",5}");
        foreach (var side in sides.Skip(1)) header.Append($" {"/" + side.Name,14}");
        text.AppendLine(header.ToString());
        var keys = runs.SelectMany(r => r).SelectMany(r => r.Figures).DistinctBy(f => f.Key).ToList();
        string? group = null;
        foreach (var figure in keys)
        {
            if (figure.Group != group)
            {
                group = figure.Group;
                text.AppendLine(group switch
                {
                    "ceiling" => "machine ceilings (same machine every time: the ratios show run-to-run noise)",
                    "server" => "server process (one process, or each replica and their sum)",
                    _ => "registry",
                });
            }
            var values = runs.Select(r => Values(r, figure.Key)).ToList();
            var medians = values.Select(Median).ToList();
            var line = new StringBuilder($"  {figure.Label,-58} {figure.Unit,-11}");
            for (var i = 0; i < sides.Count; i++) line.Append($" {Format(medians[i]),14} {Spread(values[i]),5}");
            for (var i = 1; i < sides.Count; i++)
            {
                var ratio = medians[i] == 0 || double.IsNaN(medians[0]) || double.IsNaN(medians[i]) ? double.NaN
                    : medians[0] / medians[i];
                line.Append($" {(double.IsNaN(ratio) ? "-" : ratio.ToString("F2", CultureInfo.InvariantCulture)),14}");
            }
            text.AppendLine(line.ToString());
        }

        text.AppendLine();
        text.AppendLine("per phase, medians: wall seconds, server CPU seconds (all replicas), server peak RSS MiB (sum of "
                        + "the replicas' simultaneous samples), errors (sum)");
        var phaseHeader = new StringBuilder($"  {"phase",-26}");
        foreach (var what in new[] { "wall", "CPU", "RSS" })
            foreach (var side in sides) phaseHeader.Append($" {what + " " + side.Name,18}");
        phaseHeader.Append($" {"errors",12}");
        text.AppendLine(phaseHeader.ToString());
        foreach (var phase in runs.SelectMany(r => r).SelectMany(r => r.Phases).Select(p => p.Name).Distinct())
        {
            var ps = runs.Select(r => r.SelectMany(run => run.Phases).Where(p => p.Name == phase).ToList()).ToList();
            string M(IEnumerable<double> v) => Format(Median(v));
            var line = new StringBuilder($"  {phase,-26}");
            foreach (var p in ps) line.Append($" {M(p.Select(x => x.Wall)),18}");
            foreach (var p in ps) line.Append($" {M(p.Where(x => x.ServerCpu is not null).Select(x => x.ServerCpu!.Value)),18}");
            foreach (var p in ps) line.Append($" {M(p.Where(x => x.PeakRss is not null).Select(x => x.PeakRss!.Value / 1048576.0)),18}");
            line.Append($" {string.Join("/", ps.Select(p => p.Sum(x => x.Errors))),12}");
            text.AppendLine(line.ToString());
        }
        return text.ToString();
    }

    private static List<double> Values(List<Run> runs, string key) =>
        runs.SelectMany(r => r.Figures).Where(f => f.Key == key && f.Value is not null).Select(f => f.Value!.Value).ToList();
}
