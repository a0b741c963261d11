"""Tables, ratios, the issue's targets and a small plot, from the suite's results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

FEWSMAP = "fewsmap (default workers)"
FEWSMAP_1 = "fewsmap (--workers 1)"
XPUBLISH = "xpublish-wms"
MAPSERVER = "MapServer"
FLOOR = "floor (in-process)"
SERVERS = (FEWSMAP, FEWSMAP_1, XPUBLISH, MAPSERVER, FLOOR)

TILE_EU = "GetMap 256x256 eu"
MAP_EU = "GetMap 1920x1200 eu"
TILE_LARGE = "GetMap 256x256 large"
MAP_LARGE = "GetMap 1920x1200 large"
GETMAP_CASES = (TILE_EU, MAP_EU, TILE_LARGE, MAP_LARGE)
HIGH_CONCURRENCY = {TILE_EU: 8, MAP_EU: 4, TILE_LARGE: 8, MAP_LARGE: 4}


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if value >= 100:
            return f"{value:.0f}"
        if value >= 10:
            return f"{value:.1f}"
        return f"{value:.{digits - 1}f}" if value >= 1 else f"{value:.{digits}f}"
    return str(value)


def find(loads: list[dict[str, Any]], case: str, server: str,
         concurrency: int | None = None) -> dict[str, Any] | None:
    for entry in loads:
        if entry["case"] == case and entry["server"] == server and not entry.get("skipped") \
                and (concurrency is None or entry.get("concurrency") == concurrency) \
                and entry.get("median_ms") is not None:
            return entry
    return None


def load_table(loads: list[dict[str, Any]]) -> str:
    """Every load: one markdown row each."""
    lines = ["| case | server | c | n | median ms | p95 ms | req/s | server CPU ms/req | "
             "client CPU ms/req | bytes | errors |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for entry in loads:
        if entry.get("skipped"):
            lines.append(f"| {entry['case']} | {entry['server']} | | | skipped: "
                         f"{entry['skipped']} | | | | | | |")
            continue
        lines.append(
            f"| {entry['case']} | {entry['server']} | {entry.get('concurrency', 1)} | "
            f"{entry.get('n')} | {_fmt(entry.get('median_ms'))} | {_fmt(entry.get('p95_ms'))} | "
            f"{_fmt(entry.get('rps'))} | {_fmt(entry.get('server_cpu_ms_per_req'))} | "
            f"{_fmt(entry.get('client_cpu_ms_per_req'))} | {_fmt(entry.get('bytes_mean'))} | "
            f"{entry.get('errors', 0)} |")
    return "\n".join(lines)


def ratios(loads: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """fewsmap against each peer (median and req/s) and against the floor (median)."""
    out = []
    seen = []
    for entry in loads:
        key = (entry["case"], entry.get("concurrency"))
        if entry["server"] not in (FEWSMAP, FEWSMAP_1) or entry.get("skipped") or key in seen:
            continue
        seen.append(key)
        case, concurrency = key
        for ours in (FEWSMAP, FEWSMAP_1):
            mine = find(loads, case, ours, concurrency)
            if mine is None:
                continue
            row: dict[str, Any] = {"case": case, "concurrency": concurrency, "fewsmap": ours,
                                   "median_ms": mine["median_ms"], "rps": mine["rps"]}
            for peer in (XPUBLISH, MAPSERVER):
                theirs = find(loads, case, peer, concurrency)
                if theirs is not None:
                    row[f"median_vs_{peer}"] = mine["median_ms"] / theirs["median_ms"]
                    row[f"rps_vs_{peer}"] = mine["rps"] / theirs["rps"]
            floor = find(loads, case, FLOOR)
            if floor is not None and concurrency == 1:
                row["median_vs_floor"] = mine["median_ms"] / floor["median_ms"]
                row["floor_ms"] = floor["median_ms"]
            out.append(row)
    return out


def ratio_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| case | c | fewsmap | median ms | req/s | median ÷ xpublish | req/s ÷ xpublish |"
             " median ÷ MapServer | req/s ÷ MapServer | median ÷ floor |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        def x(key: str, r: dict[str, Any] = r) -> str:
            return f"{r[key]:.2f}×" if key in r else "–"
        lines.append(f"| {r['case']} | {r['concurrency']} | {r['fewsmap']} | "
                     f"{_fmt(r['median_ms'])} | {_fmt(r['rps'])} | {x('median_vs_' + XPUBLISH)} | "
                     f"{x('rps_vs_' + XPUBLISH)} | {x('median_vs_' + MAPSERVER)} | "
                     f"{x('rps_vs_' + MAPSERVER)} | {x('median_vs_floor')} |")
    return "\n".join(lines)


def targets(loads: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's targets, judged on the Europe cube with default workers."""
    out: list[dict[str, Any]] = []

    def judge(name: str, value: float | None, limit: float, at_most: bool, unit: str,
              detail: str = "") -> None:
        met = None if value is None else (value <= limit if at_most else value >= limit)
        out.append({"target": name, "value": value, "limit": limit, "unit": unit,
                    "met": met, "detail": detail})

    tile1 = find(loads, TILE_EU, FEWSMAP, 1)
    tile8 = find(loads, TILE_EU, FEWSMAP, 8)
    map1 = find(loads, MAP_EU, FEWSMAP, 1)
    judge("256×256 median at c=1 ≤ 5 ms", tile1 and tile1["median_ms"], 5.0, True, "ms")
    judge("256×256 at c=8, default workers ≥ 300 req/s", tile8 and tile8["rps"], 300.0, False,
          "req/s")
    for peer, factor in ((XPUBLISH, 10.0), (MAPSERVER, 3.0)):
        for case, c in ((TILE_EU, 8), (MAP_EU, 4)):
            mine, theirs = find(loads, case, FEWSMAP, c), find(loads, case, peer, c)
            value = mine["rps"] / theirs["rps"] if mine and theirs else None
            judge(f"throughput ≥ {factor:g}× {peer} ({case.split(' ', 1)[1]}, c={c})", value,
                  factor, False, "×",
                  f"{_fmt(mine and mine['rps'])} vs {_fmt(theirs and theirs['rps'])} req/s")
    for case in (TILE_EU, MAP_EU):
        mine, floor = find(loads, case, FEWSMAP, 1), find(loads, case, FLOOR)
        if mine and floor:
            limit = 1.5 * floor["median_ms"] + 1
            judge(f"median ≤ 1.5 × floor + 1 ms ({case.split(' ', 1)[1]}, c=1)",
                  mine["median_ms"], limit, True, "ms",
                  f"floor {floor['median_ms']:.2f} ms → limit {limit:.2f} ms")
        else:
            judge(f"median ≤ 1.5 × floor + 1 ms ({case.split(' ', 1)[1]}, c=1)", None, 0, True,
                  "ms")
    judge("1920×1200 median at c=1 ≤ 40 ms", map1 and map1["median_ms"], 40.0, True, "ms")
    for entry in loads:  # capabilities of one layer's runs (served, so cached), time series
        if entry["server"] != FEWSMAP or entry.get("median_ms") is None:
            continue
        if (entry["case"].startswith("GetCapabilities") and "1 layer" in entry["case"]) \
                or entry["case"].startswith("time series"):
            judge(f"{entry['case']}: median ≤ 20 ms", entry["median_ms"], 20.0, True, "ms")
    return out


