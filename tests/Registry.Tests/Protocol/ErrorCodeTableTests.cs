using System.Net;
using System.Net.Sockets;
using System.Reflection;
using System.Text;
using System.Text.RegularExpressions;
using Registry.Api.Http;
using Registry.Tests.Conformance;
using Registry.Tests.Infrastructure;

namespace Registry.Tests.Protocol;

/// <summary>
/// spec.md "Error Codes": "The code field MUST be one of the following". Every code the registry can write comes from
/// the one error table (<see cref="ErrorCode"/>), so walking the table walks every code it can emit; the HTTP tests
/// below then check the cases that used to answer codes of our own.
/// </summary>
public class ErrorCodeTableTests(RegistryFixture fixture) : IClassFixture<RegistryFixture>
{
    /// <summary>spec.md#error-codes (v1.1.1), code-1 to code-14, and EXTENSION_UNKNOWN from extensions/README.md.</summary>
    private static readonly HashSet<string> SpecCodes =
    [
        "BLOB_UNKNOWN", "BLOB_UPLOAD_INVALID", "BLOB_UPLOAD_UNKNOWN", "DIGEST_INVALID", "MANIFEST_BLOB_UNKNOWN",
        "MANIFEST_INVALID", "MANIFEST_UNKNOWN", "NAME_INVALID", "NAME_UNKNOWN", "SIZE_INVALID", "UNAUTHORIZED",
        "DENIED", "UNSUPPORTED", "TOOMANYREQUESTS", "EXTENSION_UNKNOWN",
    ];

    /// <summary>The spec defines no server-side codes; these two answer 5xx only.</summary>
    private static readonly HashSet<string> ServerCodes = ["UNKNOWN", "INSUFFICIENT_STORAGE"];

    private static IReadOnlyList<(string Field, ErrorCode Error)> Table() =>
        typeof(ErrorCode).GetFields(BindingFlags.Public | BindingFlags.Static)
            .Where(f => f.FieldType == typeof(ErrorCode))
            .Select(f => (f.Name, (ErrorCode)f.GetValue(null)!))
            .ToList();

    [Fact]
    public void Every_client_error_in_the_table_has_a_code_from_the_spec_table()
    {
        var table = Table();

        table.Should().NotBeEmpty();
        foreach (var (field, error) in table.Where(e => e.Error.Status is >= 400 and < 500))
            SpecCodes.Should().Contain(error.Code, $"ErrorCode.{field} answers {error.Status}");
    }

    [Fact]
    public void Codes_outside_the_spec_table_are_only_used_for_server_errors()
    {
        foreach (var (field, error) in Table().Where(e => !SpecCodes.Contains(e.Error.Code)))
        {
            ServerCodes.Should().Contain(error.Code, $"ErrorCode.{field} is not a spec code");
            error.Status.Should().BeGreaterThanOrEqualTo(500, $"ErrorCode.{field} is not a spec code");
        }
    }

    [Fact]
    public void A_code_appears_once_per_status()
    {
        Table().GroupBy(e => (e.Error.Code, e.Error.Status)).Where(g => g.Count() > 1).Select(g => g.Key)
            .Should().BeEmpty();
    }

    [Fact]
    public void Every_status_kestrel_can_reject_a_body_with_maps_to_a_spec_code()
    {
        foreach (var status in new[] { 400, 408, 411, 413, 417, 431 })
            SpecCodes.Should().Contain(ErrorCode.ForBadRequest(status).Code);
    }

    [Fact]
    public void No_source_file_builds_an_error_code_outside_the_table()
    {
        var src = Path.Combine(RepositoryRoot(), "src");
        var offenders = Directory.EnumerateFiles(src, "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.EndsWith(Path.Combine("Http", "RegistryError.cs"), StringComparison.Ordinal))
            .Where(f => Regex.IsMatch(File.ReadAllText(f), @"new\s+ErrorCode\s*\("))
            .ToList();

        offenders.Should().BeEmpty("every code comes from the one table in RegistryError.cs");
    }

    private static string RepositoryRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Registry.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("Registry.sln not found above the test binaries");
    }

    // ---- the cases that answered codes of their own before ----

    [Theory]
    [InlineData("nothing/here")]
    [InlineData("v3/")]
    public async Task A_path_outside_the_api_returns_404_NAME_UNKNOWN(string path)
    {
        var response = await fixture.Client.GetAsync(path);

        await response.ShouldBeErrorAsync(HttpStatusCode.NotFound, "NAME_UNKNOWN");
    }

