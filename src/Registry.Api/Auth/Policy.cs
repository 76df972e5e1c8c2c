using Registry.Storage.Model;

namespace Registry.Api.Auth;

/// <summary>What may be done to a repository, as the token spec names it (<c>pull</c>, <c>push</c>, <c>delete</c>).</summary>
[Flags]
public enum RegistryActions
{
    None = 0,
    Pull = 1,
    Push = 2,
    Delete = 4,
    All = Pull | Push | Delete,
}

/// <summary>The token spec's action names.</summary>
public static class ActionNames
{
    /// <summary><c>pull</c>, <c>push</c>, <c>delete</c> or <c>*</c> (all three).</summary>
    public static bool TryParse(string? name, out RegistryActions actions)
    {
        actions = name switch
        {
            "pull" => RegistryActions.Pull,
            "push" => RegistryActions.Push,
            "delete" => RegistryActions.Delete,
            "*" => RegistryActions.All,
            _ => RegistryActions.None,
        };
        return actions != RegistryActions.None;
    }

    public static IEnumerable<string> Names(RegistryActions actions)
    {
        if (actions.HasFlag(RegistryActions.Pull)) yield return "pull";
        if (actions.HasFlag(RegistryActions.Push)) yield return "push";
        if (actions.HasFlag(RegistryActions.Delete)) yield return "delete";
    }
}

/// <summary>
/// A repository glob: <c>*</c> matches within one path component, <c>**</c> across components, anything else itself.
/// <c>team/**</c> matches <c>team/app</c> and <c>team/a/b</c> but not <c>team</c>; <c>**</c> matches every name.
/// Matching is a dynamic programme over pattern and name (no backtracking blow-up whatever the pattern).
/// </summary>
public sealed class RepositoryPattern
{
    private enum Kind { Literal, Star, DoubleStar }

    private readonly (Kind Kind, char Char)[] _tokens;

    private RepositoryPattern(string pattern, (Kind, char)[] tokens)
    {
        Pattern = pattern;
        _tokens = tokens;
    }

    public string Pattern { get; }

    public bool Matches(RepositoryName name)
    {
        var text = name.Value.AsSpan();
        // reachable[j]: the tokens so far can match text[..j]. Names are at most 255 characters: two rows on the stack.
        Span<bool> reachable = stackalloc bool[text.Length + 1];
        Span<bool> next = stackalloc bool[text.Length + 1];
        reachable.Clear();
        reachable[0] = true;
        foreach (var (kind, c) in _tokens)
        {
            for (var j = 0; j <= text.Length; j++)
            {
                next[j] = kind == Kind.Literal
                    ? j > 0 && reachable[j - 1] && text[j - 1] == c
                    // A star matches nothing, or extends its match by one character (never '/' for a single star).
                    : reachable[j] || (j > 0 && next[j - 1] && (kind == Kind.DoubleStar || text[j - 1] != '/'));
            }
            var swap = reachable;
            reachable = next;
            next = swap;
        }
        return reachable[text.Length];
    }

    public static bool IsValid(string? pattern) => TryParse(pattern, out _);

    public static bool TryParse(string? pattern, out RepositoryPattern parsed)
    {
        parsed = null!;
        if (string.IsNullOrWhiteSpace(pattern) || pattern.Length > 512) return false;
        var tokens = new List<(Kind, char)>();
        for (var i = 0; i < pattern.Length; i++)
        {
            var c = pattern[i];
            if (c == '*' && i + 1 < pattern.Length && pattern[i + 1] == '*')
            {
                tokens.Add((Kind.DoubleStar, c));
                i++;
            }
            else if (c == '*') tokens.Add((Kind.Star, c));
            else if (char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c is '.' or '_' or '-' or '/') tokens.Add((Kind.Literal, c));
            else return false;
        }
        parsed = new RepositoryPattern(pattern, tokens.ToArray());
        return true;
    }
}

/// <summary>Who is calling: a user (with the groups the configuration puts them in), or anonymous.</summary>
public sealed class Caller
{
    public static readonly Caller Anonymous = new(null, new HashSet<string>());

    public Caller(string? name, IReadOnlySet<string> groups, IReadOnlyList<TokenGrant>? grants = null)
    {
        Name = name;
        Groups = groups;
        Grants = grants;
    }

    /// <summary>The user name; null when anonymous.</summary>
    public string? Name { get; }

    public IReadOnlySet<string> Groups { get; }

