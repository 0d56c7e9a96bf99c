"""Condenses `ncu --csv --page details` output (stdin) into one line per kernel plus its top warp stall reasons."""
import csv
import sys
from collections import OrderedDict

KEEP = {
    "Duration": "us", "DRAM Throughput": "dram%", "Compute (SM) Throughput": "sm%", "dram__bytes_read.sum": "dram",
    "lts__t_bytes.sum": "l2", "Achieved Occupancy": "occ%", "launch__registers_per_thread": "regs",
    "Grid Size": "grid", "Issued Warp Per Scheduler": "ipc",
}
STALLS = ["long_scoreboard", "wait", "math_pipe_throttle", "lg_throttle", "barrier", "mio_throttle",
          "short_scoreboard", "not_selected", "selected", "no_instruction", "dispatch_stall"]
for s in STALLS:
    KEEP[f"smsp__average_warps_issue_stalled_{s}_per_issue_active.ratio"] = "st_" + s

rows = [r for r in csv.reader(line for line in sys.stdin if line.startswith('"'))]
if not rows:
    sys.exit(0)
header = rows[0]
idx = {name: header.index(name) for name in ("ID", "Kernel Name", "Section Name", "Metric Name", "Metric Unit", "Metric Value")}
kernels = OrderedDict()
for r in rows[1:]:
    k = kernels.setdefault(r[idx["ID"]], {"name": r[idx["Kernel Name"]].split("(")[0].split("<")[0][-28:], "m": {}, "stall": {}})
    name, unit, value = r[idx["Metric Name"]], r[idx["Metric Unit"]], r[idx["Metric Value"]].replace(",", "")
    if name in KEEP:
        if name == "Duration" and unit == "ns":
            value = f"{float(value) / 1000:.1f}"
        if name in ("dram__bytes_read.sum", "lts__t_bytes.sum"):
            scale = {"byte": 1, "Kbyte": 1e3, "Mbyte": 1e6, "Gbyte": 1e9}.get(unit, 1)
            value = f"{float(value) * scale / 1e6:.2f}MB"
        k["m"][KEEP[name]] = value
for k in kernels.values():
    print(f"{k['name']:>28} " + " ".join(f"{key}={val}" for key, val in k["m"].items()))
