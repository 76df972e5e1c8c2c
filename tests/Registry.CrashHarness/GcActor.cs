using System.Net;
using System.Text.Json;

namespace Registry.CrashHarness;

/// <summary>
/// Starts garbage collection runs back to back (<c>POST /v2/_registry/gc/runs</c>) and waits for each, until the kill.
/// A finished run counts as acknowledged ("gc run"); anything but 202, or a run that fails, is an error.
/// </summary>
internal static class GcActor
{
    public static async Task RunAsync(HttpClient http, TrafficContext context)
    {
        try
        {
            while (!context.Killed)
            {
                var start = await http.PostAsync("v2/_registry/gc/runs", null);
                if (start.StatusCode != HttpStatusCode.Accepted)
                {
                    if (!context.Killed)
                        context.Errors.Enqueue($"gc: POST runs answered {(int)start.StatusCode}: {Wire.Truncate(await start.Content.ReadAsStringAsync())}");
                    return;
                }
                var location = start.Headers.Location!.ToString().TrimStart('/');
                while (!context.Killed)
                {
                    using var run = JsonDocument.Parse(await http.GetStringAsync(location));
                    var status = run.RootElement.GetProperty("status").GetString();
                    if (status == "running")
                    {
                        await Task.Delay(10);
                        continue;
                    }
                    if (status != "succeeded") context.Errors.Enqueue($"gc: run {location} ended {status}: {run.RootElement}");
                    else context.Ack("gc run");
                    break;
                }
            }
        }
        catch (Exception e) when (Wire.IsTransport(e) || e is HttpRequestException)
        {
            if (!context.Killed) context.Errors.Enqueue($"gc: request failed before the kill: {e.Message}");
        }
    }
}
