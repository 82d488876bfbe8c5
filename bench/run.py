"""Every benchmark in one run: prints a table of figures against their goals and writes them,
with the machine and the raw results, to bench/results/latest.json.

Each benchmark is also a script of its own (see the module docstrings); this imports their
`measure` functions. A section here turns one benchmark's result into table rows. Goals are
printed, never asserted: a figure that misses its goal is news, not a failed build.
A section whose feature does not exist yet says "not available yet" (null in the JSON);
giving it a figure is one function.
Run: .venv/bin/python bench/run.py [--only SECTION ...] [--markdown] [--render JSON]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attachment_seal
import browser_seal
import crypto_costs
import guess_codes
import overload
import page_weight
import slow_link
import status_check
import storage
import throughput
import upload_2g

from intake.cli import main as intake_cli
from intake.config import Throttle

ROOT = Path(__file__).resolve().parents[1]
LATEST = ROOT / "bench" / "results" / "latest.json"
SUITE_BUDGET_S = 15 * 60
NOT_YET = "not available yet"


@dataclass(frozen=True)
class Goal:
    text: str  # as printed, e.g. "≤ 40,960 B"
    limit: float
    at_most: bool  # True: the figure must not exceed `limit`; False: must reach it

    def met(self, value: float) -> bool:
        return value <= self.limit if self.at_most else value >= self.limit


def at_most(limit: float, text: str) -> Goal:
    return Goal(f"≤ {text}" if limit else text, limit, at_most=True)


def at_least(limit: float, text: str) -> Goal:
    return Goal(f"≥ {text}", limit, at_most=False)


def holds(text: str) -> Goal:
    """A goal that is a condition: the figure's value is 1 when it holds, 0 when not."""
    return Goal(text, 1, at_most=False)


@dataclass(frozen=True)
class Figure:
    key: str  # stable name in the JSON
    what: str
    shown: str  # the figure as printed
    value: float | None = None  # what the goal is checked against; None: not measured
    goal: Goal | None = None

    @property
    def met(self) -> bool | None:
        if self.goal is None or self.value is None:
            return None
        return self.goal.met(self.value)

    def as_json(self) -> dict[str, Any]:
        return {"key": self.key, "what": self.what, "figure": self.shown, "value": self.value,
                "goal": self.goal.text if self.goal else None, "met": self.met}


Result = tuple[dict[str, Any] | None, list[Figure]]


def _bytes(n: float) -> str:
    return f"{n:,.0f} B"


def _ms(ms: float) -> str:
    return f"{ms:,.0f} ms"


# Sections, in the order of the table. Each measures and returns (raw result, rows).

def page_weight_section() -> Result:
    raw = page_weight.measure()
    first, repeat = raw["first_visit"], raw["repeat_visit"]
    heaviest = max(row["bytes"] for row in first)
    most = max(row["requests"] for row in first)
    per_lang = " / ".join(f"{row['page'].strip('/')} {row['bytes']:,}" for row in first)
    return raw, [
        Figure("page_weight.first_visit_bytes",
               "report page, first visit: bytes transferred (compressed, headers included)",
               f"{per_lang} B", heaviest, at_most(raw["budget_bytes"],
                                                  _bytes(raw["budget_bytes"]))),
        Figure("page_weight.first_visit_requests", "report page, first visit: requests",
               str(most), most, at_most(raw["budget_requests"], str(raw["budget_requests"]))),
        Figure("page_weight.first_visit_uncompressed_bytes",
               "the same bodies uncompressed (headers not included)",
               " / ".join(f"{row['page'].strip('/')} {row['uncompressed_body_bytes']:,}"
                          for row in first) + " B",
               max(row["uncompressed_body_bytes"] for row in first)),
        Figure("page_weight.repeat_visit_static_bytes",
               "repeat visit with the service worker: static files (CSS, JS, icon) "
               "over the network",
               _bytes(repeat["static_network_bytes"]), repeat["static_network_bytes"],
               at_most(0, "0 B")),
        Figure("page_weight.repeat_visit_network_bytes",
               "repeat visit with the service worker: everything over the network "
               f"({', '.join(repeat['network_requests']) or 'nothing'})",
               _bytes(repeat["network_bytes"]), repeat["network_bytes"], at_most(0, "0 B")),
    ]


