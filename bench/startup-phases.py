#!/usr/bin/env python3
"""Sums perf samples of registry start-ups (bench/startup-profile.sh) into start-up phases, in CPU milliseconds.

Each sample is put in the first phase (top to bottom) whose pattern matches any frame of its call chain, so a sample
of the GC while DI builds a service counts as GC. Medians over the files, and the range.
usage: startup-phases.py [--freq HZ] FILE.perf ...
"""
import re, statistics, subprocess, sys

PHASES = [
    ("GC (server GC threads, allocation waits)", r"SVR::|gc_heap|GCHeap::"),
    ("runtime init (module init, data rehydration)", r"StartupCodeHelpers__InitializeModules|RehydrateData"),
    ("metadata store open (SQLite, schema check)", r"EarlyMetadataStore|SqliteMetadataStore___ctor|e_sqlite3|SQLitePCL"),
    ("storage janitor start (lock, tmp, orphans, tombstones)", r"StorageJanitor__StartAsync"),
    ("OpenTelemetry meter provider", r"OpenTelemetry"),
    ("DI call sites: generic types built at run time", r"CallSiteFactory.*|TypeLoader"),
    ("configuration (sources, binding, validation)", r"CreateSlimBuilder|DistributionSettings|ConfigurationBinder|BindingExtensions|RegistryOptionsValidator"),
    ("Kestrel start, first request", r"KestrelServerImpl__StartAsync|AddressBinder|HttpProtocol__ProcessRequests|KestrelConnection"),
    ("host build and start (rest)", r"WebApplicationBuilder__Build|Host__StartAsync|HostBuilder"),
    ("our set-up (RegistryApp.Create, rest)", r"RegistryApp__Create|Program___Main"),
]


def samples(path):
    out = subprocess.run(["perf", "script", "-i", path, "-F", "ip,sym"], capture_output=True, text=True).stdout
    chain = []
    for line in out.splitlines():
        if line.strip():
            chain.append(line.strip().split(None, 1)[-1])
        elif chain:
            yield "\n".join(chain)
            chain = []
    if chain:
        yield "\n".join(chain)


def main(argv):
    freq = 15000
    if argv[:1] == ["--freq"]:
        freq, argv = int(argv[1]), argv[2:]
    if not argv:
        print(__doc__)
        return 2
    per_file = []
    for path in argv:
        counts = {name: 0 for name, _ in PHASES}
        counts["kernel and other (scheduling, page faults, exec)"] = 0
        for chain in samples(path):
            for name, pattern in PHASES:
                if re.search(pattern, chain):
                    counts[name] += 1
                    break
            else:
                counts["kernel and other (scheduling, page faults, exec)"] += 1
        per_file.append({k: v * 1000.0 / freq for k, v in counts.items()})
    totals = [sum(f.values()) for f in per_file]
    print(f"start-up CPU by phase, ms (perf at {freq} Hz inflates them; compare shares), median (min-max) of {len(argv)}:")
    for name in per_file[0]:
        values = [f[name] for f in per_file]
        share = statistics.median(v / t for v, t in zip(values, totals)) * 100
        print(f"  {statistics.median(values):6.1f} ({min(values):5.1f}-{max(values):5.1f})  {share:4.0f}%  {name}")
    print(f"  {statistics.median(totals):6.1f} ({min(totals):5.1f}-{max(totals):5.1f})        total")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
