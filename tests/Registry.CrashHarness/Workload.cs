using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Text;

namespace Registry.CrashHarness;

/// <summary>Shared by the workers of one round: the kill flags, the acknowledgement count and the errors.</summary>
public sealed class TrafficContext
{
    private volatile bool _killed, _stopped;
    private long _acknowledged;
    private int _continued, _cutOff;
    private readonly TaskCompletionSource _killDone = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>
    /// Scale-out: one replica of two is killed and the other goes on serving through the proxy, so the traffic goes
    /// on after the kill (until <see cref="Stopped"/>), and a request in flight at the kill is cut off, not fatal.
    /// </summary>
    public bool SurvivorServes { get; init; }

    /// <summary>Set just before the SIGKILL: a request that fails after it was in flight at the kill.</summary>
    public bool Killed { get => _killed; set => _killed = value; }

    /// <summary>The killed process is gone: every request sent from now on reaches the surviving replica.</summary>
    public bool KillDone => _killDone.Task.IsCompleted;

    /// <summary>Completes when <see cref="MarkKillDone"/> is called.</summary>
    public Task AfterKill => _killDone.Task;

    public void MarkKillDone() => _killDone.TrySetResult();

    /// <summary>The workers stop at their next step: with one server, at the kill; in scale-out, when the round ends.</summary>
    public bool Stopped { get => SurvivorServes ? _stopped : _killed; set => _stopped = value; }

    public long Acknowledged => Interlocked.Read(ref _acknowledged);
    public ConcurrentDictionary<string, int> AcknowledgedByKind { get; } = new();
    public ConcurrentQueue<string> Errors { get; } = new();

    /// <summary>Upload sessions opened before the kill and closed (201) by a request sent after it.</summary>
    public int SessionsContinuedAfterKill => Volatile.Read(ref _continued);

    /// <summary>Requests in flight at the kill that failed (what they did is unknown until the check).</summary>
    public int CutOff => Volatile.Read(ref _cutOff);

    public ConcurrentQueue<string> CutOffRequests { get; } = new();

    public void Ack(string kind)
    {
        Interlocked.Increment(ref _acknowledged);
        AcknowledgedByKind.AddOrUpdate(kind, 1, (_, n) => n + 1);
    }

    public void Continued() => Interlocked.Increment(ref _continued);

    public void CutOffRequest(string what)
    {
        Interlocked.Increment(ref _cutOff);
        CutOffRequests.Enqueue(what);
    }
}

/// <summary>
/// Scale-out: a request that was in flight when a replica was killed and failed because of it. What it did is unknown
/// (the ledger keeps it as unknown, the check settles it), never lost.
/// </summary>
public sealed class CutOffException(string message) : Exception(message);

/// <summary>A response the server should not have given: always an error, whether or not the kill came next.</summary>
public sealed class UnexpectedResponseException(string message) : Exception(message);

/// <summary>Small HTTP helpers shared by the workers and the checker.</summary>
internal static class Wire
{
    public const string ImageManifest = "application/vnd.oci.image.manifest.v1+json";
    public const string ImageIndex = "application/vnd.oci.image.index.v1+json";
    public const string ImageConfig = "application/vnd.oci.image.config.v1+json";
    public const string Layer = "application/vnd.oci.image.layer.v1.tar";

    public static HttpContent Bytes(byte[] data, int offset, int count, long? rangeStart = null)
    {
        var content = new ByteArrayContent(data, offset, count);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        if (rangeStart is { } start && count > 0)
            content.Headers.TryAddWithoutValidation("Content-Range", $"{start}-{start + count - 1}");
        return content;
    }

    public static string WithDigest(string location, string digest) =>
        location + (location.Contains('?') ? "&" : "?") + "digest=" + Uri.EscapeDataString(digest);

    /// <summary>The path (and query) of a Location, which may be absolute or relative.</summary>
    public static string PathOf(HttpResponseMessage response, string what)
    {
        var location = response.Headers.Location
                       ?? throw new UnexpectedResponseException($"{what}: {(int)response.StatusCode} without Location");
        return location.IsAbsoluteUri ? location.PathAndQuery : location.OriginalString;
    }

