using System.Net;
using System.Reflection;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Registry.Api.Storage;
using Registry.Storage.Metadata;
using Registry.Tests.Infrastructure;

namespace Registry.Tests.Operations;

/// <summary><c>/healthz</c> (alive) and <c>/readyz</c> (storage writable, metadata store answering), outside <c>/v2</c>.</summary>
public class HealthTests
{
    private static async Task<(HttpStatusCode Status, JsonElement Body)> GetAsync(HttpClient client, string path)
    {
        using var response = await client.GetAsync(path);
        var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone();
        response.Headers.CacheControl?.NoStore.Should().BeTrue();
        return (response.StatusCode, body);
    }

    [Fact]
    public async Task Healthz_answers_200_ok()
    {
        await using var server = await RegistryServer.StartAsync();
        using var client = server.CreateClient();

        var (status, body) = await GetAsync(client, "healthz");

        status.Should().Be(HttpStatusCode.OK);
        body.GetProperty("status").GetString().Should().Be("ok");
    }

    [Fact]
    public async Task Readyz_answers_200_when_storage_is_writable_and_the_metadata_store_answers()
    {
        await using var server = await RegistryServer.StartAsync();
        using var client = server.CreateClient();

        var (status, body) = await GetAsync(client, "readyz");

        status.Should().Be(HttpStatusCode.OK);
        body.GetProperty("status").GetString().Should().Be("ready");
        Directory.GetFiles(Path.Combine(server.StoragePath!, "tmp")).Should().BeEmpty("the probe file is removed");
    }

    [Fact]
    public async Task Readyz_answers_503_with_the_reason_when_storage_is_not_writable()
    {
        await using var server = await RegistryServer.StartAsync();
        using var client = server.CreateClient();
        // Root ignores file permissions, so the tmp folder becomes a file: nothing can be created in it.
        var tmp = Path.Combine(server.StoragePath!, "tmp");
        Directory.Delete(tmp, recursive: true);
        await File.WriteAllTextAsync(tmp, "not a folder");

        var (status, body) = await GetAsync(client, "readyz");

        status.Should().Be(HttpStatusCode.ServiceUnavailable);
        body.GetProperty("status").GetString().Should().Be("not ready");
        body.GetProperty("problems")[0].GetString().Should().StartWith("storage is not writable");
        File.Delete(tmp);
        Directory.CreateDirectory(tmp);
    }

    [Fact]
    public async Task Readyz_answers_503_with_the_reason_when_the_metadata_store_does_not_answer()
    {
        var store = BreakableStore.Create();
        await using var server = await RegistryServer.StartAsync(services: services => services.AddSingleton(
            provider => store.Wrapping(provider.GetRequiredService<MetadataBackend>().Store)));
        using var client = server.CreateClient();
        store.Broken = true;

        var (status, body) = await GetAsync(client, "readyz");

        status.Should().Be(HttpStatusCode.ServiceUnavailable);
        body.GetProperty("problems")[0].GetString().Should().StartWith("metadata store does not answer");
    }

    [Fact]
    public async Task Readyz_recovers_once_the_problem_is_gone()
    {
        await using var server = await RegistryServer.StartAsync();
        using var client = server.CreateClient();
        var tmp = Path.Combine(server.StoragePath!, "tmp");
        Directory.Delete(tmp, recursive: true);
        await File.WriteAllTextAsync(tmp, "not a folder");
        (await GetAsync(client, "readyz")).Status.Should().Be(HttpStatusCode.ServiceUnavailable);
        File.Delete(tmp);

        // The answer is kept for a second; the next check after that sees the repaired storage.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        HttpStatusCode status;
        do
        {
            await Task.Delay(200);
            status = (await GetAsync(client, "readyz")).Status;
        } while (status != HttpStatusCode.OK && DateTime.UtcNow < deadline);

        status.Should().Be(HttpStatusCode.OK);
    }

    [Fact]
    public async Task Health_endpoints_answer_HEAD_and_refuse_other_methods()
    {
        await using var server = await RegistryServer.StartAsync();
        using var client = server.CreateClient();

        (await client.SendAsync(new HttpRequestMessage(HttpMethod.Head, "readyz"))).StatusCode.Should().Be(HttpStatusCode.OK);
        (await client.PostAsync("healthz", null)).StatusCode.Should().NotBe(HttpStatusCode.OK);
    }
}

/// <summary>The real metadata store until <see cref="Broken"/> is set; then every call fails, as a lost database would.</summary>
public class BreakableStore : DispatchProxy
{
    private IMetadataStore? _inner;

    public bool Broken { get; set; }

    public static BreakableStore Create() => (BreakableStore)(object)Create<IMetadataStore, BreakableStore>();

    public IMetadataStore Wrapping(IMetadataStore inner)
    {
        _inner = inner;
        return (IMetadataStore)(object)this;
    }

    protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
    {
        if (Broken) throw new IOException("disk I/O error (test)");
        try
        {
            return targetMethod!.Invoke(_inner, args);
        }
        catch (TargetInvocationException e) when (e.InnerException is not null)
        {
            throw e.InnerException;
        }
    }
}
