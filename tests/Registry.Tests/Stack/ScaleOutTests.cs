using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Registry.Storage.Blobs;
using Registry.Storage.Blobs.S3;
using Registry.Storage.Metadata;
using Registry.Storage.Metadata.Postgres;
using Registry.Tests.Clients;
using Registry.Tests.Conformance;

namespace Registry.Tests.Stack;

// The conformance-modelled HTTP tests and the real-client tests, unchanged, through nginx round-robin in front of two
// replicas on one bucket and one PostgreSQL database: any request of a push or pull may reach either replica.
// Left single-server only: AuthClientTests and TlsClientTests (they need a server started with htpasswd or TLS
// settings of their own, which is about those features, not about several replicas).

[Collection(ScaleOutCollection.Name)]
public sealed class ScaleOutPushTests(ScaleOutStack stack) : PushTestsBase(stack);

[Collection(ScaleOutCollection.Name)]
public sealed class ScaleOutPullTests(ScaleOutStack stack) : PullTestsBase(stack);

[Collection(ScaleOutCollection.Name)]
public sealed class ScaleOutManagementTests(ScaleOutStack stack) : ManagementTestsBase(stack);

[Collection(ScaleOutCollection.Name)]
public sealed class ScaleOutDiscoveryTests(ScaleOutStack stack) : DiscoveryTestsBase(stack);

[Collection(ScaleOutCollection.Name)]
public sealed class ScaleOutErrorTests(ScaleOutStack stack) : ErrorTestsBase(stack);

[Collection(ScaleOutCollection.Name)]
public sealed class ScaleOutSkopeoTests(ScaleOutStack stack) : SkopeoTestsBase(stack);

[Collection(ScaleOutCollection.Name)]
public sealed class ScaleOutPodmanTests(ScaleOutStack stack) : PodmanTestsBase(stack);

[Collection(ScaleOutCollection.Name)]
public sealed class ScaleOutUmociTests(ScaleOutStack stack) : UmociTestsBase(stack);

/// <summary>The scale-out stack is what the tests above claim it is: two s3 + postgres replicas, both serving.</summary>
[Collection(ScaleOutCollection.Name)]
public sealed class ScaleOutStackTests(ScaleOutStack stack)
{
    [Fact]
    public void Both_replicas_keep_blobs_in_s3_and_metadata_in_postgres()
    {
        stack.Replicas.Should().HaveCount(2);
        foreach (var replica in stack.Replicas)
        {
            replica.Services.GetRequiredService<IBlobStore>().Should().BeOfType<S3BlobStore>();
            replica.Services.GetRequiredService<IMetadataStore>().Should().BeOfType<PostgresMetadataStore>();
        }
    }

    [Fact]
    public async Task Consecutive_requests_through_the_proxy_alternate_between_the_replicas()
    {
        var marker = $"probe-{Guid.NewGuid():N}";
        for (var i = 0; i < 4; i++)
            (await stack.Client.GetAsync($"v2/?{marker}={i}")).StatusCode.Should().Be(HttpStatusCode.OK);

        var upstreams = await stack.UpstreamsOfAsync(marker, 4);

        upstreams.Should().HaveCount(4);
        upstreams.Distinct().Should().BeEquivalentTo(stack.Replicas.Select(r => r.HostPort));
        upstreams.Zip(upstreams.Skip(1)).Should().OnlyContain(pair => pair.First != pair.Second);
    }
}