    public static async Task ExpectAsync(HttpResponseMessage response, HttpStatusCode status, string what,
        string? digest = null)
    {
        if (response.StatusCode != status)
        {
            var body = await response.Content.ReadAsStringAsync();
            throw new UnexpectedResponseException(
                $"{what}: expected {(int)status}, got {(int)response.StatusCode} {Truncate(body)}");
        }
        if (digest is not null
            && (!response.Headers.TryGetValues("Docker-Content-Digest", out var values) || values.FirstOrDefault() != digest))
            throw new UnexpectedResponseException($"{what}: Docker-Content-Digest is not {digest}");
    }

    public static string Truncate(string text, int max = 300) =>
        text.Length <= max ? text : text[..max] + "…";

    /// <summary>"0-N" from a Range header: the number of bytes the session holds (distribution reports 0-0 when empty).</summary>
    public static long? HeldBytes(HttpResponseMessage response)
    {
        if (!response.Headers.TryGetValues("Range", out var values)) return null;
        var value = values.First();
        if (value.StartsWith("bytes=", StringComparison.Ordinal)) value = value[6..];
        var parts = value.Split('-');
        if (parts.Length != 2 || !long.TryParse(parts[0], out var start) || !long.TryParse(parts[1], out var end) || start != 0)
            return null;
        return end == 0 ? 0 : end + 1;
    }

    /// <summary>
    /// What a request cut off by the kill throws. A SocketException may come unwrapped: ENOTCONN when the kill lands
    /// as a pooled connection is being reused.
    /// </summary>
    public static bool IsTransport(Exception e) =>
        e is HttpRequestException or IOException or TaskCanceledException or OperationCanceledException
            or System.Net.Sockets.SocketException;

    /// <summary>
    /// Sends one request. Scale-out: a request sent before the killed replica was gone that fails once the kill has
    /// begun is <see cref="CutOffException"/>: a transport error (the response was cut short), 502 or 504 from the
    /// proxy (the replica died with the request), or, for a PUT or DELETE that the proxy passed on to the other
    /// replica (nginx does so for idempotent methods whose whole body it still holds) after the first attempt had
    /// done some or all of it: 404 (the session was already closed, the manifest or tag already deleted), 416 (the
    /// PUT's chunk was already appended) or 400 DIGEST_INVALID (a PUT's body without Content-Range appended a second
    /// time; the session is then discarded).
    /// </summary>
    public static async Task<HttpResponseMessage> SendAsync(TrafficContext context, string what,
        Func<Task<HttpResponseMessage>> send, bool passedOnByProxy = false)
    {
        var inFlightAtKill = context.SurvivorServes && !context.KillDone;
        HttpResponseMessage response;
        try
        {
            response = await send();
        }
        catch (Exception e) when (inFlightAtKill && context.Killed && IsTransport(e))
        {
            throw new CutOffException($"{what}: {e.GetType().Name}: {e.Message}");
        }
        var status = response.StatusCode;
        if (inFlightAtKill && context.Killed
            && (status is HttpStatusCode.BadGateway or HttpStatusCode.GatewayTimeout
                || (passedOnByProxy && status is HttpStatusCode.NotFound or HttpStatusCode.RequestedRangeNotSatisfiable
                        or HttpStatusCode.BadRequest)))
        {
            response.Dispose();
            throw new CutOffException($"{what}: {(int)status}");
        }
        return response;
    }
}

