using System.Text.Json;
using Registry.Storage.Model;

namespace Registry.Api.Extensions.Events;

/// <summary>Which events a consumer wants: repository patterns and actions (empty means all).</summary>
internal sealed record EventFilter(IReadOnlyList<string> Repositories, IReadOnlyList<string> Actions)
{
    public bool Matches(RegistryEvent e) =>
        (Actions.Count == 0 || Actions.Contains(e.Action))
        && (Repositories.Count == 0 || Repositories.Any(pattern => Glob(pattern, e.Repository)));

    /// <summary><c>*</c> matches any run of characters (slashes included), <c>?</c> exactly one.</summary>
    internal static bool Glob(ReadOnlySpan<char> pattern, ReadOnlySpan<char> text) => Registry.Storage.Model.Glob.Matches(pattern, text);
}

internal static class EventJson
{
    public const string MediaType = "application/vnd.registry.event.v1+json";

    public static void Write(Utf8JsonWriter writer, RegistryEvent e)
    {
        writer.WriteStartObject();
        writer.WriteNumber("id", e.Id);
        writer.WriteString("timestamp", e.At);
        writer.WriteString("action", e.Action);
        writer.WriteString("repository", e.Repository);
        if (e.Digest is not null) writer.WriteString("digest", e.Digest);
        if (e.Tag is not null) writer.WriteString("tag", e.Tag);
        if (e.MediaType is not null) writer.WriteString("mediaType", e.MediaType);
        if (e.Size is { } size) writer.WriteNumber("size", size);
        writer.WriteEndObject();
    }

    public static byte[] Serialize(RegistryEvent e)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer, Http.Responses.WriterOptions)) Write(writer, e);
        return buffer.WrittenSpan.ToArray();
    }
}
