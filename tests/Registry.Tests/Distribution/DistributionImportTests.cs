using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Registry.CrashHarness;
using Registry.Storage;
using Registry.Storage.Blobs;
using Registry.Storage.Metadata;
using Registry.Tests.Clients;
using Registry.Tests.Infrastructure;

namespace Registry.Tests.Distribution;

/// <summary>
/// Importing a storage written by the real distribution 2.8.2 (<see cref="Distribution282"/>): at start-up on its
/// folder, and with the <c>import --from</c> command.
/// </summary>
public sealed class DistributionImportTests(Distribution282 registry2) : IClassFixture<Distribution282>, IDisposable
{
    private readonly TempDir _temp = new("import-");

    public void Dispose() => _temp.Dispose();

    private Skopeo Skopeo => new(_temp.Path);

    [Fact]
    public async Task Starting_on_a_registry2_storage_imports_it_and_every_image_pulls_back_byte_identical()
    {
        var root = registry2.CopyTree(_temp.Path);

        await using var server = await RegistryServer.StartAsync(storagePath: root);

        var host = server.HostPort;
        await Skopeo.RunAsync("copy", "--src-tls-verify=false", $"docker://{host}/team/app:v1", $"oci:{_temp.Sub("image")}:v1");
        OciLayout.ShouldHoldImage(_temp.Sub("image"), "v1", registry2.Image);
        await Skopeo.RunAsync("copy", "--src-tls-verify=false", "--all", "--preserve-digests", $"docker://{host}/team/multi:multi",
            $"oci:{_temp.Sub("index")}:multi");
        OciLayout.ShouldHoldIndex(_temp.Sub("index"), "multi", registry2.Index);
        foreach (var (repository, tag, manifest) in registry2.Pushed)
            (await Skopeo.RawManifestAsync($"docker://{host}/{repository}:{tag}")).Should().Equal(manifest.Bytes,
                $"{repository}:{tag} must be the exact bytes registry:2 stored");
    }

    [Fact]
    public async Task An_imported_registry2_storage_keeps_every_tag()
    {
        var root = registry2.CopyTree(_temp.Path);

        await using var server = await RegistryServer.StartAsync(storagePath: root);

        using var client = server.CreateClient();
        (await Conformance.Oci.TagsAsync(client, "team/app")).Should().Equal("sbom", "v1");
        (await Conformance.Oci.TagsAsync(client, "team/multi")).Should().Equal("multi");
        var catalog = await Infrastructure.Http.GetJsonAsync(client, "v2/_catalog");
        catalog.GetProperty("repositories").EnumerateArray().Select(r => r.GetString()).Should().Equal("team/app", "team/multi");
    }

    [Fact]
    public async Task An_imported_artifact_is_listed_by_the_referrers_api_of_its_subject()
    {
        var root = registry2.CopyTree(_temp.Path);

        await using var server = await RegistryServer.StartAsync(storagePath: root);

        using var client = server.CreateClient();
        var referrers = await Infrastructure.Http.GetJsonAsync(client, $"v2/team/app/referrers/{registry2.Image.Manifest.Digest}");
        var entry = referrers.GetProperty("manifests").EnumerateArray().Should().ContainSingle().Subject;
        entry.GetProperty("digest").GetString().Should().Be(registry2.Artifact.Digest);
        entry.GetProperty("artifactType").GetString().Should().Be(Distribution282.ArtifactType);
        entry.GetProperty("size").GetInt64().Should().Be(registry2.Artifact.Size);
    }

    [Fact]
    public async Task Imported_blobs_are_hard_links_to_the_registry2_files_so_disk_use_does_not_double()
    {
        var root = registry2.CopyTree(_temp.Path);
        var theirTree = Path.Combine(root, "docker");
        var before = await DiskUsageAsync(theirTree);

        await using (await RegistryServer.StartAsync(storagePath: root)) { }

        foreach (var blob in registry2.Image.Blobs.Concat(registry2.Index.Blobs).Append(registry2.Artifact))
        {
            var ours = Path.Combine(root, "blobs", "sha256", blob.Hex[..2], blob.Hex);
            var theirs = Path.Combine(root, "docker", "registry", "v2", "blobs", "sha256", blob.Hex[..2], blob.Hex, "data");
            (await InodeAsync(ours)).Should().Be(await InodeAsync(theirs), $"{blob.Digest} should be one file in both layouts");
        }
        // One du over both trees counts a file with two names once: what our blobs/ adds is only its folders.
        var after = await DiskUsageAsync(theirTree, Path.Combine(root, "blobs"));
        var ourFolders = Directory.EnumerateDirectories(Path.Combine(root, "blobs"), "*", SearchOption.AllDirectories).Count() + 1;
        (after - before).Should().BeLessThanOrEqualTo(ourFolders * 4096L, "the blobs are shared, not copied");
    }

