using Npgsql;

namespace Registry.Storage.Metadata.Postgres;

/// <summary>
/// "Something changed" across processes: one connection per process LISTENs on the store's channel, and every
/// changing transaction NOTIFYs in the same transaction (PostgreSQL delivers it only if the change commits). A
/// notification, a local commit, or a lost and re-established connection (changes may have been missed meanwhile)
/// completes the current waiters; it is a hint to read again, never a guarantee of an event.
/// </summary>
internal sealed class ChangeListener(NpgsqlDataSource source) : IAsyncDisposable
{
    private static readonly TimeSpan ReconnectDelay = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan IdleCheck = TimeSpan.FromMinutes(1);
    private readonly CancellationTokenSource _stopping = new();
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task? _loop;

    /// <summary>Starts listening; completes once the first LISTEN is in place (changes after it are seen).</summary>
    public Task StartAsync(CancellationToken ct)
    {
        _loop = Task.Run(() => ListenAsync(_stopping.Token));
        return _listening.Task.WaitAsync(ct);
    }

    public Task WaitAsync(CancellationToken ct) => Volatile.Read(ref _changed).Task.WaitAsync(ct);

    public void Wake() =>
        Interlocked.Exchange(ref _changed, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously))
            .TrySetResult();

    private async Task ListenAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await using var connection = await source.OpenConnectionAsync(ct);
                connection.Notification += (_, _) => Wake();
                await using (var listen = new NpgsqlCommand($"LISTEN {PostgresMetadataStore.Channel}", connection))
                    await listen.ExecuteNonQueryAsync(ct);
                // Listening again after a break: whatever committed while nobody listened is announced by this wake.
                if (!_listening.TrySetResult()) Wake();
                // A quiet minute ends with a round trip: a connection the network dropped without a word (no RST)
                // would otherwise wait for ever, and this store would stop hearing the other replicas.
                while (true)
                    if (!await connection.WaitAsync(IdleCheck, ct))
                        await using (var ping = new NpgsqlCommand("SELECT 1", connection))
                            await ping.ExecuteScalarAsync(ct);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is NpgsqlException or IOException or TimeoutException or InvalidOperationException)
            {
                // The first connection failing fails the store's opening; later ones are retried for ever.
                _listening.TrySetException(e);
                try
                {
                    await Task.Delay(ReconnectDelay, ct);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        if (_loop is not null) await _loop;
        _stopping.Dispose();
    }
}
