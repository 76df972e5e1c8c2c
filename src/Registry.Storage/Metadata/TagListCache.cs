using System.Collections.Concurrent;

namespace Registry.Storage.Metadata;

/// <summary>
/// Each repository's sorted tag names, read from the database once and kept until a write to that repository's tags
/// commits. Listing tags is the read clients repeat most (every CI job that resolves "latest" or walks versions), and
/// it is a sorted read of every row; served from here, a page is a binary search and a slice.
/// <para>
/// Staleness: a reader notes <see cref="Version"/> before it queries and only stores what it read if no write
/// invalidated anything in between (checked under the same lock invalidation takes), so a list read before a commit
/// can never be stored after that commit's invalidation. Memory: at most <c>capacity</c> names in all; past that,
/// the cache starts over.
/// </para>
/// </summary>
internal sealed class TagListCache(int capacity)
{
    private readonly ConcurrentDictionary<string, string[]?> _lists = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();
    private long _version;
    private int _names;

    /// <summary>The largest list worth keeping: bigger ones are read page by page from the database.</summary>
    public int Capacity => capacity;

    public long Version => Volatile.Read(ref _version);

    /// <summary>A cached list; found with null <paramref name="tags"/>: the repository has more than the capacity.</summary>
    public bool TryGet(string repository, out string[]? tags) => _lists.TryGetValue(repository, out tags);

    /// <summary>
    /// Keeps <paramref name="tags"/> (null: too many to keep) unless a write was committed since
    /// <paramref name="readAt"/>.
    /// </summary>
    public void Store(string repository, string[]? tags, long readAt)
    {
        var length = tags?.Length ?? 0;
        lock (_gate)
        {
            if (_version != readAt) return;
            if (_names + length > capacity)
            {
                _lists.Clear();
                _names = 0;
            }
            if (_lists.TryAdd(repository, tags)) _names += length;
        }
    }

    public void Invalidate(string repository)
    {
        lock (_gate)
        {
            _version++;
            if (_lists.TryRemove(repository, out var removed)) _names -= removed?.Length ?? 0;
        }
    }
}