    /// <summary>With token authentication: exactly what the token's <c>access</c> claim grants; null otherwise.</summary>
    public IReadOnlyList<TokenGrant>? Grants { get; }

    public bool IsAnonymous => Name is null;
}

/// <summary>One entry of a token's <c>access</c> claim: <c>{"type":"repository","name":"team/app","actions":["pull"]}</c>.</summary>
public sealed record TokenGrant(string Type, string Name, IReadOnlyList<string> Actions)
{
    public const string RepositoryType = "repository";
    public const string RegistryType = "registry";
    /// <summary><c>registry:catalog:*</c>: registry-wide listings (the token spec's catalog scope).</summary>
    public const string Catalog = "catalog";
    /// <summary><c>registry:admin:*</c>: this registry's registry-scope operations.</summary>
    public const string Admin = "admin";

    public bool Allows(string type, string name, string action) =>
        Type == type && Name == name && (Actions.Contains(action) || Actions.Contains("*"));
}

/// <summary>
/// The configured policy, compiled once: users and groups → repository patterns → actions, anonymous pull per
/// pattern, and the admin role. Without rules: the registry:2 behaviour (every authenticated user may do everything).
/// </summary>
public sealed class AccessRules
{
    private sealed record Rule(IReadOnlyList<RepositoryPattern> Patterns, HashSet<string> Users, HashSet<string> Groups,
        bool Anonymous, RegistryActions Actions);

    private readonly List<Rule> _rules = [];
    private readonly Dictionary<string, HashSet<string>> _groupsOfUser = new(StringComparer.Ordinal);
    private readonly HashSet<string> _adminUsers;
    private readonly HashSet<string> _adminGroups;
    private readonly bool _openToAuthenticated;

    public AccessRules(AuthSettings settings)
    {
        foreach (var (group, users) in settings.Groups)
        foreach (var user in users)
        {
            if (!_groupsOfUser.TryGetValue(user, out var groups)) _groupsOfUser[user] = groups = new(StringComparer.Ordinal);
            groups.Add(group);
        }
        foreach (var rule in settings.Rules)
        {
            var actions = RegistryActions.None;
            foreach (var action in rule.Actions)
                if (ActionNames.TryParse(action, out var parsed)) actions |= parsed;
            _rules.Add(new Rule(
                rule.Repositories.Select(p => RepositoryPattern.TryParse(p, out var pattern) ? pattern : null)
                    .OfType<RepositoryPattern>().ToList(),
                rule.Users.ToHashSet(StringComparer.Ordinal), rule.Groups.ToHashSet(StringComparer.Ordinal),
                rule.Anonymous, actions));
        }
        _adminUsers = settings.Admins.Users.ToHashSet(StringComparer.Ordinal);
        _adminGroups = settings.Admins.Groups.ToHashSet(StringComparer.Ordinal);
        _openToAuthenticated = !settings.HasPolicy;
        AllowsAnonymous = _rules.Any(r => r.Anonymous);
    }

    /// <summary>Does any repository allow anonymous pulls (then registry-wide listings answer anonymous callers too)?</summary>
    public bool AllowsAnonymous { get; }

    public IReadOnlySet<string> GroupsOf(string user) =>
        _groupsOfUser.TryGetValue(user, out var groups) ? groups : EmptyGroups;

    private static readonly HashSet<string> EmptyGroups = [];

    public RegistryActions ActionsOn(Caller caller, RepositoryName repository)
    {
        if (caller.IsAnonymous)
        {
            var anonymous = RegistryActions.None;
            foreach (var rule in _rules)
                if (rule.Anonymous && rule.Patterns.Any(p => p.Matches(repository))) anonymous |= rule.Actions;
            return anonymous & RegistryActions.Pull;
        }
        if (_openToAuthenticated) return RegistryActions.All;
        var actions = RegistryActions.None;
        foreach (var rule in _rules)
        {
            if (!Applies(rule, caller) || !rule.Patterns.Any(p => p.Matches(repository))) continue;
            actions |= rule.Actions;
            if (actions == RegistryActions.All) break;
        }
        return actions;
    }

    private static bool Applies(Rule rule, Caller caller) =>
        rule.Anonymous
        || rule.Users.Contains("*")
        || rule.Users.Contains(caller.Name!)
        || caller.Groups.Any(rule.Groups.Contains);

    public bool IsAdmin(Caller caller) =>
        !caller.IsAnonymous
        && (_openToAuthenticated || _adminUsers.Contains(caller.Name!) || caller.Groups.Any(_adminGroups.Contains));
}
