using Microsoft.AspNetCore.HttpOverrides;
using Microsoft.Extensions.Options;
using Registry.Api.Configuration;

namespace Registry.Api.Http;

/// <summary>
/// Behind a load balancer every connection comes from the balancer: the client's own address is the last entry of
/// <c>X-Forwarded-For</c> that a trusted proxy (<c>Registry:Http:TrustedProxies</c>) added. Everything that tells
/// clients apart by address (the per-client cap on upload sessions, login throttling, access logs) reads
/// <see cref="ConnectionInfo.RemoteIpAddress"/>, which this sets before any of it runs. A header from anyone else
/// is ignored, so a client cannot pick its own address.
/// </summary>
internal static class ForwardedClients
{
    public static IServiceCollection AddForwardedClients(this IServiceCollection services)
    {
        services.AddOptions<ForwardedHeadersOptions>().Configure<IOptions<RegistryOptions>>((forwarded, registry) =>
        {
            forwarded.ForwardedHeaders = ForwardedHeaders.XForwardedFor;
            // Walk back through every trusted proxy in the chain, stopping at the first address that is not one.
            forwarded.ForwardLimit = null;
            forwarded.KnownProxies.Clear();
            forwarded.KnownIPNetworks.Clear();
            foreach (var proxy in registry.Value.Http.TrustedProxyList)
                if (RegistryOptions.HttpSettings.TryParseProxy(proxy, out var network))
                    forwarded.KnownIPNetworks.Add(network);
        });
        return services;
    }
}
