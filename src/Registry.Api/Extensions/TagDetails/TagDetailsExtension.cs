using System.Text.Json;
using Microsoft.Extensions.Options;
using Registry.Api.Extensions.Framework;
using Registry.Api.Http;
using Registry.Storage.Metadata;
using Registry.Storage.Model;

namespace Registry.Api.Extensions.TagDetails;

/// <summary>
/// <c>GET /v2/&lt;name&gt;/_registry/tags/details</c>: every tag with its manifest's digest, media type, artifact type,
/// total size, platforms, creation time (from the image config) and push time, in one paginated request instead of
/// one per tag. Doc: docs/extensions/_registry/tags.md.
/// </summary>
internal sealed class TagDetailsExtension : RegistryExtension
{
    public override string Key => "TagDetails";
    public override ExtensionNamespace Namespace => ExtensionNamespace.Registry;
    public override string Document => "_registry/tags.md";

    public const string MediaType = "application/vnd.registry.tag-details.v1+json";

    public override void ConfigureServices(IServiceCollection services, IConfigurationSection options)
    {
        services.AddOptions<TagDetailsOptions>().Bind(options).ValidateOnStart();
        services.AddSingleton<IValidateOptions<TagDetailsOptions>, TagDetailsOptionsValidator>();
        services.AddSingleton<ManifestSummaries>();
    }

    public override IEnumerable<ExtensionEndpoint> Endpoints =>
    [
        new(ExtensionScope.Repository, "tags", "details", HttpMethods.Get, RequiredAccess.Pull, DetailsAsync),
    ];

    private static async Task<IResult> DetailsAsync(ExtensionRequest request)
    {
        var repository = request.Repository!.Value;
        var limits = request.RequestServices.GetRequiredService<IOptions<TagDetailsOptions>>().Value;
        if (!Responses.TryReadPagination(request.Http.Request,
                Math.Min(limits.MaxPageSize, request.Services.Options.Pagination.MaxPageSize), out var n, out var last))
            return new RegistryError(ErrorCode.InvalidParameters, "n must be a non-negative integer");

        var page = await request.RequestServices.GetRequiredService<ITagDetailsReadModel>()
            .ListTagDetailsAsync(repository, n, last, request.Aborted);
        var rows = page.Items.ToList();
        var more = page.HasMore;

        // The work one request may cause is bounded: once the manifests and configs read for this page reach the
        // budget, the page ends there (with at least one tag) and the Link header points at the rest.
        var summaries = request.RequestServices.GetRequiredService<ManifestSummaries>();
        var budget = new ParseBudget(limits.MaxBytesPerRequest);
        var details = new List<(TagDetail Row, ManifestSummary Summary)>(rows.Count);
        foreach (var row in rows)
        {
            if (details.Count > 0 && budget.Exhausted) break;
            details.Add((row, await summaries.GetAsync(row.Digest, budget, request.Aborted)));
        }
        if (details.Count < rows.Count)
        {
            more = true;
            rows.RemoveRange(details.Count, rows.Count - details.Count);
        }

        return Responses.Json(writer =>
        {
            writer.WriteStartObject();
            writer.WriteString("name", repository.Value);
            writer.WriteStartArray("tags");
            foreach (var (row, summary) in details)
            {
                writer.WriteStartObject();
                writer.WriteString("name", row.Tag.Value);
                writer.WriteString("digest", row.Digest.ToString());
                writer.WriteString("mediaType", row.MediaType);
                if (row.ArtifactType is null) writer.WriteNull("artifactType");
                else writer.WriteString("artifactType", row.ArtifactType);
                writer.WriteNumber("size", summary.TotalSize);
                writer.WriteStartArray("platforms");
                foreach (var platform in summary.Platforms) platform.WriteTo(writer);
                writer.WriteEndArray();
                if (summary.Created is null) writer.WriteNull("created");
                else writer.WriteString("created", summary.Created);
                writer.WriteString("pushed", row.UpdatedAt);
                writer.WriteEndObject();
            }
            writer.WriteEndArray();
            writer.WriteEndObject();
        }, MediaType, response =>
        {
            if (more) Responses.NextLink(response, $"/v2/{repository}/_registry/tags/details", n, rows[^1].Tag.Value);
        });
    }
}

/// <summary><c>Registry:Extensions:TagDetails:*</c>: what one tag details request may cost.</summary>
public sealed class TagDetailsOptions
{
    /// <summary>Most tags in one page, whatever <c>n</c> asks (and never more than Registry:Pagination:MaxPageSize).</summary>
    public int MaxPageSize { get; set; } = 100;

    /// <summary>Manifest and config bytes one request may read and parse; the page ends early when they are spent.</summary>
    public long MaxBytesPerRequest { get; set; } = 16 * 1024 * 1024;
}

internal sealed class TagDetailsOptionsValidator : IValidateOptions<TagDetailsOptions>
{
    public ValidateOptionsResult Validate(string? name, TagDetailsOptions options)
    {
        var errors = new List<string>();
        if (options.MaxPageSize < 1) errors.Add("Registry:Extensions:TagDetails:MaxPageSize must be at least 1.");
        if (options.MaxBytesPerRequest < 1) errors.Add("Registry:Extensions:TagDetails:MaxBytesPerRequest must be at least 1.");
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
