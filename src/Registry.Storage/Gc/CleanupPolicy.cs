using Registry.Storage.Metadata;
using Registry.Storage.Model;

namespace Registry.Storage.Gc;

/// <summary>
/// One cleanup policy: in repositories matching <see cref="Repositories"/>, of the tags matching <see cref="Tags"/> and
/// no <see cref="Protect"/> pattern, keep the <see cref="KeepLast"/> most recently pushed and delete the others that
/// are older than <see cref="OlderThan"/> (either may be absent, not both).
/// </summary>
public sealed record CleanupPolicy(IReadOnlyList<string> Repositories, IReadOnlyList<string> Tags, int? KeepLast,
    TimeSpan? OlderThan, IReadOnlyList<string> Protect)
{
    public bool AppliesTo(RepositoryName repository) => Repositories.Any(p => Glob.Matches(p, repository.Value));

    private bool Selects(Tag tag) =>
        (Tags.Count == 0 || Tags.Any(p => Glob.Matches(p, tag.Value))) && !IsProtected(tag);

    public bool IsProtected(Tag tag) => Protect.Any(p => Glob.Matches(p, tag.Value));

    /// <summary>
    /// The tags of one repository that the policies delete: those some applicable policy deletes, except those any
    /// applicable policy protects or keeps. Tags are ranked by push time, newest first (ties by name).
    /// </summary>
    public static IReadOnlyList<TagRecord> TagsToDelete(IReadOnlyList<CleanupPolicy> policies, RepositoryName repository,
        IReadOnlyList<TagRecord> tags, DateTimeOffset now)
    {
        var applicable = policies.Where(p => p.AppliesTo(repository)).ToList();
        if (applicable.Count == 0) return [];
        var deleted = new HashSet<Tag>();
        var kept = new HashSet<Tag>();
        foreach (var policy in applicable)
        {
            var ranked = tags.Where(t => policy.Selects(t.Name))
                .OrderByDescending(t => t.UpdatedAt).ThenBy(t => t.Name.Value, StringComparer.Ordinal).ToList();
            for (var i = 0; i < ranked.Count; i++)
            {
                var tag = ranked[i];
                if (policy.KeepLast is { } keep && i < keep) kept.Add(tag.Name);
                else if (policy.OlderThan is not { } age || tag.UpdatedAt < now - age) deleted.Add(tag.Name);
                else kept.Add(tag.Name);
            }
            foreach (var tag in tags)
                if (policy.IsProtected(tag.Name)) kept.Add(tag.Name);
        }
        return tags.Where(t => deleted.Contains(t.Name) && !kept.Contains(t.Name)).ToList();
    }
}
