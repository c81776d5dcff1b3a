#!/usr/bin/env python3
"""Judges issue 10's and issue 13's targets from one `make bench` run.

    bench_targets.py LIFECYCLE.txt NAME=SHIMBENCH.json [NAME=SHIMBENCH.json ...]

Each SHIMBENCH.json is shimbench.py --json output with skiff as the first runtime and
the Go shim of the same containerd as the second; LIFECYCLE.txt is the output of
`shimtest --lifecycle N` with skiff first, then the Go shims in the same order as the
JSON files. Prints a Markdown table: figure, target, and per containerd the value,
the ratio to the Go shim and a verdict. When a run also holds the libcontainer shim
(a runtime whose name has "youki"), a second table sets it beside the runc shim and the
Go shim.
"""
import json
import sys

MIB = 1024.0

# (figure, target text, how to judge: fn(skiff, go) -> (shown, ok))
def ratio(a, b):
    return a / b if b else float("nan")


TARGETS = [
    ("pss_kib", "PSS per idle shim <= 1 MiB and <= 0.25x",
     lambda s, g: (f"{s / MIB:.2f} MiB, {ratio(s, g):.2f}x", s <= MIB and ratio(s, g) <= 0.25)),
    ("rss_kib", "RSS per idle shim <= 2.5 MiB",
     lambda s, g: (f"{s / MIB:.2f} MiB (Go {g / MIB:.1f})", s <= 2.5 * MIB)),
    ("threads", "threads per idle shim <= 2",
     lambda s, g: (f"{s:.1f} (Go {g:.1f})", s <= 2.0)),
    ("run_p50_ms", "ctr run --rm median <= 0.80x",
     lambda s, g: (f"{s:.1f} ms, {ratio(s, g):.2f}x", ratio(s, g) <= 0.80)),
    ("exec_p50_ms", "exec median <= 0.80x",
     lambda s, g: (f"{s:.1f} ms, {ratio(s, g):.2f}x", ratio(s, g) <= 0.80)),
    ("stdout_cpu_ms", "CPU to carry stdout <= 0.50x",
     lambda s, g: (f"{s:.0f} ms, {ratio(s, g):.2f}x", ratio(s, g) <= 0.50)),
    ("start_per_s", "containers/s, 4 clients >= 1.2x",
     lambda s, g: (f"{s:.1f}/s, {ratio(s, g):.2f}x", ratio(s, g) >= 1.2)),
    ("binary_kib", "stripped binary <= 3 MiB",
     lambda s, g: (f"{s / MIB:.2f} MiB", s <= 3 * MIB)),
]


def lifecycle_p50(path):
    """(label, p50) per shim, in the order shimtest printed them."""
    rows = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            # "skiff-v2 0.1.0   50.6   65.8   1.00"
            if len(parts) >= 5 and parts[0].endswith("-v2"):
                try:
                    rows.append((parts[0], float(parts[2])))
                except ValueError:
                    pass
    return rows


def youki_table(name, results, lifecycle):
    """Issue 13: the libcontainer shim next to the runc shim and the Go shim."""
    keys = list(results)
    youki = next((k for k in keys if "youki" in k), None)
    if youki is None:
        return
    skiff, go = results[keys[0]], results[keys[1]]
    y = results[youki]
    print()
    print(f"Issue 13, containerd {name}: the libcontainer shim (skiff-youki) beside the runc shim")
    print("(skiff) and the Go shim; ratios are to the Go shim.")
    print()
    print("| figure | target | skiff-youki | skiff | Go shim |")
    print("|---|---|---|---|---|")
    if "run_p50_ms" in y and "run_p50_ms" in go:
        r = ratio(y["run_p50_ms"], go["run_p50_ms"])
        verdict = "met" if r <= 0.6 else "NOT met"
        print(f"| run_p50_ms | ctr run --rm median <= 0.60x | {y['run_p50_ms']:.1f} ms, {r:.2f}x {verdict}"
              f" | {skiff['run_p50_ms']:.1f} ms, {ratio(skiff['run_p50_ms'], go['run_p50_ms']):.2f}x"
              f" | {go['run_p50_ms']:.1f} ms |")
    for key, unit in (("exec_p50_ms", "ms"), ("rss_kib", "KiB"), ("pss_kib", "KiB"),
                      ("threads", ""), ("binary_kib", "KiB")):
        if key in y and key in skiff and key in go:
            print(f"| {key} | (shown) | {y[key]:.1f} {unit}, {ratio(y[key], go[key]):.2f}x"
                  f" | {skiff[key]:.1f} {unit}, {ratio(skiff[key], go[key]):.2f}x | {go[key]:.1f} {unit} |")
    by_label = dict(lifecycle)
    y_l = next((v for k, v in lifecycle if "youki" in k), None)
    s_l = by_label.get("skiff-v2")
    g_l = lifecycle[1][1] if len(lifecycle) > 1 else None
    if y_l is not None and s_l is not None and g_l:
        print(f"| lifecycle_p50_ms | shim-side lifecycle (shimtest, Go shim of 1.6) | {y_l:.1f} ms, {ratio(y_l, g_l):.2f}x"
              f" | {s_l:.1f} ms, {ratio(s_l, g_l):.2f}x | {g_l:.1f} ms |")


def main():
    labelled = lifecycle_p50(sys.argv[1])
    lifecycle = [v for k, v in labelled if "youki" not in k]
    runs = []
    everything = []
    for arg in sys.argv[2:]:
        name, path = arg.split("=", 1)
        with open(path) as f:
            results = json.load(f)["results"]
        skiff, go = list(results.values())[:2]
        runs.append((name, skiff, go))
        everything.append((name, results))
    print("| figure | target | " + " | ".join(n for n, _, _ in runs) + " |")
    print("|---|---|" + "---|" * len(runs))
    for key, text, judge in TARGETS:
        cells = []
        for _, skiff, go in runs:
            if key in skiff and key in go:
                shown, ok = judge(skiff[key], go[key])
                cells.append(f"{shown} {'met' if ok else 'NOT met'}")
            else:
                cells.append("not measured")
        print(f"| {key} | {text} | " + " | ".join(cells) + " |")
    cells = []
    for i in range(len(runs)):
        if len(lifecycle) > i + 1:
            s, g = lifecycle[0], lifecycle[i + 1]
            ok = ratio(s, g) <= 0.5
            cells.append(f"{s:.1f} ms, {ratio(s, g):.2f}x {'met' if ok else 'NOT met'}")
        else:
            cells.append("not measured")
    print("| lifecycle_p50_ms | shim-side lifecycle (shimtest) <= 0.50x | " + " | ".join(cells) + " |")
    for name, results in everything:
        youki_table(name, results, labelled)


if __name__ == "__main__":
    main()