    [Fact]
    public async Task An_imported_storage_verifies_consistent()
    {
        var root = registry2.CopyTree(_temp.Path);
        await using var server = await RegistryServer.StartAsync(storagePath: root);

        var report = await new StorageVerifier(server.Services.GetRequiredService<IBlobStore>(),
            server.Services.GetRequiredService<IMetadataStore>()).VerifyAsync(CancellationToken.None);

        report.Problems.Should().BeEmpty();
        report.ManifestsChecked.Should().Be(registry2.Index.Images.Count + 3);
    }

    [Fact]
    public async Task The_import_command_refuses_with_storage_kind_s3_and_writes_no_blob()
    {
        var root = registry2.CopyTree(_temp.Path);
        var storage = _temp.Sub("s3-storage");

        var result = await RunServerCommandAsync("import", "--from", root, $"--Registry:Storage:Path={storage}",
            "--Registry:Storage:Kind=s3", "--Registry:Storage:S3:ServiceUrl=http://127.0.0.1:9",
            "--Registry:Storage:S3:Bucket=registry", "--Registry:Storage:S3:AccessKey=key",
            "--Registry:Storage:S3:SecretKey=secret");

        result.ExitCode.Should().Be(2, result.Output);
        result.Output.Should().Contain("import refused").And.Contain("Registry:Storage:Kind=s3");
        var blobs = new StorageLayout(storage).BlobsRoot;
        (Directory.Exists(blobs) ? Directory.EnumerateFiles(blobs, "*", SearchOption.AllDirectories) : []).Should().BeEmpty();
        File.Exists(new StorageLayout(storage).ImportMarkerPath).Should().BeFalse();
    }

    [Fact]
    public async Task The_import_command_prints_progress_and_a_report_and_a_second_run_changes_nothing()
    {
        var root = registry2.CopyTree(_temp.Path);

        var first = await RunServerCommandAsync("import", "--from", root, $"--Registry:Storage:Path={root}");
        var second = await RunServerCommandAsync("import", "--from", root, $"--Registry:Storage:Path={root}");

        first.ExitCode.Should().Be(0, first.Output);
        first.Output.Should().Contain("[1/2] team/app:").And.Contain("[2/2] team/multi:")
            .And.Contain("2 repositories imported").And.Contain("every digest verified").And.Contain("complete");
        second.ExitCode.Should().Be(0, second.Output);
        second.Output.Should().Contain("0 repositories imported (2 already imported before)");
        await using var server = await RegistryServer.StartAsync(storagePath: root);
        using var client = server.CreateClient();
        (await Conformance.Oci.TagsAsync(client, "team/app")).Should().Equal("sbom", "v1");
        var events = await server.Services.GetRequiredService<IMetadataStore>().ReadEventsAsync(0, 1000, CancellationToken.None);
        events.Count(e => e.Action == "repository.create").Should().Be(2, "the second run must not import anything again");
    }

    [Fact]
    public async Task An_import_interrupted_midway_is_finished_by_the_next_start()
    {
        var root = registry2.CopyTree(_temp.Path);
        await using (var app = Registry.Api.RegistryApp.Create([$"--Registry:Storage:Path={root}"],
                         distributionEnvironment: new Dictionary<string, string?>()))
        {
            using var cancel = new CancellationTokenSource();
            var interrupted = () => Registry.Api.Storage.DistributionImport.RunAsync(app.Services, root,
                _ => cancel.Cancel(), cancel.Token);
            await interrupted.Should().ThrowAsync<OperationCanceledException>();
            (await app.Services.GetRequiredService<IMetadataStore>().ListRepositoriesAsync(10, null, CancellationToken.None))
                .Items.Should().Equal(["team/app"], "the interruption came after the first repository");
        }

        await using var server = await RegistryServer.StartAsync(storagePath: root);

        using var client = server.CreateClient();
        (await Conformance.Oci.TagsAsync(client, "team/multi")).Should().Equal("multi");
        (await Skopeo.RawManifestAsync($"docker://{server.HostPort}/team/multi:multi")).Should().Equal(registry2.Index.Index.Bytes);
        File.Exists(Path.Combine(root, "import-in-progress")).Should().BeFalse("the finished import removes its marker");
    }

