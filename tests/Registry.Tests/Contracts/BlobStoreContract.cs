using System.IO.Pipelines;
using System.Security.Cryptography;
using Registry.Storage.Blobs;
using Registry.Storage.Blobs.S3;
using Registry.Storage.Model;
using Registry.Tests.Stack;
using static Registry.Tests.Contracts.Sample;

namespace Registry.Tests.Contracts;

/// <summary>
/// What every <see cref="IBlobStore"/> promises: content is verified and published atomically under its digest,
/// publishing twice is success, appends are all or nothing, sessions outlive the instance that started them, and
/// ranges read exactly their bytes. Several sizes cross S3's 5 MiB minimum part size, so that multipart parts,
/// pending tails and their read-back are exercised too.
/// </summary>
public abstract class BlobStoreContract : BlobContract
{
    protected const int MiB = 1 << 20;

    private static PipeReader Body(byte[] bytes) => PipeReader.Create(new MemoryStream(bytes));

    private async Task<UploadId> NewUploadAsync()
    {
        var id = UploadId.New();
        await Store.CreateUploadAsync(id, default);
        return id;
    }

    private static async Task<byte[]> ReadAllAsync(Stream stream)
    {
        await using (stream)
        {
            var copy = new MemoryStream();
            await stream.CopyToAsync(copy);
            return copy.ToArray();
        }
    }

    private async Task<byte[]?> ContentAsync(Digest digest, IBlobStore? store = null) =>
        await (store ?? Store).OpenAsync(digest, default) is { } content ? await ReadAllAsync(content.OpenStream()) : null;

    private async Task<Digest> PublishAsync(byte[] data)
    {
        var digest = DigestOf(data);
        (await Store.StoreAsync(digest, Body(data), data.Length, default)).Status.Should().Be(CommitStatus.Committed);
        return digest;
    }

    [Fact]
    public async Task Put_content_opens_with_its_length_and_bytes()
    {
        var data = "{\"a\":1}"u8.ToArray();

        await Store.PutAsync(DigestOf(data), data, default);

        (await Store.OpenAsync(DigestOf(data), default))!.Length.Should().Be(data.Length);
        (await ContentAsync(DigestOf(data))).Should().Equal(data);
        (await Store.ExistsAsync(DigestOf(data), default)).Should().BeTrue();
    }

    [Fact]
    public async Task Putting_content_that_is_already_stored_is_success()
    {
        var data = "{\"a\":1}"u8.ToArray();
        await Store.PutAsync(DigestOf(data), data, default);

        var again = async () => await Store.PutAsync(DigestOf(data), data, default);

        await again.Should().NotThrowAsync();
        (await ContentAsync(DigestOf(data))).Should().Equal(data);
    }

    [Fact]
    public async Task Unknown_content_does_not_open()
    {
        var digest = DigestOf("never");

        (await Store.OpenAsync(digest, default)).Should().BeNull();
        (await Store.OpenRangeAsync(digest, 0, 0, default)).Should().BeNull();
        (await Store.OpenRangeAsync(digest, 0, 10, default)).Should().BeNull();
        (await Store.ExistsAsync(digest, default)).Should().BeFalse();
    }

    [Fact]
    public async Task A_single_request_store_publishes_verified_content()
    {
        var data = RandomNumberGenerator.GetBytes(300_000);

        var result = await Store.StoreAsync(DigestOf(data), Body(data), data.Length, default);

        result.Should().Be(new CommitResult(CommitStatus.Committed, data.Length));
        (await ContentAsync(DigestOf(data))).Should().Equal(data);
    }

    [Fact]
    public async Task A_single_request_store_with_the_wrong_digest_publishes_nothing()
    {
        var data = RandomNumberGenerator.GetBytes(1000);
        var wrong = DigestOf("something else");

        var result = await Store.StoreAsync(wrong, Body(data), data.Length, default);

        result.Status.Should().Be(CommitStatus.DigestMismatch);
        (await Store.ExistsAsync(wrong, default)).Should().BeFalse();
        (await Store.ExistsAsync(DigestOf(data), default)).Should().BeFalse();
    }

