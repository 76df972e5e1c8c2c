namespace Registry.Api.Http;

/// <summary>Headers every response carries, and a JSON error body for whatever escapes an endpoint.</summary>
internal static class ErrorHandling
{
    private static readonly ErrorCode Unknown = new("UNKNOWN", 500, "unknown error");

    public static IApplicationBuilder UseRegistryErrors(this IApplicationBuilder app) =>
        app.Use(async (context, next) =>
        {
            context.Response.Headers["Docker-Distribution-API-Version"] = "registry/2.0";
            try
            {
                await next(context);
            }
            catch (BadHttpRequestException e) when (!context.Response.HasStarted)
            {
                await new RegistryError(new ErrorCode("BAD_REQUEST", e.StatusCode, "bad request"), e.Message)
                    .ExecuteAsync(context);
            }
            catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
            {
                // The client went away; there is nobody to answer.
            }
            catch (Exception e) when (!context.Response.HasStarted && IsDiskFull(e))
            {
                await new RegistryError(ErrorCode.StorageFull, "the change was not stored").ExecuteAsync(context);
            }
            catch (Exception e) when (!context.Response.HasStarted)
            {
                context.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger("Registry")
                    .LogError(e, "Unhandled error on {Method} {Path}", context.Request.Method, context.Request.Path);
                context.Response.Clear();
                context.Response.Headers["Docker-Distribution-API-Version"] = "registry/2.0";
                await new RegistryError(Unknown).ExecuteAsync(context);
            }
        });

    /// <summary>ENOSPC (28) or EDQUOT (122) as .NET reports them on Unix, or SQLITE_FULL (13) from the metadata store.</summary>
    internal static bool IsDiskFull(Exception e) => e switch
    {
        Microsoft.Data.Sqlite.SqliteException sqlite => sqlite.SqliteErrorCode == 13,
        IOException io => (io.HResult & 0xFFFF) is 28 or 122
                          || io.Message.Contains("No space left", StringComparison.OrdinalIgnoreCase),
        _ => false,
    };
}