/// <summary>
/// One client that owns one repository: it runs operations one after another until the kill, recording each in the
/// repository's ledger. Before a change is sent its entry is marked unknown; the acknowledgement makes it certain.
/// At most one change per repository is in flight when the server dies.
/// </summary>
public sealed class Worker(RepositoryLedger ledger, HttpClient http, Random rng, TrafficContext context,
    IReadOnlyList<Content> sharedLayers)
{
    private string Repo => ledger.Name;

    public async Task RunAsync()
    {
        while (!context.Stopped)
        {
            try
            {
                await StepAsync();
            }
            catch (CutOffException e)
            {
                // Scale-out: what a client does after a failed push or delete: go on with the next one.
                context.CutOffRequest($"{Repo}: {e.Message}");
            }
            catch (UnexpectedResponseException e)
            {
                context.Errors.Enqueue($"{Repo}: {e.Message}");
                return;
            }
            catch (Exception e) when (Wire.IsTransport(e))
            {
                if (!context.Killed)
                    context.Errors.Enqueue($"{Repo}: request failed before the kill: {e.GetType().Name}: {e.Message}");
                else if (context.SurvivorServes)
                    context.Errors.Enqueue($"{Repo}: request sent after the kill failed (the other replica should have served it): " +
                                           $"{e.GetType().Name}: {e.Message}");
                return;
            }
            catch (Exception e)
            {
                context.Errors.Enqueue($"{Repo}: harness failure: {e}");
                return;
            }
        }
    }

    private Task StepAsync()
    {
        var roll = rng.Next(100);
        return roll switch
        {
            < 30 => PushBlobAsync(Content.Random(rng.Next(), BlobSize()), standalone: true, mayAbandon: true),
            < 55 => PushImageAsync(),
            < 61 => PushIndexAsync(),
            < 71 => MoveTagAsync(),
            < 77 => DeleteTagAsync(),
            < 85 => DeleteManifestAsync(),
            < 93 => DeleteBlobAsync(),
            _ => PushChunkedAsync(Content.Random(rng.Next(), rng.Next(8 << 10, 1 << 20)), standalone: true, mayAbandon: true),
        };
    }

    private int BlobSize() => rng.Next(100) switch
    {
        0 => 0,
        < 60 => rng.Next(1, 16 << 10),
        < 92 => rng.Next(16 << 10, 256 << 10),
        _ => rng.Next(256 << 10, 2 << 20),
    };

    // A one-byte blob is never pushed in chunks: see the Range ambiguity in PushChunkedAsync.
    private Task PushBlobAsync(Content content, bool standalone, bool mayAbandon) => (content.Length, rng.Next(3)) switch
    {
        (_, 0) => PushSinglePostAsync(content, standalone),
        (<= 1, _) or (_, 1) => PushPostPutAsync(content, standalone),
        _ => PushChunkedAsync(content, standalone, mayAbandon),
    };

    // POST ?digest= with the whole blob.
    private async Task PushSinglePostAsync(Content content, bool standalone)
    {
        var blob = ledger.Blob(content, standalone);
        var bytes = content.Bytes();
        using var response = await Wire.SendAsync(context, $"single POST of {content.Digest}", () =>
            http.PostAsync($"v2/{Repo}/blobs/uploads/?digest={Uri.EscapeDataString(content.Digest)}", Wire.Bytes(bytes, 0, bytes.Length)));
        await Wire.ExpectAsync(response, HttpStatusCode.Created, $"single POST of {content.Digest}", content.Digest);
        blob.State = ObjectState.Present;
        context.Ack("blob");
    }

    private async Task<SessionEntry> OpenSessionAsync(Content content, bool standalone)
    {
        using var response = await Wire.SendAsync(context, "POST (open a session)", () => http.PostAsync($"v2/{Repo}/blobs/uploads/", null));
        await Wire.ExpectAsync(response, HttpStatusCode.Accepted, "POST (open a session)");
        var session = new SessionEntry(Wire.PathOf(response, "POST"), content, standalone) { OpenedBeforeKill = !context.Killed };
        ledger.Sessions.Add(session);
        context.Ack("session");
        return session;
    }

    // POST, then PUT ?digest= with the whole blob.
    private async Task PushPostPutAsync(Content content, bool standalone)
    {
        var session = await OpenSessionAsync(content, standalone);
        var bytes = content.Bytes();
        await CommitAsync(session, Wire.Bytes(bytes, 0, bytes.Length));
    }

    // POST, PATCH with Content-Range in several chunks, then PUT ?digest= (with or without a last chunk); or not.
    private async Task PushChunkedAsync(Content content, bool standalone, bool mayAbandon)
    {
        var session = await OpenSessionAsync(content, standalone);
        var bytes = content.Bytes();
        var cuts = Enumerable.Range(0, rng.Next(1, 6)).Select(_ => rng.Next(0, bytes.Length + 1))
            .Append(0).Append(bytes.Length).Distinct().Order()
            // A session of exactly one byte reports Range 0-0, like an empty one (as distribution does: the spec's
            // inclusive end cannot say "nothing"); keep that protocol ambiguity out of the way.
            .Where(c => c != 1).ToList();
        var lastInPut = cuts.Count > 2 && rng.Next(2) == 0;
        var patches = lastInPut ? cuts.Count - 2 : cuts.Count - 1;
        var abandon = mayAbandon && rng.Next(8) == 0;
        for (var i = 0; i < patches;)
        {
            var (start, end) = (cuts[i], cuts[i + 1]);
            session.Sent = end;
            HttpResponseMessage response;
            try
            {
                response = await Wire.SendAsync(context, $"PATCH {start}-{end - 1} of {content.Digest}",
                    () => http.PatchAsync(session.Location, Wire.Bytes(bytes, start, end - start, start)));
            }
            catch (CutOffException e)
            {
                // What a resumable client does: ask the session how much it holds, and go on from there.
                context.CutOffRequest($"{Repo}: {e.Message}");
                var held = await HeldAfterCutOffAsync(session);
                if (held == end) i++;
                else cuts[i] = (int)held;
                continue;
            }
            using (response)
            {
                await Wire.ExpectAsync(response, HttpStatusCode.Accepted, $"PATCH {start}-{end - 1} of {content.Digest}");
                if (Wire.HeldBytes(response) is not { } held || held != end)
                    throw new UnexpectedResponseException(
                        $"PATCH {start}-{end - 1} of {content.Digest}: Range {Range(response)} instead of 0-{end - 1}");
            }
            session.Acknowledged = end;
            context.Ack("chunk");
            if (abandon && i == patches / 2) return; // left open: the next check resumes it
            i++;
        }
        var last = lastInPut ? Wire.Bytes(bytes, cuts[^2], bytes.Length - cuts[^2], cuts[^2]) : null;
        await CommitAsync(session, last);
    }

    /// <summary>
    /// After a request of the session was cut off by the kill: GET its status through the proxy (the other replica
    /// answers). It must still exist and hold at least the acknowledged bytes and at most those sent.
    /// </summary>
    private async Task<long> HeldAfterCutOffAsync(SessionEntry session)
    {
        using var status = await Wire.SendAsync(context, $"GET {session.Location}", () => http.GetAsync(session.Location));
        await Wire.ExpectAsync(status, HttpStatusCode.NoContent,
            $"GET {session.Location} after a PATCH of it was cut off by the kill ({session.Acknowledged} bytes acknowledged)");
        if (Wire.HeldBytes(status) is not { } held)
            throw new UnexpectedResponseException($"GET {session.Location}: 204 without a valid Range");
        if (held < session.Acknowledged || held > session.Sent)
            throw new UnexpectedResponseException($"session {session.Location} holds {held} bytes after the kill, but " +
                                                  $"{session.Acknowledged} were acknowledged and {session.Sent} sent");
        session.Acknowledged = held;
        return held;
    }

    private static string Range(HttpResponseMessage response) =>
        response.Headers.TryGetValues("Range", out var values) ? values.First() : "(none)";

    private async Task CommitAsync(SessionEntry session, HttpContent? body)
    {
        var content = session.Content;
        var blob = ledger.Blob(content, session.Standalone);
        session.Sent = content.Length;
        session.CommitInFlight = true;
        var afterKill = context.KillDone;
        HttpResponseMessage response;
        try
        {
            response = await Wire.SendAsync(context, $"PUT (close the session) of {content.Digest}",
                () => http.PutAsync(Wire.WithDigest(session.Location, content.Digest), body), passedOnByProxy: true);
        }
        catch (CutOffException e)
        {
            context.CutOffRequest($"{Repo}: {e.Message}");
            await SettleCutOffCommitAsync(session, blob);
            return;
        }
        using (response)
            await Wire.ExpectAsync(response, HttpStatusCode.Created, $"PUT (close the session) of {content.Digest}", content.Digest);
        blob.State = ObjectState.Present;
        ledger.Sessions.Remove(session);
        context.Ack("blob");
        if (session.OpenedBeforeKill && afterKill) context.Continued();
    }

    /// <summary>
    /// The closing PUT was cut off by the kill: ask the session where it stands. Still open: send what it lacks and
    /// close it again. Gone: the PUT may have published the blob (the repository then has it) or not (unknown: the
    /// image this blob was for is not pushed).
    /// </summary>
    private async Task SettleCutOffCommitAsync(SessionEntry session, BlobEntry blob)
    {
        var content = session.Content;
        using (var status = await Wire.SendAsync(context, $"GET {session.Location}", () => http.GetAsync(session.Location)))
        {
            if (status.StatusCode == HttpStatusCode.NotFound)
            {
                ledger.Sessions.Remove(session);
                using var head = await Wire.SendAsync(context, $"HEAD blob {content.Digest}",
                    () => http.SendAsync(new HttpRequestMessage(HttpMethod.Head, $"v2/{Repo}/blobs/{content.Digest}")));
                if (head.StatusCode == HttpStatusCode.OK)
                {
                    blob.State = ObjectState.Present;
                    context.Ack("blob (seen after a cut-off PUT)");
                    return;
                }
                if (head.StatusCode != HttpStatusCode.NotFound)
                    await Wire.ExpectAsync(head, HttpStatusCode.OK, $"HEAD blob {content.Digest}");
                throw new CutOffException($"PUT of {content.Digest}: the session is gone and the blob is not in {Repo}");
            }
            await Wire.ExpectAsync(status, HttpStatusCode.NoContent, $"GET {session.Location} after its PUT was cut off by the kill");
            if (Wire.HeldBytes(status) is not { } held || held > content.Length)
                throw new UnexpectedResponseException($"GET {session.Location}: 204 without a valid Range");
            if (held == 0 && session.Acknowledged == 1) held = 1;
            if (held < session.Acknowledged)
                throw new UnexpectedResponseException($"session {session.Location} holds {held} bytes after the kill, but " +
                                                      $"{session.Acknowledged} were acknowledged");
            session.Acknowledged = held;
        }
        var bytes = content.Bytes();
        if (session.Acknowledged < bytes.Length)
        {
            var from = (int)session.Acknowledged;
            using var patch = await Wire.SendAsync(context, $"PATCH {from}- of {content.Digest}",
                () => http.PatchAsync(session.Location, Wire.Bytes(bytes, from, bytes.Length - from, from)));
            // "0-0" is both an empty session and a one-byte one: a one-byte blob whose byte landed refuses it again.
            if (!(patch.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable && from == 0 && bytes.Length == 1))
                await Wire.ExpectAsync(patch, HttpStatusCode.Accepted, $"PATCH {from}-{bytes.Length - 1} of {content.Digest} (resumed)");
            session.Acknowledged = bytes.Length;
            context.Ack("chunk");
        }
        session.CommitInFlight = false;
        await CommitAsync(session, null);
    }

    private async Task PushImageAsync()
    {
        var nonce = $"{Repo}#{ledger.Counter++}-{rng.Next()}";
        var config = Content.Of(Encoding.UTF8.GetBytes(
            $$"""{"architecture":"amd64","os":"linux","config":{"Labels":{"nonce":"{{nonce}}"} },"rootfs":{"type":"layers","diff_ids":[]} }"""));
        var layers = new List<Content>();
        var count = rng.Next(1, 4);
        for (var i = 0; i < count; i++)
        {
            var layer = rng.Next(4) == 0 ? sharedLayers[rng.Next(sharedLayers.Count)] : Content.Random(rng.Next(), BlobSize());
            if (!layers.Any(l => l.Digest == layer.Digest)) layers.Add(layer);
        }
        foreach (var blob in layers.Prepend(config))
        {
            // A blob this repository already holds need not be pushed again, but sometimes is (as clients do).
            if (ledger.Blobs.TryGetValue(blob.Digest, out var known) && known.State == ObjectState.Present && rng.Next(2) == 0)
                continue;
            await PushBlobAsync(blob, standalone: false, mayAbandon: false);
        }
        var layerJson = string.Join(",", layers.Select(l =>
            $$"""{"mediaType":"{{Wire.Layer}}","digest":"{{l.Digest}}","size":{{l.Length}}}"""));
        var manifest = Encoding.UTF8.GetBytes($$"""
            {"schemaVersion":2,"mediaType":"{{Wire.ImageManifest}}",
             "config":{"mediaType":"{{Wire.ImageConfig}}","digest":"{{config.Digest}}","size":{{config.Length}} },
             "layers":[{{layerJson}}],"annotations":{"nonce":"{{nonce}}"} }
            """);
        var entry = new ManifestEntry(manifest, Wire.ImageManifest, [config.Digest, .. layers.Select(l => l.Digest)], []);
        await PutManifestAsync(entry, Tags());
    }

    private async Task PushIndexAsync()
    {
        var images = ledger.Manifests.Values.Where(m => !m.IsIndex && m.State == ObjectState.Present).ToList();
        if (images.Count == 0)
        {
            await PushImageAsync();
            return;
        }
        var children = images.OrderBy(_ => rng.Next()).Take(rng.Next(1, 4)).ToList();
        foreach (var child in children) child.Pinned = true;
        var architectures = new[] { "amd64", "arm64", "s390x", "ppc64le" };
        var entries = string.Join(",", children.Select((c, i) =>
            $$"""{"mediaType":"{{c.MediaType}}","digest":"{{c.Digest}}","size":{{c.Bytes.Length}},"platform":{"os":"linux","architecture":"{{architectures[i]}}"} }"""));
        var index = Encoding.UTF8.GetBytes($$"""
            {"schemaVersion":2,"mediaType":"{{Wire.ImageIndex}}","manifests":[{{entries}}],"annotations":{"nonce":"{{Repo}}#{{ledger.Counter++}}"} }
            """);
        await PutManifestAsync(new ManifestEntry(index, Wire.ImageIndex, [], children.Select(c => c.Digest).ToList()), Tags());
    }

    /// <summary>No tag (push by digest), one tag, or two (the second with ?tag=).</summary>
    private List<string> Tags()
    {
        var roll = rng.Next(100);
        if (roll < 20) return [];
        var tags = new List<string> { RepositoryLedger.TagPool[rng.Next(RepositoryLedger.TagPool.Length)] };
        if (roll >= 85)
        {
            var second = RepositoryLedger.TagPool[rng.Next(RepositoryLedger.TagPool.Length)];
            if (second != tags[0]) tags.Add(second);
        }
        return tags;
    }

    private async Task PutManifestAsync(ManifestEntry manifest, IReadOnlyList<string> tags)
    {
        if (!ledger.Manifests.TryGetValue(manifest.Digest, out var entry)) ledger.Manifests[manifest.Digest] = entry = manifest;
        foreach (var tag in tags) ledger.Tag(tag).Pending.Add(entry.Digest);
        var url = tags.Count == 0
            ? $"v2/{Repo}/manifests/{entry.Digest}"
            : $"v2/{Repo}/manifests/{tags[0]}" + string.Concat(tags.Skip(1).Select((t, i) => (i == 0 ? "?" : "&") + "tag=" + t));
        var body = new ByteArrayContent(entry.Bytes);
        body.Headers.ContentType = new MediaTypeHeaderValue(entry.MediaType);
        using var response = await Wire.SendAsync(context, $"PUT manifest {entry.Digest}", () => http.PutAsync(url, body),
            passedOnByProxy: true);
        await Wire.ExpectAsync(response, HttpStatusCode.Created,
            $"PUT manifest {entry.Digest} as {(tags.Count == 0 ? "digest" : string.Join(",", tags))}", entry.Digest);
        if (entry.State != ObjectState.Present) entry.State = ObjectState.Present;
        foreach (var tag in tags)
        {
            var t = ledger.Tag(tag);
            t.Value = entry.Digest;
            t.Pending.Clear();
        }
        context.Ack(tags.Count == 0 ? "manifest" : "manifest+tag");
    }

    // Points a tag at a manifest the repository already holds (PUT of the same bytes under the tag).
    private async Task MoveTagAsync()
    {
        var present = ledger.Manifests.Values.Where(m => m.State == ObjectState.Present).ToList();
        if (present.Count == 0)
        {
            await PushImageAsync();
            return;
        }
        var manifest = present[rng.Next(present.Count)];
        await PutManifestAsync(manifest, [RepositoryLedger.TagPool[rng.Next(RepositoryLedger.TagPool.Length)]]);
    }

    private async Task DeleteTagAsync()
    {
        var tags = ledger.Tags.Where(t => t.Value.Value is not null).Select(t => t.Key).ToList();
        if (tags.Count == 0) return;
        var name = tags[rng.Next(tags.Count)];
        var tag = ledger.Tag(name);
        tag.Pending.Add(null);
        using var response = await Wire.SendAsync(context, $"DELETE tag {name}",
            () => http.DeleteAsync($"v2/{Repo}/manifests/{name}"), passedOnByProxy: true);
        await Wire.ExpectAsync(response, HttpStatusCode.Accepted, $"DELETE tag {name}");
        tag.Value = null;
        tag.Pending.Clear();
        context.Ack("tag delete");
    }

    // By digest: the manifest and every tag that points at it. Never one that an index references.
    private async Task DeleteManifestAsync()
    {
        var candidates = ledger.Manifests.Values.Where(m => m.State == ObjectState.Present && !m.Pinned).ToList();
        if (candidates.Count == 0) return;
        var manifest = candidates[rng.Next(candidates.Count)];
        var tags = ledger.Tags.Values.Where(t => t.Value == manifest.Digest).ToList();
        manifest.State = ObjectState.DeleteUnknown;
        foreach (var tag in tags) tag.Pending.Add(null);
        using var response = await Wire.SendAsync(context, $"DELETE manifest {manifest.Digest}",
            () => http.DeleteAsync($"v2/{Repo}/manifests/{manifest.Digest}"), passedOnByProxy: true);
        await Wire.ExpectAsync(response, HttpStatusCode.Accepted, $"DELETE manifest {manifest.Digest}");
        manifest.State = ObjectState.Deleted;
        foreach (var tag in tags)
        {
            tag.Value = null;
            tag.Pending.Clear();
        }
        context.Ack("manifest delete");
    }

    // Only blobs pushed on their own that no manifest references (the same content, e.g. the empty blob, may also
    // have become an image layer since).
    private async Task DeleteBlobAsync()
    {
        var referenced = ledger.Manifests.Values.SelectMany(m => m.Blobs).ToHashSet();
        var candidates = ledger.Blobs.Values
            .Where(b => b.Standalone && b.State == ObjectState.Present && !referenced.Contains(b.Content.Digest)).ToList();
        if (candidates.Count == 0) return;
        var blob = candidates[rng.Next(candidates.Count)];
        blob.State = ObjectState.DeleteUnknown;
        using var response = await Wire.SendAsync(context, $"DELETE blob {blob.Content.Digest}",
            () => http.DeleteAsync($"v2/{Repo}/blobs/{blob.Content.Digest}"), passedOnByProxy: true);
        await Wire.ExpectAsync(response, HttpStatusCode.Accepted, $"DELETE blob {blob.Content.Digest}");
        blob.State = ObjectState.Deleted;
        context.Ack("blob delete");
    }
}
