using System.Text;
using Registry.Storage.Metadata;
using Registry.Storage.Model;

namespace Registry.Tests.Storage;

/// <summary>
/// Tag lists are served from a cache in the metadata store: every change to a repository's tags must show in the next
/// listing, whatever the order of reads and writes, and lists too big for the cache must still come out whole.
/// </summary>
public sealed class TagListCacheTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("tagcache-").FullName;
    private readonly List<SqliteMetadataStore> _stores = [];

    public void Dispose()
    {
        foreach (var store in _stores) store.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    private SqliteMetadataStore Store(int capacity = 100_000)
    {
        var store = new SqliteMetadataStore(Path.Combine(_dir, $"metadata-{_stores.Count}.db"), capacity);
        _stores.Add(store);
        return store;
    }

    private static RepositoryName Repo(string name) => RepositoryName.TryParse(name, out var n) ? n : throw new ArgumentException(name);

    private static async Task<Digest> PutAsync(SqliteMetadataStore store, RepositoryName repo, string content, params string[] tags)
    {
        var digest = Digest.Compute(DigestAlgorithm.Sha256, Encoding.UTF8.GetBytes(content));
        var record = new ManifestRecord(digest, "application/vnd.oci.image.manifest.v1+json", content.Length, null, null,
            null, DateTimeOffset.UtcNow);
        var parsed = tags.Select(t => Tag.TryParse(t, out var tag) ? tag : throw new ArgumentException(t)).ToList();
        var result = await store.PutManifestAsync(repo, record, [], parsed, default);
        result.Status.Should().Be(PutManifestStatus.Stored);
        return digest;
    }

    private static async Task<List<string>> AllTagsAsync(SqliteMetadataStore store, RepositoryName repo, int pageSize)
    {
        var all = new List<string>();
        string? last = null;
        while (true)
        {
            var page = await store.ListTagsAsync(repo, pageSize, last, default);
            all.AddRange(page.Items);
            if (!page.HasMore) return all;
            page.Items.Should().HaveCount(pageSize);
            last = page.Items[^1];
        }
    }

    [Fact]
    public async Task Every_change_to_tags_shows_in_the_next_listing()
    {
        var store = Store();
        var repo = Repo("cache/app");
        var first = await PutAsync(store, repo, "one", "b", "a");
        (await AllTagsAsync(store, repo, 100)).Should().Equal("a", "b");

        await PutAsync(store, repo, "two", "c");
        (await AllTagsAsync(store, repo, 100)).Should().Equal("a", "b", "c");

        Tag.TryParse("b", out var b).Should().BeTrue();
        (await store.DeleteTagAsync(repo, b, DateTimeOffset.UtcNow, default)).Should().BeTrue();
        (await AllTagsAsync(store, repo, 100)).Should().Equal("a", "c");

        (await store.DeleteManifestAsync(repo, first, DateTimeOffset.UtcNow, default)).Should().BeTrue();
        (await AllTagsAsync(store, repo, 100)).Should().Equal("c");
    }

    [Fact]
    public async Task Pages_from_the_cache_start_after_any_last_value()
    {
        var store = Store();
        var repo = Repo("cache/pages");
        await PutAsync(store, repo, "m", "v1", "v2", "v3", "v4");
        (await AllTagsAsync(store, repo, 3)).Should().Equal("v1", "v2", "v3", "v4");

        var afterMissing = await store.ListTagsAsync(repo, 10, "v2a", default);
        afterMissing.Items.Should().Equal("v3", "v4");
        afterMissing.HasMore.Should().BeFalse();
        (await store.ListTagsAsync(repo, 10, "", default)).Items.Should().HaveCount(4);
        (await store.ListTagsAsync(repo, 10, "~", default)).Items.Should().BeEmpty();
        (await store.ListTagsAsync(repo, 2, "v1", default)).Should().BeEquivalentTo(new { Items = new[] { "v2", "v3" }, HasMore = true });
    }

    [Fact]
    public async Task Repositories_with_more_tags_than_the_cache_holds_are_listed_whole()
    {
        var store = Store(capacity: 5);
        var big = Repo("cache/big");
        var small = Repo("cache/small");
        var expected = Enumerable.Range(0, 12).Select(i => $"t{i:D2}").ToArray();
        await PutAsync(store, big, "big", expected);
        await PutAsync(store, small, "small", "x", "y", "z");

        for (var round = 0; round < 2; round++)
        {
            (await AllTagsAsync(store, big, 5)).Should().Equal(expected);
            (await AllTagsAsync(store, small, 2)).Should().Equal("x", "y", "z");
        }
        await PutAsync(store, big, "big2", "t99");
        (await AllTagsAsync(store, big, 4)).Should().Equal([.. expected, "t99"]);
    }

    [Fact]
    public async Task Listing_while_tags_are_written_never_leaves_a_stale_list()
    {
        var store = Store();
        var repo = Repo("cache/race");
        const int writers = 4, perWriter = 150;
        using var done = new CancellationTokenSource();
        var started = Enumerable.Range(0, 4).Select(_ => new TaskCompletionSource()).ToArray();
        var readers = started.Select(ready => Task.Run(async () =>
        {
            var lists = 0;
            while (!done.IsCancellationRequested)
            {
                await store.ListTagsAsync(repo, 100, null, default);
                ready.TrySetResult();
                lists++;
                await Task.Yield();
            }
            return lists;
        })).ToArray();
        await Task.WhenAll(started.Select(s => s.Task));
        await Task.WhenAll(Enumerable.Range(0, writers).Select(w => Task.Run(async () =>
        {
            for (var i = 0; i < perWriter; i++) await PutAsync(store, repo, $"{w}-{i}", $"w{w}-{i:D3}");
        })));
        await done.CancelAsync();
        await Task.WhenAll(readers);

        var all = await AllTagsAsync(store, repo, 1000);
        all.Should().HaveCount(writers * perWriter).And.BeInAscendingOrder(StringComparer.Ordinal);
    }

    [Fact]
    public void A_list_read_before_a_commit_is_not_kept_after_it()
    {
        var cache = new TagListCache(capacity: 100);
        var readAt = cache.Version;
        cache.Invalidate("repo"); // a write commits while the reader is still reading the old rows
        cache.Store("repo", ["old"], readAt);
        cache.TryGet("repo", out _).Should().BeFalse();

        cache.Store("repo", ["new"], cache.Version);
        cache.TryGet("repo", out var kept).Should().BeTrue();
        kept.Should().Equal("new");
        cache.Invalidate("repo");
        cache.TryGet("repo", out _).Should().BeFalse();
    }

    [Fact]
    public void The_cache_never_holds_more_names_than_its_capacity()
    {
        var cache = new TagListCache(capacity: 5);
        cache.Store("a", ["1", "2", "3"], cache.Version);
        cache.Store("b", ["1", "2", "3"], cache.Version);
        cache.TryGet("a", out _).Should().BeFalse("storing b went past the capacity and started over");
        cache.TryGet("b", out _).Should().BeTrue();
        cache.Store("c", null, cache.Version);
        cache.TryGet("c", out var tooMany).Should().BeTrue();
        tooMany.Should().BeNull("null marks a repository listed from the database");
    }
}