def target_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| target | measured | limit | met? | detail |", "|---|---|---|---|---|"]
    for r in rows:
        met = {True: "**met**", False: "**not met**", None: "not measured"}[r["met"]]
        lines.append(f"| {r['target']} | {_fmt(r['value'])} {r['unit']} | "
                     f"{_fmt(r['limit'])} {r['unit']} | {met} | {r['detail']} |")
    return "\n".join(lines)


def stage_table(stages: list[dict[str, Any]]) -> str:
    """fewsmap's render stages (in-process medians) beside the end-to-end median."""
    lines = ["| case | n | parse+resolve | read_window | regrid | colour | encode | "
             "sum | render_maps | end-to-end c=1 |", "|---|---|---|---|---|---|---|---|---|---|"]
    for s in stages:
        if "error" in s:
            lines.append(f"| {s['case']} | error: {s['error']} | | | | | | | | |")
            continue
        m = s["stages_median_ms"]
        lines.append(
            f"| {s['case']} | {s['n']} | {_fmt(m.get('parse+resolve'))} | "
            f"{_fmt(m.get('read_window'))} | {_fmt(m.get('regrid'))} | {_fmt(m.get('colour'))} | "
            f"{_fmt(m.get('encode'))} | {_fmt(s['sum_of_stage_medians_ms'])} | "
            f"{_fmt(s['render_maps_median_ms'])} | {_fmt(s.get('end_to_end_median_ms'))} |")
    return "\n".join(lines)


def plot(loads: list[dict[str, Any]], path: Path, title: str) -> None:
    """Median at c=1 and throughput at high concurrency per GetMap case and server."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), dpi=80)
    width = 0.16
    labels = [c.replace("GetMap ", "") for c in GETMAP_CASES]
    for panel, (ax, metric) in enumerate(zip(axes, ("median_ms", "rps"), strict=True)):
        for k, server in enumerate(SERVERS):
            if panel == 1 and server == FLOOR:
                continue
            values = []
            for case in GETMAP_CASES:
                c = 1 if metric == "median_ms" else HIGH_CONCURRENCY[case]
                entry = find(loads, case, server, None if server == FLOOR else c)
                values.append(entry[metric] if entry and entry.get(metric) else 0)
            xs = [i + (k - 2) * width for i in range(len(GETMAP_CASES))]
            ax.bar(xs, values, width, label=server)
        ax.set_xticks(range(len(GETMAP_CASES)), labels, fontsize=8)
        ax.set_yscale("log")
        ax.set_title("median latency at c=1, ms (lower is better)" if panel == 0 else
                     "req/s at c=8 (tiles) / c=4 (maps) (higher is better)", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
