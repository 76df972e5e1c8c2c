// The floor under our start-up time and idle memory: the smallest ASP.NET Core Minimal API that answers GET /v2/
// like a registry, built with the same host builder and settings as src/Registry.Api (RegistryApp.Create) and
// published the same way (native AOT, no EventSource). Whatever this costs, no registry on the fixed design can
// undercut. bench/startup.py starts it beside ours and distribution, and bench/memory-map.py reads its memory; see
// bench/README.md.
var builder = WebApplication.CreateSlimBuilder(["--hostBuilder:reloadConfigOnChange=false", .. args]);
var app = builder.Build();
app.MapGet("/v2/", (HttpContext context) =>
{
    context.Response.Headers["Docker-Distribution-API-Version"] = "registry/2.0";
    return Results.Text("{}", "application/json");
});
app.Run();