def slow_link_section() -> Result:
    raw = slow_link.measure()
    link = "400 kbit/s, 400 ms RTT"
    three_s = at_most(3000, "3 s")
    words = f"{raw['report_words']:,}-word report"
    return raw, [
        Figure("slow_link.first_visit_usable_ms", f"usable form, first visit, {link}",
               _ms(raw["first_visit_usable_ms"]), raw["first_visit_usable_ms"], three_s),
        Figure("slow_link.repeat_visit_usable_ms", f"usable form, repeat visit, {link}",
               _ms(raw["repeat_visit_usable_ms"]), raw["repeat_visit_usable_ms"]),
        Figure("slow_link.submit_to_receipt_code_ms",
               f"{words}: Send to receipt code on screen, {link}",
               _ms(raw["submit_to_receipt_code_ms"]), raw["submit_to_receipt_code_ms"],
               three_s),
        Figure("slow_link.submit_to_received_ms",
               f"{words}: Send to \"received\" (stored by the server), {link}",
               _ms(raw["submit_to_received_ms"]), raw["submit_to_received_ms"], three_s),
    ]


def throughput_section() -> Result:
    raw = throughput.measure()
    return raw, [
        Figure("throughput.per_s",
               f"submissions, {raw['clients']} concurrent clients, 2,000-word reports",
               f"{raw['throughput_per_s']:.1f} reports/s, p50 {_ms(raw['p50_ms'])}, "
               f"p99 {_ms(raw['p99_ms'])}", raw["throughput_per_s"]),
        Figure("throughput.ratio",
               f"that against argon2id alone on {raw['cores']} cores "
               f"({raw['argon2_ceiling_per_s']:.1f} hashes/s)",
               f"{raw['ratio']:.2f}", raw["ratio"], at_least(0.8, "0.8")),
    ]


def crypto_costs_section() -> Result:
    raw = crypto_costs.measure()
    a = raw["argon2id"]
    return raw, [
        # The goal is on the parameter, not the time: RFC 9106's second recommended option.
        Figure("crypto.receipt_hash_s",
               f"one receipt-code hash, argon2id t={a['time_cost']}, "
               f"m={a['memory_kib'] // 1024} MiB, p={a['parallelism']} "
               f"(median of {raw['runs']}); goal on m",
               f"{raw['receipt_hash_s']:.2f} s (CPU {raw['receipt_hash_cpu_s']:.2f} s)",
               a["memory_kib"] / 1024,
               at_least(64, "64 MiB")),
        Figure("crypto.key_file_open_s",
               f"opening a key file, PBKDF2-HMAC-SHA256 {raw['pbkdf2_iterations']:,} "
               f"iterations, Python (median of {raw['runs']})",
               f"{raw['key_file_open_s']:.2f} s (CPU {raw['key_file_open_cpu_s']:.2f} s)",
               raw["key_file_open_s"]),
    ]


def status_check_section() -> Result:
    raw = status_check.measure()
    rows = [
        Figure(f"status_check.{row['reports']}_ms",
               f"status check, {row['reports']:,} reports stored: found / unknown / mistyped "
               f"(median of {raw['runs']})",
               f"{row['found_ms']:.0f} / {row['unknown_ms']:.0f} / {row['mistyped_ms']:.0f} ms",
               row["found_ms"])
        for row in raw["rows"]
    ]
    rows.append(Figure("status_check.ratio", "found-code time, 100,000 against 10 reports",
                       f"{raw['ratio_found']:.2f} (CPU {raw['ratio_found_cpu']:.2f})",
                       raw["ratio_found"], at_most(1.2, "1.2")))
    return raw, rows


def browser_seal_section() -> Result:
    raw = browser_seal.measure()
    return raw, [
        Figure(f"browser_seal.{row['bytes'] // 1_000_000}mb_ms",
               f"sealing {row['bytes'] // 1_000_000} MB in Chromium, against plain AES-GCM",
               f"{row['seal_ms']:,.0f} ms against {row['aes_ms']:,.0f} ms "
               f"(ratio {row['ratio']:.1f})", row["seal_ms"])
        for row in raw["rows"]
    ]


def storage_section() -> Result:
    typical = storage.measure()
    long_reports = storage.measure(words=2000)
    raw = {"typical": typical, "long": long_reports}
    return raw, [
        Figure(f"storage.{row['words']}_words",
               f"database per report, {row['reports']:,} reports of {row['words']:,} words, "
               "against its envelope",
               f"{_bytes(row['bytes_per_report'])} against "
               f"{_bytes(row['envelope_bytes_per_report'])} "
               f"(overhead ratio {row['overhead_ratio']:.2f})", row["overhead_ratio"])
        for row in (typical, long_reports)
    ]