    [Fact]
    public async Task A_single_request_store_shorter_than_declared_publishes_nothing()
    {
        var data = RandomNumberGenerator.GetBytes(6 * MiB);

        var result = await Store.StoreAsync(DigestOf(data), Body(data[..(3 * MiB)]), data.Length, default);

        result.Status.Should().Be(CommitStatus.Incomplete);
        (await Store.ExistsAsync(DigestOf(data), default)).Should().BeFalse();
    }

    [Fact]
    public async Task Storing_content_that_is_already_stored_is_success_and_still_verified()
    {
        var data = RandomNumberGenerator.GetBytes(1000);
        await PublishAsync(data);

        (await Store.StoreAsync(DigestOf(data), Body(data), data.Length, default)).Status.Should().Be(CommitStatus.Committed);
        (await Store.StoreAsync(DigestOf(data), Body(new byte[1000]), 1000, default)).Status
            .Should().Be(CommitStatus.DigestMismatch);
        (await ContentAsync(DigestOf(data))).Should().Equal(data);
    }

    [Fact]
    public async Task Chunks_appended_in_order_commit_under_their_digest()
    {
        var data = RandomNumberGenerator.GetBytes(300_000);
        var id = await NewUploadAsync();

        (await Store.AppendAsync(id, 0, Body(data[..100_000]), 100_000, default)).Should()
            .Be(new AppendResult(AppendStatus.Appended, 100_000));
        (await Store.AppendAsync(id, 100_000, Body(data[100_000..]), null, default)).Size.Should().Be(300_000);
        var result = await Store.CommitAsync(id, DigestOf(data), 300_000, default);

        result.Should().Be(new CommitResult(CommitStatus.Committed, 300_000));
        (await ContentAsync(DigestOf(data))).Should().Equal(data);
        (await Store.GetUploadSizeAsync(id, default)).Should().BeNull("a committed session's data is gone");
    }

    [Fact]
    public async Task A_new_session_holds_zero_bytes()
    {
        var id = await NewUploadAsync();

        (await Store.GetUploadSizeAsync(id, default)).Should().Be(0);
    }

    [Fact]
    public async Task Content_being_uploaded_is_not_visible_before_its_commit()
    {
        var data = RandomNumberGenerator.GetBytes(1000);
        var id = await NewUploadAsync();

        await Store.AppendAsync(id, 0, Body(data), null, default);

        (await Store.ExistsAsync(DigestOf(data), default)).Should().BeFalse();
        (await Store.EnumerateBlobsAsync(default).ToListAsync()).Should().BeEmpty();
    }

    [Fact]
    public async Task A_chunk_that_does_not_start_at_the_end_is_refused_and_changes_nothing()
    {
        var id = await NewUploadAsync();
        await Store.AppendAsync(id, 0, Body(new byte[10]), 10, default);

        var result = await Store.AppendAsync(id, 5, Body(new byte[10]), 10, default);

        result.Should().Be(new AppendResult(AppendStatus.OutOfOrder, 10));
        (await Store.GetUploadSizeAsync(id, default)).Should().Be(10);
    }

    [Fact]
    public async Task A_chunk_without_an_offset_goes_at_the_end()
    {
        var id = await NewUploadAsync();
        await Store.AppendAsync(id, null, Body([1, 2]), null, default);

        await Store.AppendAsync(id, null, Body([3]), null, default);

        (await Store.CommitAsync(id, DigestOf([1, 2, 3]), 3, default)).Status.Should().Be(CommitStatus.Committed);
    }

