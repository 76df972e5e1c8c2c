using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.Json;

namespace Registry.CrashHarness;

public sealed class CheckResult
{
    private long _checked;
    private int _resumed, _gone;
    public long Checked => Interlocked.Read(ref _checked);
    public int SessionsResumed => _resumed;
    public int SessionsGone => _gone;
    public ConcurrentQueue<string> Errors { get; } = new();
    internal void Count() => Interlocked.Increment(ref _checked);
    internal void Resumed() => Interlocked.Increment(ref _resumed);
    internal void Gone() => Interlocked.Increment(ref _gone);
}

/// <summary>
/// After a restart: everything acknowledged must be there with its bytes, everything whose delete was acknowledged
/// must be gone, each tag must point where its last acknowledged write put it (or where a write in flight at the kill
/// would have), and open upload sessions must resume from the offset they report (or be gone). What was in flight is
/// then settled by observation, so the next round starts from an exact ledger.
/// </summary>
public sealed class Checker(HttpClient http, CheckResult result)
{
    public static async Task<CheckResult> RunAsync(IEnumerable<RepositoryLedger> ledgers, Uri baseAddress)
    {
        var result = new CheckResult();
        using var http = Harness.NewClient(baseAddress);
        var checker = new Checker(http, result);
        using var gate = new SemaphoreSlim(4);
        await Task.WhenAll(ledgers.Select(async ledger =>
        {
            await gate.WaitAsync();
            try
            {
                await checker.CheckAsync(ledger);
            }
            catch (Exception e)
            {
                result.Errors.Enqueue($"{ledger.Name}: check failed: {e.GetType().Name}: {e.Message}");
            }
            finally
            {
                gate.Release();
            }
        }));
        return result;
    }

    private void Error(RepositoryLedger ledger, string message) => result.Errors.Enqueue($"{ledger.Name}: {message}");

    private async Task CheckAsync(RepositoryLedger ledger)
    {
        var pullable = new HashSet<string>();
        await CheckBlobsAsync(ledger, pullable);
        await CheckManifestsAsync(ledger, pullable);
        await CheckTagsAsync(ledger);
        await CheckSessionsAsync(ledger);
    }

    private async Task CheckBlobsAsync(RepositoryLedger ledger, HashSet<string> pullable)
    {
        foreach (var (digest, blob) in ledger.Blobs.ToList())
        {
            var found = await PullBlobAsync(ledger, blob.Content);
            result.Count();
            switch (blob.State)
            {
                case ObjectState.Present when found != true:
                    Error(ledger, $"acknowledged blob {digest} ({blob.Content.Length} bytes) is not pullable");
                    break;
                case ObjectState.Deleted when found != false:
                    Error(ledger, $"blob {digest} whose delete was acknowledged is pullable again");
                    break;
                case ObjectState.PushUnknown:
                    if (found == true) blob.State = ObjectState.Present;
                    else ledger.Blobs.Remove(digest);
                    break;
                case ObjectState.DeleteUnknown:
                    blob.State = found == true ? ObjectState.Present : ObjectState.Deleted;
                    break;
            }
            if (found == true) pullable.Add(digest);
        }
    }

    /// <summary>true: pulled with the right bytes; false: 404; null: anything else (reported).</summary>
    private async Task<bool?> PullBlobAsync(RepositoryLedger ledger, Content content)
    {
        using var response = await http.GetAsync($"v2/{ledger.Name}/blobs/{content.Digest}", HttpCompletionOption.ResponseHeadersRead);
        if (response.StatusCode == HttpStatusCode.NotFound) return false;
        if (response.StatusCode != HttpStatusCode.OK)
        {
            Error(ledger, $"GET blob {content.Digest}: {(int)response.StatusCode} {Wire.Truncate(await response.Content.ReadAsStringAsync())}");
            return null;
        }
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        await using var stream = await response.Content.ReadAsStreamAsync();
        var buffer = new byte[81920];
        long length = 0;
        int read;
        while ((read = await stream.ReadAsync(buffer)) > 0)
        {
            hash.AppendData(buffer, 0, read);
            length += read;
        }
        var actual = "sha256:" + Convert.ToHexStringLower(hash.GetHashAndReset());
        if (actual != content.Digest || length != content.Length)
        {
            Error(ledger, $"blob {content.Digest} pulls {length} bytes hashing to {actual}, not {content.Length} bytes");
            return null;
        }
        return true;
    }

