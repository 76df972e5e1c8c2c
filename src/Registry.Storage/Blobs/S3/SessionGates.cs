namespace Registry.Storage.Blobs.S3;

/// <summary>
/// Serialises this process's requests to one upload session (one <see cref="SemaphoreSlim"/> per session), keeping a
/// session's entry only while a request holds or waits for it. Behind a load balancer a session's requests reach
/// every replica and only one of them sees the commit or cancel, so an entry removed only there would stay forever
/// in the others (one per session ever appended to). Across replicas the conditional state write is what serialises.
/// </summary>
internal sealed class SessionGates
{
    private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);

    /// <summary>Sessions with a request of this process inside or waiting (for tests: nothing stays behind).</summary>
    public int Count
    {
        get
        {
            lock (_entries) return _entries.Count;
        }
    }

    /// <summary>Waits for the session's gate; disposing the result lets the next request in.</summary>
    public async ValueTask<Held> EnterAsync(string session, CancellationToken ct)
    {
        var entry = Join(session, create: true)!;
        try
        {
            await entry.Gate.WaitAsync(ct);
        }
        catch
        {
            Leave(session, entry);
            throw;
        }
        return new Held(this, session, entry);
    }

    /// <summary>Returns once no request of this process is inside the session's gate (at once when none is).</summary>
    public async ValueTask WaitIdleAsync(string session, CancellationToken ct)
    {
        if (Join(session, create: false) is not { } entry) return;
        try
        {
            await entry.Gate.WaitAsync(ct);
            entry.Gate.Release();
        }
        finally
        {
            Leave(session, entry);
        }
    }

    private Entry? Join(string session, bool create)
    {
        lock (_entries)
        {
            if (!_entries.TryGetValue(session, out var entry))
            {
                if (!create) return null;
                _entries[session] = entry = new Entry();
            }
            entry.Users++;
            return entry;
        }
    }

    private void Leave(string session, Entry entry)
    {
        lock (_entries)
        {
            if (--entry.Users == 0) _entries.Remove(session);
        }
    }

    internal sealed class Entry
    {
        public readonly SemaphoreSlim Gate = new(1, 1);
        public int Users;
    }

    internal readonly struct Held : IDisposable
    {
        private readonly SessionGates _owner;
        private readonly string _session;
        private readonly Entry _entry;

        internal Held(SessionGates owner, string session, Entry entry)
        {
            _owner = owner;
            _session = session;
            _entry = entry;
        }

        public void Dispose()
        {
            _entry.Gate.Release();
            _owner.Leave(_session, _entry);
        }
    }
}