    [Fact]
    public async Task A_body_shorter_than_declared_is_rolled_back_entirely()
    {
        var id = await NewUploadAsync();
        await Store.AppendAsync(id, 0, Body([1, 2, 3]), 3, default);

        var result = await Store.AppendAsync(id, 3, Body([4, 5]), 10, default);

        result.Status.Should().Be(AppendStatus.Incomplete);
        (await Store.GetUploadSizeAsync(id, default)).Should().Be(3);
        (await Store.CommitAsync(id, DigestOf([1, 2, 3]), null, default)).Status.Should().Be(CommitStatus.Committed);
    }

    [Fact]
    public async Task A_body_longer_than_declared_is_rolled_back_entirely()
    {
        var id = await NewUploadAsync();

        var result = await Store.AppendAsync(id, 0, Body(new byte[20]), 10, default);

        result.Status.Should().Be(AppendStatus.Incomplete);
        (await Store.GetUploadSizeAsync(id, default)).Should().Be(0);
    }

    [Fact]
    public async Task Appending_to_an_unknown_session_is_refused()
    {
        (await Store.AppendAsync(UploadId.New(), 0, Body([1]), 1, default)).Status.Should().Be(AppendStatus.UnknownSession);
        (await Store.CommitAsync(UploadId.New(), DigestOf([1]), null, default)).Status.Should().Be(CommitStatus.UnknownSession);
    }

    [Fact]
    public async Task A_digest_mismatch_publishes_nothing_and_removes_the_session()
    {
        var id = await NewUploadAsync();
        await Store.AppendAsync(id, 0, Body([1, 2, 3]), null, default);
        var wrong = DigestOf([9]);

        var result = await Store.CommitAsync(id, wrong, null, default);

        result.Status.Should().Be(CommitStatus.DigestMismatch);
        (await Store.ExistsAsync(wrong, default)).Should().BeFalse();
        (await Store.ExistsAsync(DigestOf([1, 2, 3]), default)).Should().BeFalse();
        (await Store.GetUploadSizeAsync(id, default)).Should().BeNull();
    }

    [Fact]
    public async Task A_size_mismatch_publishes_nothing()
    {
        var id = await NewUploadAsync();
        await Store.AppendAsync(id, 0, Body([1, 2, 3]), null, default);

        var result = await Store.CommitAsync(id, DigestOf([1, 2, 3]), 4, default);

        result.Status.Should().Be(CommitStatus.SizeMismatch);
        (await Store.ExistsAsync(DigestOf([1, 2, 3]), default)).Should().BeFalse();
    }

    [Fact]
    public async Task Sha512_digests_are_verified()
    {
        var data = RandomNumberGenerator.GetBytes(6 * MiB + 3);
        var id = await NewUploadAsync();
        await Store.AppendAsync(id, 0, Body(data), null, default);

        var digest = Digest.Compute(DigestAlgorithm.Sha512, data);

        (await Store.CommitAsync(id, digest, null, default)).Status.Should().Be(CommitStatus.Committed);
        (await ContentAsync(digest)).Should().Equal(data);
    }

    [Fact]
    public async Task The_same_blob_uploaded_concurrently_is_stored_once_and_every_upload_succeeds()
    {
        var data = RandomNumberGenerator.GetBytes(1_000_000);

        var uploads = await Task.WhenAll(Enumerable.Range(0, 8).Select(async _ =>
        {
            var id = await NewUploadAsync();
            await Store.AppendAsync(id, 0, Body(data), null, default);
            return await Store.CommitAsync(id, DigestOf(data), null, default);
        }));

        uploads.Should().OnlyContain(r => r.Status == CommitStatus.Committed);
        (await Store.EnumerateBlobsAsync(default).ToListAsync()).Should().Equal(DigestOf(data));
        (await ContentAsync(DigestOf(data))).Should().Equal(data);
    }

