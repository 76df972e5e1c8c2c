namespace Registry.Storage.Durability;

internal static class Releaser
{
    /// <summary>Sets the event when disposed (the hold helpers of the group commit tests).</summary>
    public static IDisposable AsReleaser(this ManualResetEventSlim release) => new Release(release);

    private sealed class Release(ManualResetEventSlim release) : IDisposable
    {
        public void Dispose() => release.Set();
    }
}
