using System.Net;
using System.Security.Cryptography;
using Amazon.S3;
using Amazon.S3.Model;

namespace Registry.Tests.Stack;

/// <summary>
/// The S3 API of the stack's Ceph, driven by the SDK the registry's S3 store uses (AWSSDK.S3 4.x) with the
/// settings that store needs: what the registry will rely on, checked against the real gateway.
/// </summary>
[Collection(CephCollection.Name)]
public sealed class CephS3Tests(CephStack ceph) : IDisposable
{
    private readonly AmazonS3Client _s3 = ceph.CreateClient();
    private readonly string _prefix = $"tests/{Guid.NewGuid():N}/";

    public void Dispose() => _s3.Dispose();

    private async Task PutAsync(string key, byte[] bytes) =>
        (await _s3.PutObjectAsync(new PutObjectRequest
        {
            BucketName = ceph.Bucket,
            Key = key,
            InputStream = new MemoryStream(bytes),
        })).HttpStatusCode.Should().Be(HttpStatusCode.OK);

    private async Task<byte[]> GetAsync(GetObjectRequest request)
    {
        using var response = await _s3.GetObjectAsync(request);
        using var buffer = new MemoryStream();
        await response.ResponseStream.CopyToAsync(buffer);
        return buffer.ToArray();
    }

    [Fact]
    public async Task An_object_put_is_read_back_byte_for_byte()
    {
        var key = _prefix + "object";
        var bytes = RandomNumberGenerator.GetBytes(300_000);

        await PutAsync(key, bytes);

        (await GetAsync(new GetObjectRequest { BucketName = ceph.Bucket, Key = key })).Should().Equal(bytes);
    }

    [Fact]
    public async Task A_ranged_get_returns_only_the_bytes_asked_for()
    {
        var key = _prefix + "ranged";
        var bytes = RandomNumberGenerator.GetBytes(100_000);
        await PutAsync(key, bytes);

        var part = await GetAsync(new GetObjectRequest
        {
            BucketName = ceph.Bucket,
            Key = key,
            ByteRange = new ByteRange(1000, 1999),
        });

        part.Should().Equal(bytes[1000..2000]);
    }

    [Fact]
    public async Task Listing_a_prefix_returns_exactly_the_objects_under_it()
    {
        await PutAsync(_prefix + "list/a", [1]);
        await PutAsync(_prefix + "list/b", [2, 2]);
        await PutAsync(_prefix + "other", [3]);

        var listing = await _s3.ListObjectsV2Async(new ListObjectsV2Request
        {
            BucketName = ceph.Bucket,
            Prefix = _prefix + "list/",
        });

        listing.S3Objects.Select(o => (o.Key, o.Size)).Should().Equal(
            (_prefix + "list/a", 1L), (_prefix + "list/b", 2L));
    }

    [Fact]
    public async Task A_multipart_upload_of_three_parts_becomes_one_object_in_part_order()
    {
        var key = _prefix + "multipart";
        // S3 wants every part but the last to be at least 5 MiB
        byte[][] parts = [RandomNumberGenerator.GetBytes(5 << 20), RandomNumberGenerator.GetBytes(5 << 20), RandomNumberGenerator.GetBytes(1234)];
        var upload = await _s3.InitiateMultipartUploadAsync(new InitiateMultipartUploadRequest { BucketName = ceph.Bucket, Key = key });
        var etags = new List<PartETag>();
        for (var i = 0; i < parts.Length; i++)
        {
            var part = await _s3.UploadPartAsync(new UploadPartRequest
            {
                BucketName = ceph.Bucket,
                Key = key,
                UploadId = upload.UploadId,
                PartNumber = i + 1,
                InputStream = new MemoryStream(parts[i]),
            });
            etags.Add(new PartETag(i + 1, part.ETag));
        }

        await _s3.CompleteMultipartUploadAsync(new CompleteMultipartUploadRequest
        {
            BucketName = ceph.Bucket,
            Key = key,
            UploadId = upload.UploadId,
            PartETags = etags,
        });

        (await GetAsync(new GetObjectRequest { BucketName = ceph.Bucket, Key = key }))
            .Should().Equal(parts.SelectMany(p => p));
    }

    [Fact]
    public async Task A_deleted_object_is_gone()
    {
        var key = _prefix + "deleted";
        await PutAsync(key, [1, 2, 3]);

        await _s3.DeleteObjectAsync(new DeleteObjectRequest { BucketName = ceph.Bucket, Key = key });

        var head = () => _s3.GetObjectMetadataAsync(new GetObjectMetadataRequest { BucketName = ceph.Bucket, Key = key });
        (await head.Should().ThrowAsync<AmazonS3Exception>()).Which.StatusCode.Should().Be(HttpStatusCode.NotFound);
    }
}
