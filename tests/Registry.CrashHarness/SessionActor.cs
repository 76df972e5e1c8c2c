using System.Net;

namespace Registry.CrashHarness;

/// <summary>
/// Scale-out: upload sessions that are open across the kill, on purpose. Before the kill it opens
/// <see cref="Sessions"/> sessions in its own repository through the proxy and sends part of each (round-robin
/// spreads their requests over both replicas, so the replica about to die served some of them); then it waits for the
/// kill and continues every one through the proxy, which can only reach the surviving replica: <c>GET</c> must report
/// exactly the bytes acknowledged, the rest goes in a <c>PATCH</c>, and the <c>PUT</c> must answer 201. Each such
/// session counts in <see cref="TrafficContext.SessionsContinuedAfterKill"/>; anything else is an error.
/// </summary>
public sealed class SessionActor(RepositoryLedger ledger, HttpClient http, Random rng, TrafficContext context)
{
    public const int Sessions = 4;

    private readonly TaskCompletionSource _opened = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes when the sessions are open and half written (or opening them failed).</summary>
    public Task Opened => _opened.Task;

    /// <summary>The sessions opened before the kill and closed after it.</summary>
    public List<SessionEntry> Continued { get; } = [];

    private string Repo => ledger.Name;

    public async Task RunAsync()
    {
        var open = new List<SessionEntry>();
        try
        {
            for (var i = 0; i < Sessions; i++)
            {
                // One bigger than an S3 part (8 MiB): its continuation uploads a part from the tail the other replica
                // may have written. The others stay in the tail object.
                var size = i == 0 ? rng.Next(9 << 20, 14 << 20) : rng.Next(16 << 10, 1 << 20);
                open.Add(await OpenAsync(Content.Random(rng.Next(), size)));
            }
        }
        catch (Exception e)
        {
            context.Errors.Enqueue($"{Repo}: opening sessions before the kill: {e.GetType().Name}: {e.Message}");
            return;
        }
        finally
        {
            _opened.TrySetResult();
        }

        await context.AfterKill;
        foreach (var session in open)
        {
            try
            {
                await ContinueAsync(session);
            }
            catch (Exception e)
            {
                context.Errors.Enqueue($"{Repo}: continuing {session.Location} after the kill: {e.GetType().Name}: {e.Message}");
            }
        }
    }

    private async Task<SessionEntry> OpenAsync(Content content)
    {
        using var post = await http.PostAsync($"v2/{Repo}/blobs/uploads/", null);
        await Wire.ExpectAsync(post, HttpStatusCode.Accepted, "POST (open a session)");
        var session = new SessionEntry(Wire.PathOf(post, "POST"), content, standalone: true) { OpenedBeforeKill = true };
        ledger.Sessions.Add(session);
        ledger.Blob(content, standalone: true);
        context.Ack("session");

        // Two chunks, so the session's state has been written twice, likely by both replicas.
        var bytes = content.Bytes();
        var cuts = new[] { 0, bytes.Length / 4, bytes.Length / 2 + rng.Next(bytes.Length / 4) };
        for (var i = 0; i + 1 < cuts.Length; i++)
        {
            var (start, end) = (cuts[i], cuts[i + 1]);
            session.Sent = end;
            using var patch = await http.PatchAsync(session.Location, Wire.Bytes(bytes, start, end - start, start));
            await Wire.ExpectAsync(patch, HttpStatusCode.Accepted, $"PATCH {start}-{end - 1} of {content.Digest}");
            session.Acknowledged = end;
            context.Ack("chunk");
        }
        return session;
    }

    private async Task ContinueAsync(SessionEntry session)
    {
        var content = session.Content;
        using (var status = await http.GetAsync(session.Location))
        {
            await Wire.ExpectAsync(status, HttpStatusCode.NoContent, $"GET {session.Location}");
            if (Wire.HeldBytes(status) != session.Acknowledged)
                throw new UnexpectedResponseException($"GET {session.Location}: Range {Wire.HeldBytes(status)?.ToString() ?? "(none)"} " +
                                                      $"but {session.Acknowledged} bytes were acknowledged before the kill");
        }
        var bytes = content.Bytes();
        var from = (int)session.Acknowledged;
        session.Sent = bytes.Length;
        using (var patch = await http.PatchAsync(session.Location, Wire.Bytes(bytes, from, bytes.Length - from, from)))
            await Wire.ExpectAsync(patch, HttpStatusCode.Accepted, $"PATCH {from}-{bytes.Length - 1} of {content.Digest}");
        session.Acknowledged = bytes.Length;
        context.Ack("chunk");
        session.CommitInFlight = true;
        using (var put = await http.PutAsync(Wire.WithDigest(session.Location, content.Digest), null))
            await Wire.ExpectAsync(put, HttpStatusCode.Created, $"PUT (close the session) of {content.Digest}", content.Digest);
        ledger.Sessions.Remove(session);
        ledger.Blob(content, standalone: true).State = ObjectState.Present;
        context.Ack("blob");
        context.Continued();
        Continued.Add(session);
    }
}