    [Theory]
    [InlineData("v2/team/app")]
    [InlineData("v2/team/app/unknown/thing")]
    [InlineData("v2/team/app/manifests/")]
    public async Task A_path_under_v2_that_names_no_repository_endpoint_returns_404_NAME_UNKNOWN(string path)
    {
        var response = await fixture.Client.GetAsync(path);

        await response.ShouldBeErrorAsync(HttpStatusCode.NotFound, "NAME_UNKNOWN");
    }

    [Fact]
    public async Task A_missing_extension_document_returns_404_EXTENSION_UNKNOWN()
    {
        var response = await fixture.Client.GetAsync("docs/extensions/_nothing/here.md");

        await response.ShouldBeErrorAsync(HttpStatusCode.NotFound, "EXTENSION_UNKNOWN");
    }

    [Theory]
    [InlineData("POST")]
    [InlineData("DELETE")]
    public async Task Another_method_on_an_extension_document_returns_405_UNSUPPORTED(string method)
    {
        var response = await fixture.Client.SendAsync(new HttpRequestMessage(new HttpMethod(method), "docs/extensions/_oci.md"));

        await response.ShouldBeErrorAsync(HttpStatusCode.MethodNotAllowed, "UNSUPPORTED");
    }

    [Theory]
    [InlineData("/v2/../../etc/manifests/latest")]
    [InlineData("/v2/a/%2e%2e/%2e%2e/manifests/latest")]
    [InlineData("/v2/a%2f..%2f..%2fb/manifests/latest")]
    [InlineData("/v2/a%5c..%5cb/manifests/latest")]
    [InlineData("/v2/a/blobs/uploads/..%2f..%2fmetadata.db")]
    [InlineData("/v2/a/manifests/..%2f..%2fmetadata.db")]
    public async Task A_traversal_path_is_refused_with_a_spec_code(string path)
    {
        var (status, body) = await RawAsync($"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");

        status.Should().BeOneOf([400, 404], body);
        CodeOf(body).Should().BeOneOf(SpecCodes, body);
    }

    [Theory]
    [InlineData("v2/{repo}/tags/list?n=-1")]
    [InlineData("v2/{repo}/tags/list?n=abc")]
    [InlineData("v2/_catalog?n=x")]
    [InlineData("v2/{repo}/referrers/{digest}?n=-5")]
    [InlineData("v2/_registry/search/repositories?n=nope")]
    [InlineData("v2/{repo}/_registry/tags/details?n=1.5")]
    public async Task An_invalid_n_returns_400_UNSUPPORTED(string template)
    {
        var repo = RegistryFixture.NewRepo("hygiene");
        var (_, digest) = await Infrastructure.Http.PushImageAsync(fixture.Client, repo, "v1");

        var response = await fixture.Client.GetAsync(template.Replace("{repo}", repo).Replace("{digest}", digest));

        await response.ShouldBeErrorAsync(HttpStatusCode.BadRequest, "UNSUPPORTED");
    }

    [Fact]
    public async Task A_body_kestrel_cannot_read_returns_a_spec_code()
    {
        var repo = RegistryFixture.NewRepo("hygiene");

        var (status, body) = await RawAsync(
            $"PUT /v2/{repo}/manifests/v1 HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\n" +
            "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz-not-a-chunk-size\r\n\r\n");

        status.Should().Be(400, body);
        CodeOf(body).Should().Be("UNSUPPORTED", body);
    }

    private static string? CodeOf(string rawResponse)
    {
        var match = Regex.Match(rawResponse, "\"code\":\"([A-Z_]+)\"");
        return match.Success ? match.Groups[1].Value : null;
    }

    private async Task<(int Status, string Response)> RawAsync(string request)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, fixture.Server.BaseAddress.Port);
        await using var stream = tcp.GetStream();
        await stream.WriteAsync(Encoding.Latin1.GetBytes(request));
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var received = new MemoryStream();
        var buffer = new byte[8192];
        try
        {
            int read;
            while ((read = await stream.ReadAsync(buffer, timeout.Token)) > 0) received.Write(buffer, 0, read);
        }
        catch (IOException) { }
        var text = Encoding.Latin1.GetString(received.ToArray());
        return (text.Length >= 12 ? int.Parse(text.AsSpan(9, 3)) : 0, text);
    }
}
