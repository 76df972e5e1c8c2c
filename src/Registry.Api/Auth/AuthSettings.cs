namespace Registry.Api.Auth;

public enum AuthMode
{
    /// <summary>Open: anyone who reaches the port may do anything (CI, dev stacks).</summary>
    None,
    /// <summary>HTTP Basic against an htpasswd file of bcrypt entries.</summary>
    Htpasswd,
    /// <summary>Docker registry token authentication: Bearer JWTs from the built-in token service or an external issuer.</summary>
    Token,
}

/// <summary><c>Registry:Auth</c>: who may do what (README "Access control").</summary>
public sealed class AuthSettings
{
    public AuthMode Mode { get; set; } = AuthMode.None;

    public HtpasswdSettings Htpasswd { get; set; } = new();

    public TokenSettings Token { get; set; } = new();

    /// <summary>Group name → its users.</summary>
    public Dictionary<string, List<string>> Groups { get; set; } = new();

    /// <summary>
    /// Who may do what where. None configured: every authenticated user may pull, push and delete everything and is an
    /// admin (what registry:2 does); anonymous callers nothing.
    /// </summary>
    public List<AccessRuleSettings> Rules { get; set; } = [];

    /// <summary>Who may use registry-scope operations (event stream, management endpoints).</summary>
    public SubjectSettings Admins { get; set; } = new();

    public LoginLimitSettings FailedLogins { get; set; } = new();

    /// <summary>Does any rule or admin entry exist (else the registry:2 default applies)?</summary>
    public bool HasPolicy => Rules.Count > 0 || Admins.Users.Count > 0 || Admins.Groups.Count > 0;

    internal void Validate(List<string> errors)
    {
        if (Mode == AuthMode.None) return;
        if (Mode == AuthMode.Htpasswd || (Mode == AuthMode.Token && !Token.IsExternal))
        {
            if (string.IsNullOrWhiteSpace(Htpasswd.Path))
                errors.Add($"Registry:Auth:Htpasswd:Path must name the htpasswd file (Registry:Auth:Mode={Mode}).");
            else if (!File.Exists(Htpasswd.Path))
                errors.Add($"Registry:Auth:Htpasswd:Path: no file at '{Htpasswd.Path}'.");
        }
        if (Htpasswd.CacheDuration < TimeSpan.Zero)
            errors.Add("Registry:Auth:Htpasswd:CacheDuration must not be negative.");
        if (Mode == AuthMode.Token)
        {
            if (Token.Lifetime <= TimeSpan.Zero) errors.Add("Registry:Auth:Token:Lifetime must be positive.");
            if (Token.RefreshLifetime <= TimeSpan.Zero) errors.Add("Registry:Auth:Token:RefreshLifetime must be positive.");
            if (Token.ClockSkew < TimeSpan.Zero) errors.Add("Registry:Auth:Token:ClockSkew must not be negative.");
            if (string.IsNullOrWhiteSpace(Token.Service)) errors.Add("Registry:Auth:Token:Service must not be empty.");
            if (string.IsNullOrWhiteSpace(Token.Issuer)) errors.Add("Registry:Auth:Token:Issuer must not be empty.");
            if (Token.IsExternal && string.IsNullOrWhiteSpace(Token.Realm))
                errors.Add("Registry:Auth:Token:Realm must name the external token server's URL.");
            foreach (var (setting, path) in new[] { ("Jwks", Token.Jwks), ("Certificates", Token.Certificates), ("SigningKey", Token.SigningKey) })
                if (!string.IsNullOrWhiteSpace(path) && !File.Exists(path))
                    errors.Add($"Registry:Auth:Token:{setting}: no file at '{path}'.");
        }
        for (var i = 0; i < Rules.Count; i++)
        {
            var rule = Rules[i];
            var at = $"Registry:Auth:Rules:{i}";
            if (rule.Repositories.Count == 0) errors.Add($"{at}:Repositories must list at least one pattern.");
            foreach (var pattern in rule.Repositories)
                if (!RepositoryPattern.IsValid(pattern)) errors.Add($"{at}:Repositories: invalid pattern '{pattern}'.");
            if (rule.Actions.Count == 0) errors.Add($"{at}:Actions must list pull, push, delete or *.");
            foreach (var action in rule.Actions)
                if (!ActionNames.TryParse(action, out _)) errors.Add($"{at}:Actions: unknown action '{action}'.");
            if (rule.Users.Count == 0 && rule.Groups.Count == 0 && !rule.Anonymous)
                errors.Add($"{at} applies to nobody: give Users, Groups or Anonymous=true.");
            if (rule.Anonymous && rule.Actions.Any(a => ActionNames.TryParse(a, out var parsed) && (parsed & ~RegistryActions.Pull) != 0))
                errors.Add($"{at}: anonymous callers may only pull.");
            foreach (var group in rule.Groups)
                if (!Groups.ContainsKey(group)) errors.Add($"{at}:Groups: no group '{group}' in Registry:Auth:Groups.");
        }
        foreach (var group in Admins.Groups)
            if (!Groups.ContainsKey(group)) errors.Add($"Registry:Auth:Admins:Groups: no group '{group}' in Registry:Auth:Groups.");
        if (FailedLogins.Limit < 1) errors.Add("Registry:Auth:FailedLogins:Limit must be at least 1.");
        if (FailedLogins.Window <= TimeSpan.Zero) errors.Add("Registry:Auth:FailedLogins:Window must be positive.");
    }
}

