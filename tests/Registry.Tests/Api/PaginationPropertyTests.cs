using System.Net;
using Registry.Tests.Infrastructure;

namespace Registry.Tests.Api;

/// <summary>
/// Property: following the <c>Link</c> header from the first page, whatever the page size, yields every tag (and
/// every repository) exactly once, in lexical order, and the last page has no link.
/// </summary>
/// <remarks>Against one in-process server.</remarks>
public sealed class PaginationPropertyTests(RegistryFixture fixture) : PaginationPropertyTestsBase(fixture), IClassFixture<RegistryFixture>;

/// <summary>
/// Property: following the <c>Link</c> header from the first page, whatever the page size, yields every tag (and
/// every repository) exactly once, in lexical order, and the last page has no link.
/// </summary>
/// <remarks>Against one server, and through the scale-out stack's proxy (<c>Stack.ScaleOutPaginationPropertyTests</c>).</remarks>
public abstract class PaginationPropertyTestsBase(IRegistryTarget registry)
{
    private HttpClient Client => registry.Client;

    private async Task<List<string>> WalkAsync(string first, string property)
    {
        var items = new List<string>();
        string? next = first;
        for (var pages = 0; next is not null; pages++)
        {
            pages.Should().BeLessThan(1000, "pagination must end");
            var response = await Client.GetAsync(next);
            response.StatusCode.Should().Be(HttpStatusCode.OK);
            var json = System.Text.Json.JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
            items.AddRange(json.GetProperty(property).EnumerateArray().Select(e => e.GetString()!));
            next = null;
            if (response.Headers.TryGetValues("Link", out var links))
            {
                var link = links.Single();
                link.Should().MatchRegex("^<[^>]+>; rel=\"next\"$");
                next = link[1..link.IndexOf('>')].TrimStart('/');
            }
        }
        return items;
    }

    [Fact]
    public async Task Walking_tag_pages_of_any_size_yields_every_tag_once_in_order()
    {
        var random = new Random(42);
        var repo = RegistryFixture.NewRepo("pages");
        var (bytes, _) = await Client.PushImageAsync(repo, "seed");
        var alphabet = "abcXYZ019._-";
        var tags = new HashSet<string> { "seed" };
        while (tags.Count < 60)
            tags.Add(new string(Enumerable.Range(0, random.Next(1, 8)).Select(_ => alphabet[random.Next(alphabet.Length)]).ToArray())
                .TrimStart('.', '-'));
        tags.RemoveWhere(t => t.Length == 0);
        await Task.WhenAll(tags.Where(t => t != "seed").Select(t => Client.PutManifestAsync(repo, t, bytes)));
        var expected = tags.Order(StringComparer.Ordinal).ToList();

        foreach (var n in new[] { 1, 2, 3, 7, 59, 60, 61, 1000 })
            (await WalkAsync($"v2/{repo}/tags/list?n={n}", "tags")).Should().Equal(expected, $"with n={n}");
    }

    [Fact]
    public async Task Walking_catalog_pages_yields_every_repository_once_in_order()
    {
        var all = await WalkAsync("v2/_catalog?n=1000", "repositories");
        foreach (var n in new[] { 1, 4, 9 })
            (await WalkAsync($"v2/_catalog?n={n}", "repositories")).Should().Equal(all, $"with n={n}");
        all.Should().BeInAscendingOrder(StringComparer.Ordinal);
    }
}
