using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Registry.Tests.Auth;

/// <summary>Passwords, Authorization headers and tokens never reach the logs, whatever happens to a login.</summary>
public sealed class SecretLoggingTests
{
    [Theory]
    [InlineData("htpasswd")]
    [InlineData("token")]
    public async Task No_password_or_token_is_ever_logged(string mode)
    {
        var sink = new CapturingLoggerProvider();
        await using var auth = await AuthServer.StartAsync(mode,
            new Dictionary<string, string> { ["alice"] = "s3cret-Pa55" },
            new Dictionary<string, string?> { ["Logging:LogLevel:Default"] = "Trace" },
            services => services.AddSingleton<ILoggerProvider>(sink));
        using var right = auth.As("alice", "s3cret-Pa55");
        using var wrong = auth.As("alice", "wr0ng-Pa55");
        string? token = null;

        await wrong.GetAsync("v2/");
        await right.GetAsync("v2/");
        if (mode == "token")
        {
            var response = await right.GetAsync("auth/token?service=registry&scope=repository:a/b:pull");
            response.StatusCode.Should().Be(HttpStatusCode.OK);
            using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            token = json.RootElement.GetProperty("token").GetString();
            await auth.WithToken(token!).GetAsync("v2/a/b/tags/list");
            await auth.WithToken(token! + "x").GetAsync("v2/a/b/tags/list");
            await auth.Anonymous().PostAsync("auth/token", new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["grant_type"] = "password", ["username"] = "alice", ["password"] = "wr0ng-Pa55", ["service"] = "registry",
            }));
        }

        sink.Messages.Should().NotBeEmpty();
        foreach (var secret in new[] { "s3cret-Pa55", "wr0ng-Pa55", "YWxpY2U6czNjcmV0LVBhNTU", token }.OfType<string>())
            sink.Messages.Should().NotContain(m => m.Contains(secret, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("htpasswd")]
    [InlineData("token")]
    public async Task The_access_log_names_the_authenticated_user_and_no_one_for_anonymous_requests(string mode)
    {
        var sink = new CapturingLoggerProvider();
        await using var auth = await AuthServer.StartAsync(mode, new Dictionary<string, string> { ["alice"] = "alice-pw" },
            services: services => services.AddSingleton<ILoggerProvider>(sink));
        using var alice = auth.As("alice", "alice-pw");
        if (mode == "token")
        {
            using var json = JsonDocument.Parse(await alice.GetStringAsync("auth/token?service=registry&scope=repository:a/b:pull"));
            alice.DefaultRequestHeaders.Authorization =
                new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", json.RootElement.GetProperty("token").GetString());
        }
        using var named = new HttpRequestMessage(HttpMethod.Get, "v2/a/b/tags/list");
        named.Headers.Add("X-Request-Id", "as-alice");
        using var anonymous = new HttpRequestMessage(HttpMethod.Get, "v2/a/b/tags/list");
        anonymous.Headers.Add("X-Request-Id", "as-nobody");

        await alice.SendAsync(named);
        await auth.Anonymous().SendAsync(anonymous);

        sink.Messages.Should().ContainSingle(m => m.Contains("request_id=as-alice", StringComparison.Ordinal))
            .Which.Should().Contain("identity=alice");
        sink.Messages.Should().ContainSingle(m => m.Contains("request_id=as-nobody", StringComparison.Ordinal))
            .Which.Should().Contain("identity=-");
    }

    private sealed class CapturingLoggerProvider : ILoggerProvider
    {
        public ConcurrentQueue<string> Messages { get; } = new();

        public ILogger CreateLogger(string categoryName) => new Logger(this);

        public void Dispose() { }

        private sealed class Logger(CapturingLoggerProvider provider) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception,
                Func<TState, Exception?, string> formatter) =>
                provider.Messages.Enqueue(formatter(state, exception) + exception);
        }
    }
}