    [Fact]
    public async Task Cancel_removes_the_session_and_is_idempotent()
    {
        var id = await NewUploadAsync();
        await Store.AppendAsync(id, 0, Body([1, 2, 3]), null, default);

        await Store.CancelUploadAsync(id, default);
        await Store.CancelUploadAsync(id, default);

        (await Store.GetUploadSizeAsync(id, default)).Should().BeNull();
        (await Store.AppendAsync(id, null, Body([1]), 1, default)).Status.Should().Be(AppendStatus.UnknownSession);
        (await Store.CommitAsync(id, DigestOf([]), null, default)).Status.Should().Be(CommitStatus.UnknownSession);
    }

    [Fact]
    public async Task Chunks_of_any_size_appended_in_order_commit_under_their_digest()
    {
        var data = RandomNumberGenerator.GetBytes(14 * MiB + 123);
        int[] cuts = [1, 3 * MiB, 4 * MiB, 10 * MiB + 7, 11 * MiB, data.Length];
        var id = await NewUploadAsync();

        var start = 0;
        foreach (var cut in cuts)
        {
            var result = await Store.AppendAsync(id, start, Body(data[start..cut]), cut - start, default);
            result.Should().Be(new AppendResult(AppendStatus.Appended, cut));
            start = cut;
        }
        var commit = await Store.CommitAsync(id, DigestOf(data), data.Length, default);

        commit.Should().Be(new CommitResult(CommitStatus.Committed, data.Length));
        (await ContentAsync(DigestOf(data))).Should().Equal(data);
        (await Store.GetUploadSizeAsync(id, default)).Should().BeNull();
    }

    [Fact]
    public async Task A_body_cut_off_after_several_megabytes_leaves_the_session_as_it_was()
    {
        var data = RandomNumberGenerator.GetBytes(8 * MiB);
        var id = await NewUploadAsync();
        await Store.AppendAsync(id, 0, Body(data[..(2 * MiB)]), 2 * MiB, default);

        // The client goes away after 5 MiB of a 6 MiB chunk.
        var cut = PipeReader.Create(new FailingStream(data[(2 * MiB)..], failAfter: 5 * MiB));
        var result = await Store.AppendAsync(id, 2 * MiB, cut, 6 * MiB, default);

        result.Should().Be(new AppendResult(AppendStatus.Incomplete, 2 * MiB));
        (await Store.GetUploadSizeAsync(id, default)).Should().Be(2 * MiB);
        (await Store.AppendAsync(id, 2 * MiB, Body(data[(2 * MiB)..]), 6 * MiB, default)).Size.Should().Be(8 * MiB);
        (await Store.CommitAsync(id, DigestOf(data), data.Length, default)).Status.Should().Be(CommitStatus.Committed);
        (await ContentAsync(DigestOf(data))).Should().Equal(data);
    }

    [Fact]
    public async Task Committing_a_session_whose_content_is_already_stored_succeeds_and_ends_the_session()
    {
        var data = RandomNumberGenerator.GetBytes(7 * MiB);
        var first = await NewUploadAsync();
        var second = await NewUploadAsync();
        await Store.AppendAsync(first, 0, Body(data), data.Length, default);
        await Store.AppendAsync(second, 0, Body(data), data.Length, default);

        (await Store.CommitAsync(first, DigestOf(data), null, default)).Status.Should().Be(CommitStatus.Committed);
        var again = await Store.CommitAsync(second, DigestOf(data), null, default);

        again.Should().Be(new CommitResult(CommitStatus.Committed, data.Length));
        (await ContentAsync(DigestOf(data))).Should().Equal(data);
        (await Store.GetUploadSizeAsync(second, default)).Should().BeNull();
    }

    [Fact]
    public async Task An_empty_session_commits_the_empty_blob()
    {
        var id = await NewUploadAsync();

        var result = await Store.CommitAsync(id, DigestOf([]), 0, default);

        result.Should().Be(new CommitResult(CommitStatus.Committed, 0));
        (await ContentAsync(DigestOf([])))!.Should().BeEmpty();
    }

