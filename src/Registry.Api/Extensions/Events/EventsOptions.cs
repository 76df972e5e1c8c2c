using Microsoft.Extensions.Options;
using Registry.Storage.Model;

namespace Registry.Api.Extensions.Events;

/// <summary>Section <c>Registry:Extensions:Events</c>.</summary>
public sealed class EventsOptions
{
    public List<WebhookOptions> Webhooks { get; set; } = [];
}

/// <summary>One webhook: <c>Registry:Extensions:Events:Webhooks:&lt;i&gt;:…</c>.</summary>
public sealed class WebhookOptions
{
    /// <summary>Identifies the webhook's delivery cursor; defaults to the URL. Renaming it restarts delivery from now.</summary>
    public string? Name { get; set; }

    public string Url { get; set; } = "";

    /// <summary>Headers sent with every delivery, e.g. <c>Authorization</c>.</summary>
    public Dictionary<string, string> Headers { get; set; } = new();

    /// <summary>Repository name patterns (<c>*</c> matches any run of characters, <c>?</c> one); empty: all.</summary>
    public List<string> Repositories { get; set; } = [];

    /// <summary>Actions to deliver (e.g. <c>manifest.push</c>); empty: all.</summary>
    public List<string> Actions { get; set; } = [];

    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>First retry delay; it doubles (with jitter) up to <see cref="MaxRetryDelay"/>.</summary>
    public TimeSpan RetryDelay { get; set; } = TimeSpan.FromSeconds(1);

    public TimeSpan MaxRetryDelay { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>How long the circuit stays open after repeated failures before one trial delivery.</summary>
    public TimeSpan BreakDuration { get; set; } = TimeSpan.FromSeconds(30);

    public string CursorName => string.IsNullOrWhiteSpace(Name) ? Url : Name;

    /// <summary>The webhook's label in the metrics: its name, else its URL's host and port (a URL may carry a secret).</summary>
    public string MetricName => !string.IsNullOrWhiteSpace(Name) ? Name
        : Uri.TryCreate(Url, UriKind.Absolute, out var uri) ? uri.Authority : "webhook";
}

internal sealed class EventsOptionsValidator : IValidateOptions<EventsOptions>
{
    public ValidateOptionsResult Validate(string? name, EventsOptions options)
    {
        var errors = new List<string>();
        for (var i = 0; i < options.Webhooks.Count; i++)
        {
            var webhook = options.Webhooks[i];
            var at = $"Registry:Extensions:Events:Webhooks:{i}";
            if (!Uri.TryCreate(webhook.Url, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
                errors.Add($"{at}:Url must be an absolute http or https URL.");
            foreach (var action in webhook.Actions.Where(a => !EventActions.All.Contains(a)))
                errors.Add($"{at}:Actions has unknown action '{action}' (known: {string.Join(", ", EventActions.All)}).");
            if (webhook.Timeout <= TimeSpan.Zero) errors.Add($"{at}:Timeout must be positive.");
            if (webhook.RetryDelay <= TimeSpan.Zero || webhook.MaxRetryDelay < webhook.RetryDelay)
                errors.Add($"{at}:RetryDelay must be positive and at most MaxRetryDelay.");
            if (webhook.BreakDuration < TimeSpan.FromMilliseconds(500))
                errors.Add($"{at}:BreakDuration must be at least 00:00:00.5.");
        }
        var duplicates = options.Webhooks.GroupBy(w => w.CursorName).Where(g => g.Count() > 1).Select(g => g.Key);
        foreach (var duplicate in duplicates) errors.Add($"Two webhooks share the name '{duplicate}'; give each a Name.");
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
