"""Summary tables of the six `splitstream bench trace` runs of docs/ADAPTIVE.md.

Reads docs/results/traces-<trace>-<split|edgefull-x30>/report.json and
report.md (or those under the folder given as the first argument) and
prints three Markdown tables: adaptive against the best fixed strategy per
run, adaptive against every fixed strategy, and the run conditions.
"""
import json, re, sys
runs = [("TMobile-LTE-short","split","(a) no edge model"),("TMobile-UMTS-driving","split","(a) no edge model"),("Verizon-LTE-short","split","(a) no edge model"),
        ("TMobile-LTE-short","edgefull-x30","(b) edge model, x30"),("TMobile-UMTS-driving","edgefull-x30","(b) edge model, x30"),("Verizon-LTE-short","edgefull-x30","(b) edge model, x30")]
base = sys.argv[1] if len(sys.argv) > 1 else "docs/results"
short = lambda s: s.replace("learned-fmnist-es-", "learned-")
print("| trace | deployment | best fixed (useful_rate) | adaptive useful_rate | adaptive - best | adaptive slo hit / top-1 answered | adaptive's main points |")
print("| --- | --- | --- | ---: | ---: | --- | --- |")
cols = {}
for tr, dep, name in runs:
    d = json.load(open(f"{base}/traces-{tr}-{dep}/report.json"))
    rows = {r["strategy"]: r for r in d["rows"]}
    ad = rows["adaptive"]
    fixed = [r for s, r in rows.items() if s != "adaptive"]
    best = max(fixed, key=lambda r: r["useful_rate"])
    md = open(f"{base}/traces-{tr}-{dep}/report.md").read()
    m = re.search(r"Adaptive's frames by point \((\d+) switches\): (.*)\.", md)
    shares = sorted(((float(v), short(k)) for k, v in re.findall(r"([\w.-]+) ([\d.]+)%", m.group(2))), reverse=True)[:3]
    n = ad["frames"]
    diff = ad["useful_rate"] - best["useful_rate"]
    print(f"| {tr} | {name} | {short(best['strategy'])} ({best['useful_rate']:.4f}) | {ad['useful_rate']:.4f} | {diff:+.4f} ({diff*n:+.0f} frames) | {ad['slo_hit_rate']:.4f} / {ad['top1_answered']:.4f} | " + ", ".join(f"{k} {v:.0f}%" for v, k in shares) + f" ({m.group(1)} switches) |")
    cols[(tr, dep)] = rows
print()
hdr = ["TM-LTE (a)", "TM-UMTS (a)", "VZ-LTE (a)", "TM-LTE (b)", "TM-UMTS (b)", "VZ-LTE (b)"]
print("| useful_rate (adaptive - it) | " + " | ".join(hdr) + " |")
print("| --- |" + " ---: |" * 6)
strategies = []
for tr, dep, _ in runs:
    for s in cols[(tr, dep)]:
        if s not in strategies:
            strategies.append(s)
for s in strategies:
    cells = []
    for tr, dep, _ in runs:
        rows = cols[(tr, dep)]
        if s not in rows:
            cells.append("")
        elif s == "adaptive":
            cells.append(f"**{rows[s]['useful_rate']:.4f}**")
        else:
            cells.append(f"{rows[s]['useful_rate']:.4f} ({rows['adaptive']['useful_rate']-rows[s]['useful_rate']:+.4f})")
    print(f"| {short(s)} | " + " | ".join(cells) + " |")
print()
print("| run | calibration / run (s) | device waits late, mean / max (ms) | relay datagrams late, mean / max (ms) | load average before / after | queue drops |")
print("| --- | ---: | ---: | ---: | ---: | ---: |")
for tr, dep, _ in runs:
    m = json.load(open(f"{base}/traces-{tr}-{dep}/report.json"))["meta"]
    print(f"| [{tr}-{dep}](results/traces-{tr}-{dep}/report.md) | {m['calibrate_s']:.0f} / {m['run_s']:.0f} | {m['compute_late']['mean_ms']:.2f} / {m['compute_late']['max_ms']:.0f} | {m['relay_late']['mean_ms']:.2f} / {m['relay_late']['max_ms']:.0f} | {m['loadavg_before'].split()[0]} / {m['loadavg_after'].split()[0]} | {m['queue_drops']} |")
