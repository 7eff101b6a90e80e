#!/usr/bin/env python3
"""The same egg app (fixtures/egg-app) under egg-cluster's own master and under `clutch egg`:
time to ready, master RSS, SIGTERM to exit, and messenger msg/s (egg's sendToAgent loop).

usage: benches/egg_cluster.py NODE_MODULES_PARENT [RUNS]
  NODE_MODULES_PARENT: a directory whose node_modules holds egg@3 and egg-cluster@2 (the
  tests' cache, target/tmp/egg-cache, will do). Needs a release build (target/release/clutch).
"""
import json, os, shutil, signal, socket, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLUTCH = os.path.join(ROOT, "target/release/clutch")
WORKERS = 2
MSGS = 100_000  # per app worker


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def records(log):
    try:
        with open(log) as f:
            return [json.loads(l) for l in f if l.strip()]
    except FileNotFoundError:
        return []


def wait(cond, timeout=120):
    end = time.time() + timeout
    while time.time() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.01)
    raise TimeoutError


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])


def descendants(pid):
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True).stdout
    kids = {}
    for line in out.split("\n"):
        if line.strip():
            p, pp = map(int, line.split())
            kids.setdefault(pp, []).append(p)
    todo, seen = [pid], []
    while todo:
        for k in kids.get(todo.pop(), []):
            seen.append(k)
            todo.append(k)
    return seen


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def run(kind, base, msgs):
    app = tempfile.mkdtemp(dir=os.path.join(base, "apps"))
    shutil.rmtree(app)
    shutil.copytree(os.path.join(ROOT, "fixtures/egg-app"), app)
    log = os.path.join(app, "recorded.ndjson")
    port = free_port()
    env = dict(os.environ, EGG_TEST_LOG=log, EGG_BENCH_MSGS=str(msgs), EGG_BENCH_APPS=str(WORKERS))
    if kind == "egg-cluster":
        # A file, not `node -e`: Node's cluster forks its workers from the main script.
        start = os.path.join(app, "start-egg-cluster.js")
        with open(start, "w") as f:
            f.write(f"require('egg').startCluster({{baseDir: {json.dumps(app)}, workers: {WORKERS}, port: {port}}});\n")
        cmd = ["node", start]
    else:
        cmd = [CLUTCH, "egg", app, "-w", str(WORKERS), "-p", str(port)]
    t0 = time.time()
    p = subprocess.Popen(cmd, cwd=app, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ready = lambda: next((r for r in records(log) if r["who"] == "agent" and r["event"] == "serverDidReady"), None)
    try:
        r = wait(ready)
    except TimeoutError:
        p.kill()
        raise
    to_ready = r["t"] / 1000 - t0
    result = {"ready_s": to_ready}
    if msgs:
        done = wait(lambda: next((r for r in records(log) if r["event"] == "bench-done"), None))
        result["msg_per_s"] = done["data"]["msgs"] / (done["data"]["ms"] / 1000)
    time.sleep(1)
    result["rss_mib"] = rss_kib(p.pid) / 1024
    workers = descendants(p.pid)
    t1 = time.time()
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=60)
    wait(lambda: not any(alive(w) for w in workers), 60)
    result["sigterm_s"] = time.time() - t1
    shutil.rmtree(app, ignore_errors=True)
    return result


def main():
    base = os.path.abspath(sys.argv[1])
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    os.makedirs(os.path.join(base, "apps"), exist_ok=True)
    for kind in ("egg-cluster", "clutch egg"):
        rows = [run(kind, base, 0) for _ in range(runs)]
        rows += [run(kind, base, MSGS)]
        med = lambda k: statistics.median(r[k] for r in rows if k in r)
        print(
            f"{kind:12} ready {med('ready_s'):.2f} s | master RSS {med('rss_mib'):.1f} MiB | "
            f"SIGTERM→exit {med('sigterm_s') * 1000:.0f} ms | sendToAgent {med('msg_per_s'):,.0f} msg/s"
        )
        print("   runs:", json.dumps(rows))


if __name__ == "__main__":
    main()
