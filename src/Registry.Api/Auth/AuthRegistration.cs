using Microsoft.Extensions.Options;
using Registry.Api.Configuration;
using Registry.Api.Http;

namespace Registry.Api.Auth;

/// <summary>Wires <c>Registry:Auth</c>: the access policy for the mode, and the built-in token service when it serves.</summary>
internal static class AuthRegistration
{
    /// <summary>The mode, read straight from configuration (so that routes can be mapped before options bind).</summary>
    public static AuthMode ModeOf(IConfiguration configuration) =>
        Enum.TryParse<AuthMode>(configuration[$"{RegistryOptions.Section}:Auth:Mode"], ignoreCase: true, out var mode)
            ? mode
            : AuthMode.None;

    public static IServiceCollection AddRegistryAuth(this IServiceCollection services, IConfiguration configuration)
    {
        if (ModeOf(configuration) == AuthMode.None)
        {
            services.AddSingleton<IAccessPolicy, AllowAllPolicy>();
            return services;
        }
        services.AddSingleton(provider => provider.GetRequiredService<IOptions<RegistryOptions>>().Value.Auth);
        services.AddSingleton(provider => new AccessRules(provider.GetRequiredService<AuthSettings>()));
        services.AddSingleton(provider => new LoginThrottle(provider.GetRequiredService<AuthSettings>().FailedLogins,
            provider.GetRequiredService<TimeProvider>()));
        services.AddSingleton(provider =>
        {
            var settings = provider.GetRequiredService<AuthSettings>();
            return new HtpasswdUsers(settings.Htpasswd.Path!, settings.Htpasswd.CacheDuration,
                provider.GetRequiredService<TimeProvider>(),
                provider.GetRequiredService<ILoggerFactory>().CreateLogger("Registry.Auth"));
        });
        services.AddSingleton(provider =>
        {
            var options = provider.GetRequiredService<IOptions<RegistryOptions>>().Value;
            return TokenSigningKey.Load(options.Auth.Token.SigningKey, options.Storage.Path);
        });
        services.AddSingleton(provider =>
        {
            var settings = provider.GetRequiredService<AuthSettings>();
            return new TokenValidator(settings.Token,
                settings.Token.IsExternal ? null : provider.GetRequiredService<TokenSigningKey>(),
                provider.GetRequiredService<TimeProvider>());
        });
        services.AddSingleton(provider =>
        {
            var settings = provider.GetRequiredService<AuthSettings>();
            var needsUsers = settings.Mode == AuthMode.Htpasswd || !settings.Token.IsExternal;
            return new RegistryAccessPolicy(settings, provider.GetRequiredService<AccessRules>(),
                needsUsers ? provider.GetRequiredService<HtpasswdUsers>() : null,
                settings.Mode == AuthMode.Token ? provider.GetRequiredService<TokenValidator>() : null,
                provider.GetRequiredService<LoginThrottle>(),
                provider.GetRequiredService<ILogger<RegistryAccessPolicy>>());
        });
        services.AddSingleton<IAccessPolicy>(provider => provider.GetRequiredService<RegistryAccessPolicy>());
        services.AddSingleton<TokenService>();
        return services;
    }

    /// <summary>The token service's routes, when this registry issues its own tokens.</summary>
    public static WebApplication MapRegistryAuth(this WebApplication app)
    {
        if (ModeOf(app.Configuration) != AuthMode.Token) return app;
        var token = app.Services.GetRequiredService<AuthSettings>().Token;
        if (token.IsExternal) return app;
        // Generated (or read) at start-up, not at the first token request: a bad key file stops the start.
        app.Services.GetRequiredService<TokenSigningKey>();
        app.MapTokenService();
        return app;
    }
}
