using System.Buffers;
using System.Text.Json;

namespace Registry.Storage.Gc;

/// <summary>What one garbage collection run found and did (a dry run: what it would do).</summary>
public sealed class GcReport
{
    /// <summary>Most entries <see cref="Deleted"/> lists; the counters count everything.</summary>
    public const int MaxListed = 1000;

    public bool DryRun { get; init; }
    public int Repositories { get; set; }

    /// <summary>Manifests found reachable (kept).</summary>
    public int MarkedManifests { get; set; }

    /// <summary>Blobs recorded and still referenced after the run.</summary>
    public int MarkedBlobs { get; set; }

    public int SweptTags { get; set; }
    public int SweptManifests { get; set; }
    public int SweptLinks { get; set; }
    public int SweptBlobs { get; set; }

    /// <summary>Files in the content store that the metadata never recorded (an interrupted push) and that were old enough.</summary>
    public int SweptOrphanFiles { get; set; }

    /// <summary>Candidates left alone because a push was using them at that moment (they are looked at again next run).</summary>
    public int SkippedInUse { get; set; }

    /// <summary>Bytes of content-store files deleted (blobs and orphan files): what <c>du</c> of blobs/ loses.</summary>
    public long BytesReclaimed { get; set; }

    /// <summary>
    /// Bytes of small content deleted from the metadata database (<see cref="Blobs.IInlineContent"/>): not part of
    /// <see cref="BytesReclaimed"/>, since the database keeps its freed pages for the next pushes rather than shrinking.
    /// </summary>
    public long InlineBytesReclaimed { get; set; }

    public int ExpiredUploads { get; set; }
    public int OrphanUploadFiles { get; set; }
    public int TempFiles { get; set; }

    /// <summary>Bytes of upload and temporary files deleted.</summary>
    public long UploadBytesReclaimed { get; set; }

    public TimeSpan Duration { get; set; }

    /// <summary>What was (or would be) deleted: <c>tag repo:tag</c>, <c>manifest repo@digest</c>, <c>link repo@digest</c>, <c>blob digest</c>.</summary>
    public List<string> Deleted { get; } = [];

    public int DeletedNotListed { get; private set; }

    public void Add(string entry)
    {
        if (Deleted.Count < MaxListed) Deleted.Add(entry);
        else DeletedNotListed++;
    }

    public void WriteTo(Utf8JsonWriter writer)
    {
        writer.WriteStartObject();
        writer.WriteBoolean("dryRun", DryRun);
        writer.WriteNumber("repositories", Repositories);
        writer.WriteStartObject("marked");
        writer.WriteNumber("manifests", MarkedManifests);
        writer.WriteNumber("blobs", MarkedBlobs);
        writer.WriteEndObject();
        writer.WriteStartObject("swept");
        writer.WriteNumber("tags", SweptTags);
        writer.WriteNumber("manifests", SweptManifests);
        writer.WriteNumber("links", SweptLinks);
        writer.WriteNumber("blobs", SweptBlobs);
        writer.WriteNumber("orphanFiles", SweptOrphanFiles);
        writer.WriteNumber("expiredUploads", ExpiredUploads);
        writer.WriteNumber("orphanUploadFiles", OrphanUploadFiles);
        writer.WriteNumber("tempFiles", TempFiles);
        writer.WriteEndObject();
        writer.WriteNumber("skippedInUse", SkippedInUse);
        writer.WriteNumber("bytesReclaimed", BytesReclaimed);
        writer.WriteNumber("inlineBytesReclaimed", InlineBytesReclaimed);
        writer.WriteNumber("uploadBytesReclaimed", UploadBytesReclaimed);
        writer.WriteNumber("durationMs", (long)Duration.TotalMilliseconds);
        writer.WriteStartArray("deleted");
        foreach (var entry in Deleted) writer.WriteStringValue(entry);
        writer.WriteEndArray();
        writer.WriteNumber("deletedNotListed", DeletedNotListed);
        writer.WriteEndObject();
    }

    public string ToJson()
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer)) WriteTo(writer);
        return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>One line for the log.</summary>
    public override string ToString() =>
        $"{(DryRun ? "dry run: would sweep" : "swept")} {SweptTags} tags, {SweptManifests} manifests, {SweptLinks} links, " +
        $"{SweptBlobs} blobs, {SweptOrphanFiles} orphan files ({BytesReclaimed} bytes in files, {InlineBytesReclaimed} inline); {ExpiredUploads} expired uploads, " +
        $"{OrphanUploadFiles} orphan upload files, {TempFiles} temp files ({UploadBytesReclaimed} bytes); kept " +
        $"{MarkedManifests} manifests, {MarkedBlobs} blobs in {Repositories} repositories; {SkippedInUse} in use; " +
        $"{Duration.TotalMilliseconds:0} ms";
}
