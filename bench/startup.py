#!/usr/bin/env python3
"""Start-up of registries: exec -> first 200 on GET /v2/, and RSS 1 s later (idle), interleaved. See bench/README.md.

usage: startup.py [--starts N] [--storage fresh|existing|both] [--env [NAME:]K=V ...] NAME=COMMAND ...

COMMAND is a registry binary of ours (started with --urls and --Registry:Storage:Path) or the word
`distribution` (/usr/bin/docker-registry serve <config>, or $DISTRIBUTION). Every round starts each NAME once, in
the given order, on storage that is new (fresh) or was made by an earlier start of the same NAME (existing).
`--env K=V` is set for every start, `--env NAME:K=V` only for NAME's (e.g. `--env gen0:DOTNET_GCgen0size=0x4000000`
with the same binary under two names). Polling: a raw socket connect + GET every 1 ms, from the moment before exec.
"""
import os, shutil, socket, statistics, subprocess, sys, tempfile, time

def first_200(port, proc, limit_s=10.0):
    request = b"GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return None
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(request)
                head = s.recv(64)
                if head.startswith(b"HTTP/1.1 200"):
                    return time.perf_counter_ns()
        except OSError:
            pass
        time.sleep(0.001)
    return None

def cpu_ms(pid):
    """CPU time of all the process's threads so far (schedstat, ns): steadier than wall time on a busy machine."""
    total = 0
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                    total += int(f.read().split()[0])
            except OSError:
                pass
    except OSError:
        return None
    return total / 1e6

def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0

def command(name, binary, port, data, work, env):
    if binary == "distribution":
        config = os.path.join(work, f"{name}.yml")
        with open(config, "w") as f:
            f.write(f"""version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {data}
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:{port}
""")
        return [os.environ.get("DISTRIBUTION", "/usr/bin/docker-registry"), "serve", config]
    return [binary, "--urls", f"http://127.0.0.1:{port}", f"--Registry:Storage:Path={data}"]

def main(argv):
    starts, storages, env, targets = 10, ["fresh"], {}, []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--starts": starts = int(argv[i + 1]); i += 2
        elif a == "--storage":
            storages = ["fresh", "existing"] if argv[i + 1] == "both" else [argv[i + 1]]; i += 2
        elif a == "--env":
            k, v = argv[i + 1].split("=", 1)
            target, _, k = k.rpartition(":")
            env.setdefault(target, {})[k] = v; i += 2
        elif "=" in a: n, b = a.split("=", 1); targets.append((n, b)); i += 1
        else: print(__doc__); return 2
    if not targets: print(__doc__); return 2
    work = tempfile.mkdtemp(prefix="registry-startup.", dir=os.environ.get("WORK_DIR", "/tmp"))
    port = int(os.environ.get("PORT", "5937"))
    results = {}
    try:
        for storage in storages:
            for name, _ in targets:
                if storage == "existing":  # made once by a first start
                    data = os.path.join(work, f"{name}-existing")
                    run_once(name, dict(targets)[name], port, data, work, env, results, None)
            for _ in range(starts):
                for name, binary in targets:
                    data = os.path.join(work, f"{name}-{storage}")
                    if storage == "fresh": shutil.rmtree(data, ignore_errors=True)
                    run_once(name, binary, port, data, work, env, results, (name, storage))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"start -> first 200 on GET /v2/ and RSS 1 s later; {starts} interleaved starts each; "
          f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f} at the end")
    print(f"  {'registry':<16} {'storage':<9} {'start ms (median, min-max)':<28} {'CPU ms to first 200':<26}"
          f" {'idle RSS MiB (median, min-max)':<30} ok")
    for storage in storages:
        for name, _ in targets:
            samples = results.get((name, storage), [])
            ok = [s for s in samples if s[0] is not None]
            if not ok:
                print(f"  {name:<16} {storage:<9} no start answered"); continue
            ms = [s[0] for s in ok]; mib = [s[1] / 1024 for s in ok]; cpu = [s[2] for s in ok if s[2] is not None]
            print(f"  {name:<16} {storage:<9} {range_text(ms):<28} {range_text(cpu):<26} {range_text(mib):<30}"
                  f" {len(ok)}/{len(samples)}")
    return 0

def range_text(values):
    if not values: return "-"
    return f"{statistics.median(values):7.1f} ({min(values):.1f}-{max(values):.1f})"

def run_once(name, binary, port, data, work, env, results, key):
    os.makedirs(data, exist_ok=True)
    full_env = dict(os.environ, **env.get("", {}), **env.get(name, {}))
    t0 = time.perf_counter_ns()
    proc = subprocess.Popen(command(name, binary, port, data, work, env), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=full_env)
    try:
        t1 = first_200(port, proc)
        ms = None if t1 is None else (t1 - t0) / 1e6
        cpu = cpu_ms(proc.pid) if t1 is not None else None
        time.sleep(1)
        rss = rss_kib(proc.pid) if proc.poll() is None else 0
    finally:
        proc.terminate()
        try: proc.wait(10)
        except subprocess.TimeoutExpired: proc.kill(); proc.wait()
    if key is not None: results.setdefault(key, []).append((ms, rss, cpu))

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