    [Fact]
    public async Task A_single_request_store_larger_than_a_part_is_published_only_if_it_matches_its_digest()
    {
        var data = RandomNumberGenerator.GetBytes(11 * MiB);
        var wrong = DigestOf([1]);

        var refused = await Store.StoreAsync(wrong, Body(data), data.Length, default);
        var stored = await Store.StoreAsync(DigestOf(data), Body(data), null, default);

        refused.Status.Should().Be(CommitStatus.DigestMismatch);
        (await Store.ExistsAsync(wrong, default)).Should().BeFalse();
        stored.Should().Be(new CommitResult(CommitStatus.Committed, data.Length));
        (await ContentAsync(DigestOf(data))).Should().Equal(data);
    }

    [Fact]
    public async Task The_whole_content_stream_reads_exactly_the_bytes_at_the_position_it_seeks_to()
    {
        var data = RandomNumberGenerator.GetBytes(3 * MiB);
        await Store.PutAsync(DigestOf(data), data, default);
        var content = await Store.OpenAsync(DigestOf(data), default);

        await using var stream = content!.OpenStream();
        stream.Seek(MiB + 17, SeekOrigin.Begin);
        var range = new byte[1000];
        await stream.ReadExactlyAsync(range);
        stream.Seek(5, SeekOrigin.Begin);
        var start = new byte[10];
        await stream.ReadExactlyAsync(start);

        content.Length.Should().Be(data.Length);
        range.Should().Equal(data[(MiB + 17)..(MiB + 1017)]);
        start.Should().Equal(data[5..15]);
    }

    [Fact]
    public async Task A_published_blob_has_the_time_it_was_written_and_an_unknown_one_has_none()
    {
        var digest = await PublishAsync(RandomNumberGenerator.GetBytes(50));

        Store.WrittenAt(digest).Should().BeCloseTo(DateTimeOffset.UtcNow, TimeSpan.FromMinutes(5));
        Store.WrittenAt(DigestOf("never")).Should().BeNull();
    }

    [Fact]
    public async Task Sessions_written_before_a_time_are_listed_and_later_ones_are_not()
    {
        var id = await NewUploadAsync();
        await Store.AppendAsync(id, 0, Body([1, 2]), 2, default);

        Store.ListUploadsWrittenBefore(DateTimeOffset.UtcNow.AddMinutes(5)).Should().Contain(id);
        Store.ListUploadsWrittenBefore(DateTimeOffset.UtcNow.AddMinutes(-5)).Should().NotContain(id);
    }

    [Fact]
    public async Task A_session_started_by_one_instance_continues_and_commits_in_another()
    {
        var data = RandomNumberGenerator.GetBytes(9 * MiB + 5);
        var split = 6 * MiB + 1;
        var id = await NewUploadAsync();
        await Store.AppendAsync(id, 0, Body(data[..split]), null, default);

        var other = await OpenAnotherAsync();
        (await other.GetUploadSizeAsync(id, default)).Should().Be(split);
        await other.AppendAsync(id, split, Body(data[split..]), null, default);
        var result = await other.CommitAsync(id, DigestOf(data), null, default);

        result.Status.Should().Be(CommitStatus.Committed);
        (await ContentAsync(DigestOf(data), Store)).Should().Equal(data);
    }

    [Theory]
    [InlineData(0, 1000)]
    [InlineData(0, 1)]
    [InlineData(999, 1)]
    [InlineData(100, 200)]
    [InlineData(1000, 0)]
    public async Task A_range_reads_exactly_its_bytes(int offset, int length)
    {
        var data = RandomNumberGenerator.GetBytes(1000);
        var digest = await PublishAsync(data);

        var stream = await Store.OpenRangeAsync(digest, offset, length, default);

        (await ReadAllAsync(stream!)).Should().Equal(data[offset..(offset + length)]);
    }