    /// <summary>The manifest's bytes and digest header, or null on 404 (anything else is reported and is null too).</summary>
    private async Task<(byte[] Bytes, string? Digest, string? MediaType)?> GetManifestAsync(RepositoryLedger ledger, string reference)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"v2/{ledger.Name}/manifests/{reference}");
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(Wire.ImageManifest));
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(Wire.ImageIndex));
        using var response = await http.SendAsync(request);
        if (response.StatusCode == HttpStatusCode.NotFound) return null;
        var bytes = await response.Content.ReadAsByteArrayAsync();
        if (response.StatusCode != HttpStatusCode.OK)
        {
            Error(ledger, $"GET manifest {reference}: {(int)response.StatusCode} {Wire.Truncate(System.Text.Encoding.UTF8.GetString(bytes))}");
            return null;
        }
        var digest = response.Headers.TryGetValues("Docker-Content-Digest", out var values) ? values.First() : null;
        return (bytes, digest, response.Content.Headers.ContentType?.MediaType);
    }

    private async Task CheckManifestsAsync(RepositoryLedger ledger, HashSet<string> pullableBlobs)
    {
        var pullable = new HashSet<string>();
        foreach (var (digest, manifest) in ledger.Manifests.ToList())
        {
            var got = await GetManifestAsync(ledger, digest);
            result.Count();
            var found = got is not null;
            if (got is { } m && (!m.Bytes.AsSpan().SequenceEqual(manifest.Bytes) || m.Digest != digest || m.MediaType != manifest.MediaType))
            {
                Error(ledger, $"manifest {digest} pulls {m.Bytes.Length} other bytes (digest header {m.Digest}, type {m.MediaType})");
                found = false;
            }
            switch (manifest.State)
            {
                case ObjectState.Present when !found:
                    Error(ledger, $"acknowledged manifest {digest} is not pullable by digest");
                    break;
                case ObjectState.Deleted when got is not null:
                    Error(ledger, $"manifest {digest} whose delete was acknowledged is pullable again");
                    break;
                case ObjectState.PushUnknown:
                    if (found) manifest.State = ObjectState.Present;
                    else ledger.Manifests.Remove(digest);
                    break;
                case ObjectState.DeleteUnknown:
                    manifest.State = found ? ObjectState.Present : ObjectState.Deleted;
                    break;
            }
            if (found) pullable.Add(digest);
        }
        // Everything a present manifest references must be there too.
        foreach (var manifest in ledger.Manifests.Values.Where(m => m.State == ObjectState.Present))
        {
            foreach (var blob in manifest.Blobs.Where(b => !pullableBlobs.Contains(b)))
                Error(ledger, $"manifest {manifest.Digest} references blob {blob}, which is not pullable");
            foreach (var child in manifest.Children.Where(c => !pullable.Contains(c)))
                Error(ledger, $"index {manifest.Digest} references manifest {child}, which is not pullable");
        }
    }

    private async Task CheckTagsAsync(RepositoryLedger ledger)
    {
        foreach (var (name, tag) in ledger.Tags)
        {
            var got = await GetManifestAsync(ledger, name);
            result.Count();
            var observed = got?.Digest;
            if (got is { } m)
            {
                if (observed is null || !ledger.Manifests.TryGetValue(observed, out var target) || target.State != ObjectState.Present)
                {
                    Error(ledger, $"tag {name} points at {observed ?? "(no digest header)"}, which no acknowledged push created");
                    continue;
                }
                if (!m.Bytes.AsSpan().SequenceEqual(target.Bytes))
                    Error(ledger, $"tag {name} pulls bytes that are not those of {observed}");
            }
            if (!tag.Allows(observed))
            {
                var allowed = string.Join(" or ", tag.Pending.Prepend(tag.Value).Distinct().Select(v => v ?? "absent"));
                Error(ledger, $"tag {name} is {observed ?? "absent"}, expected {allowed}");
            }
            tag.Value = observed;
            tag.Pending.Clear();
        }

        using var response = await http.GetAsync($"v2/{ledger.Name}/tags/list?n=1000");
        result.Count();
        var expected = ledger.Tags.Where(t => t.Value.Value is not null).Select(t => t.Key).Order().ToList();
        if (response.StatusCode == HttpStatusCode.NotFound && expected.Count == 0) return;
        var body = await response.Content.ReadAsStringAsync();
        if (response.StatusCode != HttpStatusCode.OK)
        {
            Error(ledger, $"GET tags/list: {(int)response.StatusCode} {Wire.Truncate(body)}");
            return;
        }
        using var document = JsonDocument.Parse(body);
        var listed = document.RootElement.TryGetProperty("tags", out var tags) && tags.ValueKind == JsonValueKind.Array
            ? tags.EnumerateArray().Select(t => t.GetString()!).Order().ToList()
            : [];
        if (!listed.SequenceEqual(expected))
            Error(ledger, $"tags/list is [{string.Join(",", listed)}], the tags that pull are [{string.Join(",", expected)}]");
    }

    /// <summary>
    /// A session left open answers 204 with the bytes it holds (at least those acknowledged, at most those sent): the
    /// client resumes from there and closes it, and the blob must then pull. Or it is gone (404).
    /// </summary>
    private async Task CheckSessionsAsync(RepositoryLedger ledger)
    {
        foreach (var session in ledger.Sessions.ToList())
        {
            ledger.Sessions.Remove(session);
            result.Count();
            var content = session.Content;
            using var status = await http.GetAsync(session.Location);
            if (status.StatusCode == HttpStatusCode.NotFound)
            {
                result.Gone();
                continue; // a commit in flight may have published the blob: CheckBlobsAsync settled that
            }
            if (status.StatusCode != HttpStatusCode.NoContent)
            {
                Error(ledger, $"GET {session.Location}: {(int)status.StatusCode} {Wire.Truncate(await status.Content.ReadAsStringAsync())}");
                continue;
            }
            if (Wire.HeldBytes(status) is not { } held)
            {
                Error(ledger, $"GET {session.Location}: 204 without a valid Range");
                continue;
            }
            // "0-0" is both an empty session and a one-byte one.
            if (held == 0 && session.Acknowledged == 1) held = 1;
            if (held < session.Acknowledged)
            {
                Error(ledger, $"session {session.Location} holds {held} bytes but {session.Acknowledged} were acknowledged");
                continue;
            }
            if (held > session.Sent)
            {
                Error(ledger, $"session {session.Location} holds {held} bytes but only {session.Sent} were sent");
                continue;
            }

            var bytes = content.Bytes();
            if (held < bytes.Length)
            {
                using var patch = await http.PatchAsync(session.Location,
                    Wire.Bytes(bytes, (int)held, bytes.Length - (int)held, held));
                if (patch.StatusCode != HttpStatusCode.Accepted)
                {
                    Error(ledger, $"resuming {session.Location} at {held}: PATCH answered {(int)patch.StatusCode} " +
                                  Wire.Truncate(await patch.Content.ReadAsStringAsync()));
                    continue;
                }
            }
            using var put = await http.PutAsync(Wire.WithDigest(session.Location, content.Digest), null);
            if (put.StatusCode != HttpStatusCode.Created)
            {
                Error(ledger, $"closing resumed session {session.Location} ({held} of {bytes.Length} bytes were kept): " +
                              $"PUT answered {(int)put.StatusCode} {Wire.Truncate(await put.Content.ReadAsStringAsync())}");
                continue;
            }
            result.Resumed();
            var blob = ledger.Blob(content, session.Standalone);
            if (await PullBlobAsync(ledger, content) == true) blob.State = ObjectState.Present;
            else Error(ledger, $"blob {content.Digest} of a resumed session is not pullable after its 201");
            result.Count();
        }
    }
}