def backup_section() -> Result:
    what = "`intake backup` of 10,000 reports: write / check with the key / restore"
    # Looked up when run: the command was being written while this suite was.
    if "backup" not in intake_cli.commands:
        return None, [Figure("backup.seconds", what, NOT_YET)]
    import backup_time

    raw = backup_time.measure()
    return raw, [Figure(
        "backup.seconds",
        f"{what} ({raw['db_bytes'] / 1e6:.0f} MB database, {raw['file_bytes'] / 1e6:.1f} MB "
        f"file, median of {raw['runs']})",
        f"{raw['backup_s']:.2f} / {raw['verify_s']:.2f} / {raw['restore_s']:.2f} s",
        raw["backup_s"])]


def case_list_section() -> Result:
    what = "officer's case list, 100,000 cases: first page / filtered / page 1,000"
    if importlib.util.find_spec("intake.cases") is None:
        return None, [Figure("case_list.ms", what, NOT_YET)]
    import case_list

    raw = case_list.measure()
    pages = list(raw["pages"].values())
    return raw, [Figure(
        "case_list.ms", f"{what}, median (p95) of {raw['runs']} requests",
        " / ".join(f"{p['median_ms']:.0f} ({p['p95_ms']:.0f})" for p in pages) + " ms",
        max(p["median_ms"] for p in pages))]


def guess_codes_section() -> Result:
    raw = guess_codes.measure()
    limits = Throttle()
    allowed = guess_codes.allowed_checks(
        float(raw["seconds"]), free=limits.status_free_failures,
        first=limits.status_first_wait_seconds, most=limits.status_max_wait_seconds)
    answers = raw["answers"]
    assert isinstance(answers, dict)
    held = (int(raw["checked"]) <= allowed
            and raw.get("other_address") == 200 and raw.get("same_address") == 200)
    return raw, [Figure(
        "guess_codes.checked",
        "guessing receipt codes from one address, default limits, production argon2id",
        f"{raw['sent']:,} sent in {raw['seconds']:.0f} s, {raw['checked']} checked, "
        f"{answers.get(429, 0):,} refused; a real code then found from another address "
        f"after {raw.get('other_waited', 0):.0f} s, from the guesser's after "
        f"{raw.get('same_waited', 0):.0f} s",
        float(held),
        holds(f"≤ {allowed} checked (SECURITY.md's schedule); real code found"))]


def overload_section() -> Result:
    raw = overload.measure()
    answers = raw["answers"]
    slack_mib = 64  # as tests/test_overload.py allows: the interpreter's own growth
    only_201_503 = set(answers) <= {"201", "503"}
    held = (only_201_503 and raw["stored_exactly_the_acknowledged"]
            and raw["peak_rss_mib"] <= raw["bound_mib"] + slack_mib)
    return raw, [Figure(
        "overload.held",
        f"{raw['factor']:g} × capacity ({raw['capacity_per_s']:.1f} reports/s) for "
        f"{raw['seconds']:.0f} s, production argon2id, {raw['slots']} hash slots",
        f"answers {answers}; stored exactly the {raw['acknowledged']} acknowledged: "
        f"{raw['stored_exactly_the_acknowledged']}; 503 median {raw['p50_ms_503']:.0f} ms; "
        f"memory {raw['idle_rss_mib']:.0f} MiB idle, {raw['peak_rss_mib']:.0f} MiB peak",
        float(held),
        holds(f"201 or 503 only, nothing lost, peak ≤ idle + slots × 64 MiB "
              f"+ {slack_mib} MiB")),
    ]


def upload_2g_section() -> Result:
    raw = upload_2g.measure()
    return raw, [Figure(
        "upload_2g.seconds",
        f"a {raw['bytes'] / 2**20:.0f} MiB attachment, {raw['kbit_per_s']} kbit/s, "
        f"{raw['rtt_ms']} ms RTT: Send to \"received\"",
        f"{raw['seconds']:.0f} s against {raw['line_seconds']:.0f} s for the bytes alone "
        f"(overhead {raw['overhead']:.0%})", raw["seconds"])]


def attachment_seal_section() -> Result:
    raw = attachment_seal.measure()
    return raw, [
        Figure(f"attachment_seal.{row['bytes'] // 1_000_000}mb_ms",
               f"sealing a {row['bytes'] // 1_000_000} MB attachment in Chromium, against "
               "plain AES-GCM",
               f"{row['seal_ms']:,.0f} ms against {row['aes_ms']:,.0f} ms "
               f"(ratio {row['ratio']:.1f})", row["seal_ms"])
        for row in raw["rows"]
    ]