    [Theory]
    [InlineData(1001, 0)]
    [InlineData(1000, 1)]
    [InlineData(900, 101)]
    [InlineData(2000, 10)]
    public async Task A_range_outside_the_blob_is_refused(int offset, int length)
    {
        var digest = await PublishAsync(RandomNumberGenerator.GetBytes(1000));

        var open = async () => await (await Store.OpenRangeAsync(digest, offset, length, default))!.DisposeAsync();

        await open.Should().ThrowAsync<ArgumentOutOfRangeException>();
    }

    [Fact]
    public async Task A_range_of_a_large_blob_reads_exactly_its_bytes()
    {
        var data = RandomNumberGenerator.GetBytes(5_000_000);
        var digest = await PublishAsync(data);

        var stream = await Store.OpenRangeAsync(digest, 1_234_567, 2_000_000, default);

        (await ReadAllAsync(stream!)).Should().Equal(data[1_234_567..3_234_567]);
    }

    [Fact]
    public async Task Enumeration_lists_every_published_blob_once()
    {
        var digests = new List<Digest>();
        for (var i = 0; i < 5; i++) digests.Add(await PublishAsync(RandomNumberGenerator.GetBytes(100)));
        await Store.PutAsync(DigestOf("{}"), "{}"u8.ToArray(), default);
        digests.Add(DigestOf("{}"));
        await NewUploadAsync();

        (await Store.EnumerateBlobsAsync(default).ToListAsync()).Should().BeEquivalentTo(digests);
    }

    [Fact]
    public async Task Deleting_a_blob_returns_its_size_once()
    {
        var digest = await PublishAsync(new byte[1234]);

        var deleted = await Store.DeleteAsync(digest, default);
        deleted.Should().NotBeNull();
        (deleted!.Value.Bytes + deleted.Value.InlineBytes).Should().Be(1234);

        (await Store.DeleteAsync(digest, default)).Should().BeNull();
        (await Store.ExistsAsync(digest, default)).Should().BeFalse();
        (await Store.EnumerateBlobsAsync(default).ToListAsync()).Should().BeEmpty();
    }

    [Fact]
    public async Task A_blob_deleted_can_be_published_again()
    {
        var data = RandomNumberGenerator.GetBytes(100);
        var digest = await PublishAsync(data);
        await Store.DeleteAsync(digest, default);

        await PublishAsync(data);

        (await ContentAsync(digest)).Should().Equal(data);
    }
}

/// <summary>Yields its bytes, then fails as a dropped connection does.</summary>
internal sealed class FailingStream(byte[] data, int failAfter) : Stream
{
    private int _position;

    public override int Read(byte[] buffer, int offset, int count)
    {
        if (_position >= failAfter) throw new IOException("connection reset by peer");
        var n = Math.Min(count, Math.Min(failAfter, data.Length) - _position);
        Array.Copy(data, _position, buffer, offset, n);
        _position += n;
        return n;
    }

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => _position; set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}

public sealed class FileSystemBlobStoreContract : BlobStoreContract
{
    protected override IBlobBackend CreateBackend() => new FileSystemBackend();
}

/// <summary>The filesystem store as the server runs it: content up to 16 KiB inline in its SQLite database.</summary>
public sealed class InlineFileSystemBlobStoreContract : BlobStoreContract
{
    protected override IBlobBackend CreateBackend() => new InlineFileSystemBackend();
}

/// <summary>
/// The S3 store on the stack's Ceph (<see cref="CephStack"/>), a key prefix of its own per test; every store opened
/// is another instance (another replica) over the same bucket and prefix. Parts are S3's minimum size, so the
/// tests' few megabytes span several parts.
/// </summary>
[Collection(CephCollection.Name)]
public sealed class S3BlobStoreContract(CephStack ceph) : BlobStoreContract
{
    protected override IBlobBackend CreateBackend() => new S3Backend(ceph.NewSettings());
}
