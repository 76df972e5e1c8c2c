using System.Collections.Concurrent;
using System.Reflection;
using Microsoft.Extensions.DependencyInjection;
using Registry.Storage.Blobs;
using Registry.Storage.Model;

namespace Registry.Tests.Infrastructure;

/// <summary>
/// The real blob store, except that its content has no local file (as in an object store): the API must serve GETs
/// through <see cref="IBlobStore.OpenRangeAsync"/>. It records the ranges it was asked to open.
/// </summary>
public class StreamOnlyBlobStore : DispatchProxy
{
    private IBlobStore _inner = null!;

    public ConcurrentQueue<(Digest Digest, long Offset, long Length)> Ranges { get; } = new();

    /// <summary>Digests whose content is gone by the time a range is opened (as if garbage collected in between).</summary>
    public ConcurrentDictionary<Digest, bool> Vanishing { get; } = new();

    public static (IBlobStore Store, StreamOnlyBlobStore Recorder) Wrap(IBlobStore inner)
    {
        var proxy = Create<IBlobStore, StreamOnlyBlobStore>();
        var recorder = (StreamOnlyBlobStore)(object)proxy;
        recorder._inner = inner;
        return (proxy, recorder);
    }

    protected override object? Invoke(MethodInfo? method, object?[]? args)
    {
        try
        {
            var result = method!.Invoke(_inner, args);
            if (method.Name == nameof(IBlobStore.OpenAsync)) return WithoutLocalFileAsync((ValueTask<BlobContent?>)result!);
            if (method.Name == nameof(IBlobStore.OpenRangeAsync))
            {
                var digest = (Digest)args![0]!;
                Ranges.Enqueue((digest, (long)args[1]!, (long)args[2]!));
                if (Vanishing.ContainsKey(digest)) return ValueTask.FromResult<Stream?>(null);
            }
            return result;
        }
        catch (TargetInvocationException e) when (e.InnerException is not null)
        {
            throw e.InnerException;
        }
    }

    private static async ValueTask<BlobContent?> WithoutLocalFileAsync(ValueTask<BlobContent?> open) =>
        await open is { } content ? content with { LocalPath = null } : null;
}

/// <summary>One server shared by a test class whose blob store has no local files (<see cref="StreamOnlyBlobStore"/>).</summary>
public sealed class StreamedBlobsFixture : IAsyncLifetime
{
    public RegistryServer Server { get; private set; } = null!;
    public HttpClient Client { get; private set; } = null!;
    public StreamOnlyBlobStore Recorder { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Server = await RegistryServer.StartAsync(services: services => services.AddSingleton(provider =>
        {
            var (store, recorder) = StreamOnlyBlobStore.Wrap(provider.GetRequiredService<FileSystemBlobStore>());
            Recorder = recorder;
            return store;
        }));
        Client = Server.CreateClient();
    }

    public async Task DisposeAsync()
    {
        Client.Dispose();
        await Server.DisposeAsync();
    }
}
