using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;

namespace Registry.Api.Auth;

/// <summary>
/// Users and bcrypt hashes from an htpasswd file (<c>htpasswd -B</c>: <c>user:$2y$…</c> lines), re-read when the file
/// changes (checked at most once a second), with a short-lived cache of verified pairs so that only the first request
/// of a client pays for bcrypt. The cache key is an HMAC of user and password under a key that lives only in this
/// process (<see cref="SecretHasher"/>), never the password itself; the cache is dropped whenever the file changes.
/// </summary>
internal sealed class HtpasswdUsers
{

    private readonly string _path;
    private readonly TimeSpan _cacheDuration;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<SecretHash, DateTimeOffset> _verified = new();
    private readonly Lock _reload = new();
    private volatile IReadOnlyDictionary<string, string> _users = new Dictionary<string, string>();
    /// <summary>A bcrypt hash of a random password at the file's cost: unknown users cost as much as known ones.</summary>
    private volatile Lazy<string> _dummyHash = new(() => "");
    private (DateTime Written, long Length) _version;
    private long _nextCheck;
    private long _versionNumber;

    public HtpasswdUsers(string path, TimeSpan cacheDuration, TimeProvider time, ILogger logger)
    {
        _path = path;
        _cacheDuration = cacheDuration;
        _time = time;
        _logger = logger;
        Reload(force: true);
    }

    /// <summary>Is <paramref name="password"/> the password of <paramref name="user"/> in the current file?</summary>
    public bool Verify(string user, string password)
    {
        Reload(force: false);
        var key = CacheKey(user, password);
        var now = _time.GetUtcNow();
        if (_verified.TryGetValue(key, out var until) && until > now) return true;
        var users = _users;
        var known = users.TryGetValue(user, out var hash);
        bool ok;
        try
        {
            ok = BCrypt.Net.BCrypt.Verify(password, known ? hash! : _dummyHash.Value) && known;
        }
        catch (BCrypt.Net.SaltParseException)
        {
            ok = false;
        }
        if (ok && _cacheDuration > TimeSpan.Zero)
        {
            if (_verified.Count > 10_000) _verified.Clear();
            _verified[key] = now + _cacheDuration;
        }
        return ok;
    }

    /// <summary>Is the user (still) in the file? (Refresh tokens are honoured only for current users.)</summary>
    public bool Exists(string user)
    {
        Reload(force: false);
        return _users.ContainsKey(user);
    }

    private static SecretHash CacheKey(string user, string password) => SecretHasher.Of(user + "\0" + password);

    /// <summary>Changes whenever the file is read again: entries of callers' caches made before are stale.</summary>
    public long Version
    {
        get
        {
            Reload(force: false);
            return Interlocked.Read(ref _versionNumber);
        }
    }

    /// <summary>How long a verified pair may be remembered.</summary>
    public TimeSpan CacheDuration => _cacheDuration;

    private void Reload(bool force)
    {
        var now = Environment.TickCount64;
        if (!force && now < Interlocked.Read(ref _nextCheck)) return;
        lock (_reload)
        {
            if (!force && now < _nextCheck) return;
            _nextCheck = now + 1000;
            try
            {
                var info = new FileInfo(_path);
                if (!info.Exists)
                {
                    if (force) throw new FileNotFoundException($"htpasswd file '{_path}' not found");
                    _logger.LogWarning("htpasswd file {Path} is missing; keeping the users read before", _path);
                    return;
                }
                var version = (info.LastWriteTimeUtc, info.Length);
                if (!force && version == _version) return;
                var users = Parse(File.ReadAllLines(_path));
                // Made when an unknown user first tries, not at start-up (a bcrypt hash costs milliseconds).
                var cost = users.Values.Select(Cost).FirstOrDefault(10);
                _dummyHash = new Lazy<string>(() =>
                    BCrypt.Net.BCrypt.HashPassword(Convert.ToHexString(RandomNumberGenerator.GetBytes(16)), cost));
                _users = users;
                _version = version;
                _verified.Clear();
                Interlocked.Increment(ref _versionNumber);
                _logger.LogInformation("htpasswd file {Path}: {Count} users", _path, _users.Count);
            }
            catch (IOException e) when (!force)
            {
                _logger.LogWarning(e, "htpasswd file {Path} could not be read; keeping the users read before", _path);
            }
        }
    }

    /// <summary>The work factor of <c>$2y$05$…</c>.</summary>
    private static int Cost(string hash) =>
        hash.Length > 7 && int.TryParse(hash.AsSpan(4, 2), out var cost) && cost is >= 4 and <= 31 ? cost : 10;

    private Dictionary<string, string> Parse(string[] lines)
    {
        var users = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i < lines.Length; i++)
        {
            var line = lines[i].Trim();
            if (line.Length == 0 || line.StartsWith('#')) continue;
            var colon = line.IndexOf(':');
            if (colon <= 0)
            {
                _logger.LogWarning("htpasswd file {Path} line {Line}: not user:hash; ignored", _path, i + 1);
                continue;
            }
            var hash = line[(colon + 1)..];
            if (!hash.StartsWith("$2a$", StringComparison.Ordinal) && !hash.StartsWith("$2b$", StringComparison.Ordinal)
                && !hash.StartsWith("$2y$", StringComparison.Ordinal))
            {
                _logger.LogWarning("htpasswd file {Path} line {Line}: only bcrypt entries (htpasswd -B) are supported; user ignored",
                    _path, i + 1);
                continue;
            }
            users[line[..colon]] = hash;
        }
        return users;
    }
}

/// <summary>
/// Failed logins per client address in a sliding window; past the limit the address gets 429 until its oldest
/// failure leaves the window. Successful logins do not count.
/// </summary>
internal sealed class LoginThrottle(LoginLimitSettings settings, TimeProvider time)
{
    private readonly ConcurrentDictionary<string, Queue<DateTimeOffset>> _failures = new(StringComparer.Ordinal);

    /// <summary>How long the client must wait before trying again, or null when it may try now.</summary>
    public TimeSpan? RetryAfter(string client)
    {
        if (!_failures.TryGetValue(client, out var failures)) return null;
        lock (failures)
        {
            var now = time.GetUtcNow();
            while (failures.Count > 0 && failures.Peek() <= now - settings.Window) failures.Dequeue();
            if (failures.Count < settings.Limit) return null;
            return failures.Peek() + settings.Window - now;
        }
    }

    public void Failed(string client)
    {
        if (_failures.Count > 100_000) _failures.Clear();
        var failures = _failures.GetOrAdd(client, _ => new Queue<DateTimeOffset>());
        lock (failures)
        {
            failures.Enqueue(time.GetUtcNow());
            while (failures.Count > settings.Limit) failures.Dequeue();
        }
    }
}
