#!/usr/bin/env python3
"""Where a running registry's resident memory is: per ELF section of its binary (code, read-only data, the
rehydrated type data of a native AOT build), its shared libraries, and anonymous memory (GC heap, native heap,
thread stacks). Reads /proc/PID/maps and /proc/PID/pagemap (root: a page counts when present). See bench/README.md.

usage: memory-map.py PID [PID ...]
"""
import os, struct, subprocess, sys

def sections(binary):
    """(name, vaddr, size) of the allocated sections, from `size -A -d`."""
    out = subprocess.run(["size", "-A", "-d", binary], capture_output=True, text=True, check=True).stdout
    result = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit() and int(parts[2]) > 0:
            result.append((parts[0], int(parts[2]), int(parts[1])))
    return result

def present_pages(pagemap, start, end):
    pagemap.seek(start // 4096 * 8)
    data = pagemap.read((end - start) // 4096 * 8)
    return sum((struct.unpack_from("<Q", data, i)[0] >> 63) & 1 for i in range(0, len(data), 8))

def report(pid):
    maps = []
    for line in open(f"/proc/{pid}/maps"):
        parts = line.split(maxsplit=5)
        start, end = (int(x, 16) for x in parts[0].split("-"))
        maps.append((start, end, parts[1], int(parts[2], 16), parts[5].strip() if len(parts) > 5 else ""))
    binary = os.path.realpath(f"/proc/{pid}/exe")
    base = min(start - offset for start, _, _, offset, path in maps if path == binary)
    image = sections(binary)
    image_end = max(base + vaddr + size for _, vaddr, size in image)
    with open(f"/proc/{pid}/pagemap", "rb") as pagemap:
        rows = []
        for name, vaddr, size in image:
            start, end = (base + vaddr) // 4096 * 4096, (base + vaddr + size + 4095) // 4096 * 4096
            kib = present_pages(pagemap, start, end) * 4
            rows.append((f"{os.path.basename(binary)} {name}", kib))
        other = {}
        for start, end, _, _, path in maps:
            if path == binary or base <= start < image_end:
                continue
            kib = present_pages(pagemap, start, end) * 4
            if path.startswith("/"):
                key = os.path.basename(path)
            elif path.startswith("[stack"):
                key = "[stack]"
            elif path:
                key = path
            else:
                key = "anonymous (GC heap, native heap, thread stacks)"
            other[key] = other.get(key, 0) + kib
        rows += sorted(other.items(), key=lambda kv: -kv[1])
    rss = next(int(l.split()[1]) for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS:"))
    print(f"pid {pid}: {binary}, VmRSS {rss / 1024:.1f} MiB")
    for name, kib in rows:
        if kib >= 64:
            print(f"  {kib / 1024:7.1f} MiB  {name}")

for pid in sys.argv[1:]:
    report(pid)