public sealed class HtpasswdSettings
{
    /// <summary>File of <c>user:bcrypt-hash</c> lines as <c>htpasswd -B</c> writes them; re-read when it changes.</summary>
    public string? Path { get; set; }

    public string Realm { get; set; } = "Registry Realm";

    /// <summary>How long a verified user/password pair is remembered (bcrypt costs ~50–100 ms a check); 0 turns it off.</summary>
    public TimeSpan CacheDuration { get; set; } = TimeSpan.FromMinutes(1);
}

public sealed class TokenSettings
{
    /// <summary>Where clients get tokens; default: this registry's own <c>/auth/token</c>. Required for an external issuer.</summary>
    public string? Realm { get; set; }

    /// <summary>The <c>service</c> of the challenge and the tokens' audience.</summary>
    public string Service { get; set; } = "registry";

    /// <summary>The tokens' <c>iss</c>: the built-in service's name, or the external issuer to accept.</summary>
    public string Issuer { get; set; } = "registry-token-issuer";

    /// <summary>How long a built-in access token is valid.</summary>
    public TimeSpan Lifetime { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>How long a built-in refresh token (OAuth2 <c>access_type=offline</c>) is valid.</summary>
    public TimeSpan RefreshLifetime { get; set; } = TimeSpan.FromDays(7);

    /// <summary>Allowance for clocks that disagree, on <c>exp</c> and <c>nbf</c>.</summary>
    public TimeSpan ClockSkew { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>PEM private key (EC P-256 or RSA) the built-in service signs with; default: generated into the data folder.</summary>
    public string? SigningKey { get; set; }

    /// <summary>External issuer: a JWKS file with its public keys.</summary>
    public string? Jwks { get; set; }

    /// <summary>External issuer: PEM certificates whose keys sign tokens, or roots of the chains tokens carry in <c>x5c</c>.</summary>
    public string? Certificates { get; set; }

    /// <summary>Tokens come from another server: no built-in token service.</summary>
    public bool IsExternal => !string.IsNullOrWhiteSpace(Jwks) || !string.IsNullOrWhiteSpace(Certificates);
}

/// <summary>One rule: these callers may do these actions on repositories matching these patterns.</summary>
public sealed class AccessRuleSettings
{
    /// <summary>Glob patterns: <c>*</c> within one path component, <c>**</c> across components (<c>team/**</c>).</summary>
    public List<string> Repositories { get; set; } = [];

    /// <summary>User names; <c>*</c> is every authenticated user.</summary>
    public List<string> Users { get; set; } = [];

    public List<string> Groups { get; set; } = [];

    /// <summary>Callers without credentials too (pull only): public repositories.</summary>
    public bool Anonymous { get; set; }

    /// <summary><c>pull</c>, <c>push</c>, <c>delete</c> or <c>*</c>.</summary>
    public List<string> Actions { get; set; } = [];
}

public sealed class SubjectSettings
{
    public List<string> Users { get; set; } = [];
    public List<string> Groups { get; set; } = [];
}

public sealed class LoginLimitSettings
{
    /// <summary>Failed logins from one client address within <see cref="Window"/> before it gets 429.</summary>
    public int Limit { get; set; } = 10;

    public TimeSpan Window { get; set; } = TimeSpan.FromMinutes(1);
}