SECTIONS: dict[str, Callable[[], Result]] = {
    "page_weight": page_weight_section,
    "slow_link": slow_link_section,
    "crypto_costs": crypto_costs_section,
    "throughput": throughput_section,
    "status_check": status_check_section,
    "browser_seal": browser_seal_section,
    "attachment_seal": attachment_seal_section,
    "upload_2g": upload_2g_section,
    "guess_codes": guess_codes_section,
    "overload": overload_section,
    "storage": storage_section,
    "backup": backup_section,
    "case_list": case_list_section,
}


def machine() -> dict[str, Any]:
    cpu = "unknown"
    memory_kib = 0
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_kib = int(line.split()[1])
    except OSError:
        pass  # not Linux: the rest still says enough
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(memory_kib / 2**20, 1),
            "os": platform.platform(), "python": platform.python_version()}


def code_version() -> dict[str, Any]:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              check=False).stdout.strip()
    # bench/results/ itself is left out: the previous results do not make the code dirty.
    dirty = git("status", "--porcelain", "--", ".", ":!bench/results")
    return {"commit": git("rev-parse", "HEAD") or None, "dirty": bool(dirty)}


def table(figures: list[dict[str, Any]], markdown: bool) -> str:
    def met(figure: dict[str, Any]) -> str:
        return {True: "met", False: "NOT MET", None: ""}[figure["met"]]

    rows = [(f["what"], f["figure"], f["goal"] or "—", met(f)) for f in figures]
    header = ("what", "figure", "goal", "met")
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|---|---|---|---|"]
        lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |"
                  for row in rows]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
                     .rstrip() for row in [header, *rows])


def run(names: list[str]) -> tuple[dict[str, Any], bool]:
    started_at = datetime.now(UTC)
    started = time.perf_counter()
    load_before = os.getloadavg()
    if load_before[0] > 0.5 * (os.cpu_count() or 1):
        print(f"Load average {load_before[0]:.1f} on {os.cpu_count()} cores: other work is "
              "running, and the times will show it.", file=sys.stderr)
    results: dict[str, Any] = {}
    figures: list[Figure] = []
    seconds: dict[str, float] = {}
    load_after: dict[str, float] = {}
    ok = True
    for name in names:
        print(f"[{time.perf_counter() - started:6.0f} s] {name} ...", file=sys.stderr)
        section_started = time.perf_counter()
        try:
            # What a benchmark prints as it goes is progress: stderr, so that stdout
            # holds the table alone.
            with contextlib.redirect_stdout(sys.stderr):
                results[name], rows = SECTIONS[name]()
        except Exception as exc:
            # One broken benchmark should not cost the figures of the others.
            traceback.print_exc()
            ok = False
            results[name] = None
            rows = [Figure(f"{name}.error", name, f"failed: {type(exc).__name__}: {exc}")]
        figures += rows
        seconds[name] = time.perf_counter() - section_started
        # One-minute load average as each section ends: other work on a shared machine
        # slows the times, and this shows when it did.
        load_after[name] = round(os.getloadavg()[0], 2)
    total = time.perf_counter() - started
    if set(names) == set(SECTIONS):
        figures.append(Figure("suite.seconds", "the whole suite, bench/run.py",
                              f"{total / 60:.1f} min", total,
                              at_most(SUITE_BUDGET_S, f"{SUITE_BUDGET_S // 60} min")))
    chromium = (results.get("page_weight") or {}).get("chromium")
    report = {
        "suite": "bench/run.py", "started_at": started_at.isoformat(timespec="seconds"),
        "seconds": total, "section_seconds": seconds,
        "machine": {**machine(), "chromium": chromium,
                    "load_average_before": load_before, "load_after_section": load_after},
        "code": code_version(),
        "figures": [f.as_json() for f in figures],
        "results": results,
    }
    return report, ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--only", nargs="+", choices=list(SECTIONS), metavar="SECTION",
                        help=f"run only these: {', '.join(SECTIONS)}")
    parser.add_argument("--out", type=Path,
                        help=f"where to write the JSON (default {LATEST.relative_to(ROOT)} "
                        "for a full run; nothing for a partial one)")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument("--render", type=Path, metavar="JSON",
                        help="print the table of an earlier run instead of running")
    args = parser.parse_args()
    if args.render:
        print(table(json.loads(args.render.read_text())["figures"], args.markdown))
        return
    names = args.only or list(SECTIONS)
    report, ok = run(names)
    print(table(report["figures"], args.markdown))
    print(f"\n{report['seconds'] / 60:.1f} min on {report['machine']['cores']} cores "
          f"({report['machine']['cpu']})")
    out = args.out or (LATEST if not args.only else None)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n",
                       encoding="utf-8")
        print(f"written to {out}")
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
