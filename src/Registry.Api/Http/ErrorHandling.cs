namespace Registry.Api.Http;

/// <summary>Headers every response carries, and a JSON error body for whatever escapes an endpoint.</summary>
internal static class ErrorHandling
{
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
                await new RegistryError(ErrorCode.ForBadRequest(e.StatusCode), e.Message).ExecuteAsync(context);
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
                await new RegistryError(ErrorCode.Unknown).ExecuteAsync(context);
            }
        });

    /// <summary>ENOSPC, EDQUOT or SQLITE_FULL (<see cref="Registry.Storage.StorageErrors"/>).</summary>
    internal static bool IsDiskFull(Exception e) => Registry.Storage.StorageErrors.IsDiskFull(e);
}
