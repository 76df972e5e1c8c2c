using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Registry.Tests.Auth;

/// <summary>Hand-made JWTs for the tests: valid ones from a test's own key, and every kind of broken one.</summary>
internal static class TestJwt
{
    public static string Encode(JsonObject header, JsonObject payload, Func<byte[], byte[]>? sign)
    {
        var input = $"{B64(header)}.{B64(payload)}";
        var signature = sign is null ? "" : Base64Url.EncodeToString(sign(Encoding.ASCII.GetBytes(input)));
        return $"{input}.{signature}";
    }

    public static string EcSigned(ECDsa key, string? kid, JsonObject payload, JsonObject? extraHeader = null)
    {
        var header = new JsonObject { ["alg"] = "ES256", ["typ"] = "JWT" };
        if (kid is not null) header["kid"] = kid;
        foreach (var (name, value) in extraHeader ?? []) header[name] = value?.DeepClone();
        return Encode(header, payload, data => key.SignData(data, HashAlgorithmName.SHA256));
    }

    /// <summary>Claims of a Docker registry token for one repository.</summary>
    public static JsonObject Claims(string issuer, string audience, string subject, string repository, string[] actions,
        DateTimeOffset? expires = null, DateTimeOffset? notBefore = null)
    {
        var now = DateTimeOffset.UtcNow;
        return new JsonObject
        {
            ["iss"] = issuer,
            ["sub"] = subject,
            ["aud"] = audience,
            ["exp"] = (expires ?? now.AddMinutes(5)).ToUnixTimeSeconds(),
            ["nbf"] = (notBefore ?? now.AddSeconds(-1)).ToUnixTimeSeconds(),
            ["iat"] = now.ToUnixTimeSeconds(),
            ["jti"] = Guid.NewGuid().ToString("N"),
            ["access"] = new JsonArray(new JsonObject
            {
                ["type"] = "repository", ["name"] = repository,
                ["actions"] = new JsonArray(actions.Select(a => (JsonNode)a!).ToArray()),
            }),
        };
    }

    public static JsonObject Header(string token) => Part(token, 0);

    public static JsonObject Payload(string token) => Part(token, 1);

    private static JsonObject Part(string token, int index) =>
        JsonNode.Parse(Base64Url.DecodeFromChars(token.Split('.')[index]))!.AsObject();

    /// <summary>The token with its payload replaced and the original signature kept.</summary>
    public static string Tampered(string token, Action<JsonObject> change)
    {
        var parts = token.Split('.');
        var payload = Payload(token);
        change(payload);
        return $"{parts[0]}.{B64(payload)}.{parts[2]}";
    }

    private static string B64(JsonObject json) =>
        Base64Url.EncodeToString(Encoding.UTF8.GetBytes(json.ToJsonString(new JsonSerializerOptions())));
}
