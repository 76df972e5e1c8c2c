using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using Registry.Tests.Infrastructure;

namespace Registry.Tests.Api;

/// <summary>Blob GET, HEAD and Range, the same whether the store serves a local file or a stream.</summary>
public abstract class BlobRangeTests
{
    protected abstract HttpClient Client { get; }

    protected async Task<(string Path, byte[] Data)> PushAsync(int size = 1000)
    {
        var repo = RegistryFixture.NewRepo("range");
        var data = RandomNumberGenerator.GetBytes(size);
        return ($"v2/{repo}/blobs/{await Client.PushBlobAsync(repo, data)}", data);
    }

    protected async Task<HttpResponseMessage> GetAsync(string path, string range, HttpMethod? method = null)
    {
        var request = new HttpRequestMessage(method ?? HttpMethod.Get, path);
        request.Headers.TryAddWithoutValidation("Range", range);
        return await Client.SendAsync(request);
    }

    [Theory]
    [InlineData("bytes=0-9", 0, 9)]
    [InlineData("bytes=990-", 990, 999)]
    [InlineData("bytes=-10", 990, 999)]
    [InlineData("bytes=-5000", 0, 999)]
    [InlineData("bytes=500-99999", 500, 999)]
    public async Task A_single_range_is_206_with_exactly_those_bytes(string range, int start, int end)
    {
        var (path, data) = await PushAsync();

        var response = await GetAsync(path, range);

        response.StatusCode.Should().Be(HttpStatusCode.PartialContent);
        response.Content.Headers.ContentRange!.ToString().Should().Be($"bytes {start}-{end}/1000");
        (await response.Content.ReadAsByteArrayAsync()).Should().Equal(data[start..(end + 1)]);
    }

    [Theory]
    [InlineData("bytes=1000-")]
    [InlineData("bytes=5000-6000")]
    [InlineData("bytes=-0")]
    public async Task An_unsatisfiable_range_is_416_with_the_length(string range)
    {
        var (path, _) = await PushAsync();

        var response = await GetAsync(path, range);

        response.StatusCode.Should().Be(HttpStatusCode.RequestedRangeNotSatisfiable);
        response.Content.Headers.ContentRange!.ToString().Should().Be("bytes */1000");
    }

    [Theory]
    [InlineData("bytes=0-1,5-6")]
    [InlineData("items=0-1")]
    [InlineData("bytes=x-y")]
    public async Task Ranges_it_does_not_serve_get_the_whole_blob(string range)
    {
        var (path, data) = await PushAsync();

        var response = await GetAsync(path, range);

        response.StatusCode.Should().Be(HttpStatusCode.OK);
        (await response.Content.ReadAsByteArrayAsync()).Should().Equal(data);
    }

    [Fact]
    public async Task A_matching_if_none_match_is_304()
    {
        var (path, _) = await PushAsync();
        var etag = (await Client.GetAsync(path)).Headers.ETag!;
        var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.IfNoneMatch.Add(etag);

        var response = await Client.SendAsync(request);

        response.StatusCode.Should().Be(HttpStatusCode.NotModified);
    }

    [Fact]
    public async Task Head_reports_length_and_digest_without_a_body()
    {
        var (path, data) = await PushAsync(4321);

        var response = await Client.SendAsync(new HttpRequestMessage(HttpMethod.Head, path));

        response.StatusCode.Should().Be(HttpStatusCode.OK);
        response.Content.Headers.ContentLength.Should().Be(4321);
        response.Headers.GetValues("Docker-Content-Digest").Single().Should().Be(Http.Sha256(data));
        (await response.Content.ReadAsByteArrayAsync()).Should().BeEmpty();
    }

    [Fact]
    public async Task A_whole_get_is_200_with_the_bytes_digest_and_etag()
    {
        var (path, data) = await PushAsync(1234);

        var response = await Client.GetAsync(path);

        response.StatusCode.Should().Be(HttpStatusCode.OK);
        response.Content.Headers.ContentLength.Should().Be(1234);
        response.Headers.GetValues("Docker-Content-Digest").Single().Should().Be(Http.Sha256(data));
        response.Headers.ETag!.Tag.Should().Be($"\"{Http.Sha256(data)}\"");
        (await response.Content.ReadAsByteArrayAsync()).Should().Equal(data);
    }

    [Fact]
    public async Task An_empty_blob_is_200_with_no_bytes()
    {
        var (path, _) = await PushAsync(0);

        var response = await Client.GetAsync(path);

        response.StatusCode.Should().Be(HttpStatusCode.OK);
        (await response.Content.ReadAsByteArrayAsync()).Should().BeEmpty();
    }

    [Fact]
    public async Task A_large_blob_streams_back_byte_for_byte()
    {
        var (path, data) = await PushAsync(20_000_000);

        (await Client.GetByteArrayAsync(path)).Should().Equal(data);
    }
}

/// <summary>The blob store's local files, sent with zero-copy reads.</summary>
public sealed class LocalFileBlobRangeTests(RegistryFixture fixture) : BlobRangeTests, IClassFixture<RegistryFixture>
{
    protected override HttpClient Client => fixture.Client;
}

/// <summary>A store without local files (an object store's case): content comes from <c>OpenRangeAsync</c>.</summary>
public sealed class StreamedBlobRangeTests(StreamedBlobsFixture fixture) : BlobRangeTests, IClassFixture<StreamedBlobsFixture>
{
    protected override HttpClient Client => fixture.Client;

    [Fact]
    public async Task A_range_asks_the_store_for_only_those_bytes()
    {
        var (path, data) = await PushAsync(1000);
        var digest = Registry.Storage.Model.Digest.Parse(Http.Sha256(data));

        var response = await GetAsync(path, "bytes=100-199");

        (await response.Content.ReadAsByteArrayAsync()).Should().Equal(data[100..200]);
        fixture.Recorder.Ranges.Where(r => r.Digest == digest).Should().Equal((digest, 100L, 100L));
    }

    [Fact]
    public async Task Head_opens_no_content()
    {
        var (path, data) = await PushAsync(1000);
        var digest = Registry.Storage.Model.Digest.Parse(Http.Sha256(data));

        (await Client.SendAsync(new HttpRequestMessage(HttpMethod.Head, path))).StatusCode.Should().Be(HttpStatusCode.OK);

        fixture.Recorder.Ranges.Where(r => r.Digest == digest).Should().BeEmpty();
    }

    [Fact]
    public async Task A_matching_if_none_match_opens_no_content()
    {
        var (path, data) = await PushAsync(1000);
        var digest = Registry.Storage.Model.Digest.Parse(Http.Sha256(data));
        var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.IfNoneMatch.Add(new EntityTagHeaderValue($"\"{digest}\""));

        (await Client.SendAsync(request)).StatusCode.Should().Be(HttpStatusCode.NotModified);

        fixture.Recorder.Ranges.Where(r => r.Digest == digest).Should().BeEmpty();
    }

    [Fact]
    public async Task Content_gone_between_lookup_and_read_is_404_BLOB_UNKNOWN()
    {
        var (path, data) = await PushAsync(1000);
        fixture.Recorder.Vanishing[Registry.Storage.Model.Digest.Parse(Http.Sha256(data))] = true;

        var response = await Client.GetAsync(path);

        response.StatusCode.Should().Be(HttpStatusCode.NotFound);
        (await response.ErrorCodeAsync()).Should().Be("BLOB_UNKNOWN");
        response.Headers.ETag.Should().BeNull();
    }
}