    [Fact]
    public async Task An_import_killed_midway_completes_when_run_again()
    {
        var root = registry2.CopyTree(_temp.Path);
        // Many repositories (copies of team/app's folder, sharing its blobs), so the kill lands in the middle.
        var repositories = Path.Combine(root, "docker", "registry", "v2", "repositories");
        for (var i = 0; i < 150; i++) CopyFolder(Path.Combine(repositories, "team", "app"), Path.Combine(repositories, "many", $"r{i:D3}"));
        var info = ServerProcess.StartInfo(Path.Combine(AppContext.BaseDirectory, "Registry.Api.dll"),
            ["import", "--from", root, $"--Registry:Storage:Path={root}"]);
        using var process = new Process { StartInfo = info };
        var progressed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var lines = 0;
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data?.StartsWith('[') == true && Interlocked.Increment(ref lines) == 5) progressed.TrySetResult();
        };
        process.ErrorDataReceived += (_, _) => { };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        await progressed.Task.WaitAsync(TimeSpan.FromMinutes(2));
        process.Kill(); // SIGKILL: no shutdown code runs
        await process.WaitForExitAsync();

        var rerun = await RunServerCommandAsync("import", "--from", root, $"--Registry:Storage:Path={root}");

        process.ExitCode.Should().NotBe(0, "the first run was killed before it finished");
        rerun.ExitCode.Should().Be(0, rerun.Output);
        rerun.Output.Should().MatchRegex(@"[1-9][0-9]* repositories imported \([1-9][0-9]* already imported before\)");
        await using var server = await RegistryServer.StartAsync(storagePath: root);
        using var client = server.CreateClient();
        var catalog = await Infrastructure.Http.GetJsonAsync(client, "v2/_catalog?n=1000");
        catalog.GetProperty("repositories").GetArrayLength().Should().Be(152);
        (await Conformance.Oci.TagsAsync(client, "many/r149")).Should().Equal("sbom", "v1");
        var report = await new StorageVerifier(server.Services.GetRequiredService<IBlobStore>(),
            server.Services.GetRequiredService<IMetadataStore>()).VerifyAsync(CancellationToken.None);
        report.Problems.Should().BeEmpty();
    }

    private static void CopyFolder(string from, string to)
    {
        foreach (var directory in Directory.EnumerateDirectories(from, "*", SearchOption.AllDirectories))
            Directory.CreateDirectory(Path.Combine(to, Path.GetRelativePath(from, directory)));
        Directory.CreateDirectory(to);
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
            File.Copy(file, Path.Combine(to, Path.GetRelativePath(from, file)));
    }

    [Fact]
    public async Task A_registry2_storage_on_another_filesystem_is_copied_and_the_report_says_so()
    {
        using var shm = new TempDir("import-shm-", "/dev/shm");
        var source = registry2.CopyTree(shm.Path);
        var storage = _temp.Sub("ours");

        var result = await RunServerCommandAsync("import", "--from", source, $"--Registry:Storage:Path={storage}");

        result.ExitCode.Should().Be(0, result.Output);
        result.Output.Should().MatchRegex(@"0 hard-linked \(0 bytes, no extra disk\), [1-9][0-9]* copied \([0-9]+ bytes, the source is on another filesystem\)");
        await using var server = await RegistryServer.StartAsync(storagePath: storage);
        (await Skopeo.RawManifestAsync($"docker://{server.HostPort}/team/app:v1")).Should().Equal(registry2.Image.Manifest.Bytes);
    }

    [Fact]
    public async Task A_corrupt_blob_is_reported_and_its_repository_is_not_imported()
    {
        var root = registry2.CopyTree(_temp.Path);
        var layer = registry2.Image.Layers[0].Compressed;
        var data = Path.Combine(root, "docker", "registry", "v2", "blobs", "sha256", layer.Hex[..2], layer.Hex, "data");
        var bytes = await File.ReadAllBytesAsync(data);
        bytes[^1] ^= 0xFF;
        await File.WriteAllBytesAsync(data, bytes);

        var result = await RunServerCommandAsync("import", "--from", root, $"--Registry:Storage:Path={root}");

        result.ExitCode.Should().Be(1, result.Output);
        result.Output.Should().Contain($"PROBLEM team/app: {layer.Digest} in the registry:2 storage is corrupt").And.Contain("INCOMPLETE");
        File.Exists(Path.Combine(root, "blobs", "sha256", layer.Hex[..2], layer.Hex)).Should().BeFalse("corrupt content is never published");
        await using var server = await RegistryServer.StartAsync(storagePath: root);
        using var client = server.CreateClient();
        (await client.GetAsync("v2/team/app/tags/list")).StatusCode.Should().Be(HttpStatusCode.NotFound);
        (await Conformance.Oci.TagsAsync(client, "team/multi")).Should().Equal("multi");
    }

    private static async Task<long> DiskUsageAsync(params string[] paths)
    {
        var result = await Cli.RunAsync("du", ["-s", "-c", "--block-size=1", .. paths]);
        return long.Parse(result.Stdout.Trim().Split('\n')[^1].Split('\t')[0]);
    }

    private static async Task<string> InodeAsync(string path) =>
        (await Cli.RunAsync("stat", ["--format=%d:%i", path])).Stdout.Trim();

    private static async Task<(int ExitCode, string Output)> RunServerCommandAsync(params string[] arguments)
    {
        var info = ServerProcess.StartInfo(Path.Combine(AppContext.BaseDirectory, "Registry.Api.dll"), arguments);
        var output = new StringBuilder();
        using var process = new Process { StartInfo = info };
        process.OutputDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        finally
        {
            if (!process.HasExited) process.Kill();
        }
        process.WaitForExit();
        lock (output) return (process.ExitCode, output.ToString());
    }
}
