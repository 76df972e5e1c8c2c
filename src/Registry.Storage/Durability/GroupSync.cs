namespace Registry.Storage.Durability;

/// <summary>
/// Group commit for one file or folder: every caller of <see cref="SyncAsync"/> returns only after an fsync that
/// started after its call, and callers that arrive while an fsync runs share the next one. N concurrent publishes
/// then cost one fsync round instead of N, and the order "my write, then a durable fsync, then my answer" holds for
/// each of them.
/// </summary>
internal sealed class GroupSync(Action sync)
{
    private readonly object _gate = new();
    private TaskCompletionSource? _next;
    private bool _running;

    public Task SyncAsync()
    {
        lock (_gate)
        {
            _next ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var task = _next.Task;
            if (!_running)
            {
                _running = true;
                _ = Task.Run(RunAsync);
            }
            return task;
        }
    }

    private void RunAsync()
    {
        while (true)
        {
            TaskCompletionSource batch;
            lock (_gate)
            {
                if (_next is null)
                {
                    _running = false;
                    return;
                }
                batch = _next;
                _next = null;
            }
            try
            {
                sync();
                batch.SetResult();
            }
            catch (Exception e)
            {
                batch.SetException(e);
            }
        }
    }
}
