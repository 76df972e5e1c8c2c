# Native AOT build: a single self-contained binary that starts in milliseconds.
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
RUN apt-get update && apt-get install -y --no-install-recommends clang zlib1g-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY global.json Directory.Build.props Directory.Packages.props ./
COPY src/ src/
COPY docs/ docs/
RUN dotnet publish src/Registry.Api -c Release -r linux-x64 -o /out && rm -f /out/*.dbg /out/*.pdb

FROM mcr.microsoft.com/dotnet/runtime-deps:10.0
WORKDIR /app
COPY --from=build /out/ ./
RUN mkdir -p /var/lib/registry && chown app:app /var/lib/registry
# registry:2's own variables as the image's defaults, so a compose file written for registry:2 that sets them
# (REGISTRY_HTTP_ADDR, REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY) overrides them; Registry__* settings override both.
ENV REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY=/var/lib/registry \
    REGISTRY_HTTP_ADDR=:5000
VOLUME /var/lib/registry
EXPOSE 5000
USER app
ENTRYPOINT ["/app/Registry.Api"]
