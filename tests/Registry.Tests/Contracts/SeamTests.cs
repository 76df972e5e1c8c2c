using Microsoft.Extensions.DependencyInjection;
using Registry.Api.Storage;
using Registry.Storage.Metadata;
using Registry.Tests.Infrastructure;
using Registry.Tests.Operations;

namespace Registry.Tests.Contracts;

/// <summary>The seams a second backend plugs into: one registration, and no SQLite above the storage layer.</summary>
public sealed class SeamTests
{
    [Fact]
    public void The_api_does_not_reference_SQLite()
    {
        typeof(Registry.Api.RegistryApp).Assembly.GetReferencedAssemblies().Select(a => a.Name)
            .Should().NotContain(name => name!.Contains("Sqlite", StringComparison.OrdinalIgnoreCase));
    }

    [Fact]
    public async Task Every_metadata_contract_resolves_to_the_one_registered_store()
    {
        await using var server = await RegistryServer.StartAsync(settings: new Dictionary<string, string?>());
        var store = server.Services.GetRequiredService<IMetadataStore>();

        new object[]
        {
            server.Services.GetRequiredService<ILinkStore>(), server.Services.GetRequiredService<IManifestStore>(),
            server.Services.GetRequiredService<IUploadStore>(), server.Services.GetRequiredService<IEventOutbox>(),
            server.Services.GetRequiredService<IVerificationStore>(), server.Services.GetRequiredService<ISearchReadModel>(),
            server.Services.GetRequiredService<ITagDetailsReadModel>(), server.Services.GetRequiredService<IStorageUsage>(),
            server.Services.GetRequiredService<IGarbageCollectionStore>(), server.Services.GetRequiredService<IDeliveryCursors>(),
            server.Services.GetRequiredService<IDistributionImportStore>(),
        }.Should().AllSatisfy(contract => contract.Should().BeSameAs(store));
    }

    [Fact]
    public async Task Replacing_the_metadata_store_registration_replaces_every_contract()
    {
        IMetadataStore? replacement = null;
        await using var server = await RegistryServer.StartAsync(services: services => services.AddSingleton(provider =>
            replacement = BreakableStore.Create().Wrapping(provider.GetRequiredService<MetadataBackend>().Store)));

        var links = server.Services.GetRequiredService<ILinkStore>();

        links.Should().BeSameAs(replacement);
        server.Services.GetRequiredService<IEventOutbox>().Should().BeSameAs(replacement);
    }
}
