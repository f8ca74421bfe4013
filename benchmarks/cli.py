"""Command line: ``python -m benchmarks {run,setup,list}``.

``run`` executes every selected workload on every selected system, repeat after
repeat (systems back to back within a repeat, waiting for a quiet machine before
each system), prints the tables and writes the JSON. ``report`` prints the tables
of such a JSON again; ``setup`` only builds the peer environments; ``list`` shows
what can be selected.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchmarks import machine, procs
from benchmarks.report import Column, Report
from benchmarks.results import SKIPPED, UNSUPPORTED, Record, aggregate, load, write
from benchmarks.systems import DEFAULT_GROUPS, GROUPS, System, select
from benchmarks.venvs import SetupError
from benchmarks.workloads import KINDS, PAIRS, PAYLOADS, Workload, catalogue

RESULTS_DIR = Path(__file__).resolve().parent / "results"
QUIET_BUSY_PERCENT = 25.0
QUIET_SETTLE = 3


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _pair_counts(text: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(part) for part in _csv(text))
    except ValueError:
        counts = ()
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"--pairs takes positive integers, e.g. 1,2,4; got {text!r}")
    return counts


def parser() -> argparse.ArgumentParser:
    """Argument parser of ``python -m benchmarks``."""
    top = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = top.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the workloads and print the tables")
    run.add_argument(
        "--quick",
        action="store_true",
        help="1 repeat, short streams, short quiet-wait cap (for development)",
    )
    run.add_argument(
        "--systems",
        type=_csv,
        default=list(DEFAULT_GROUPS),
        help=f"comma list of {','.join(GROUPS)} (default: {','.join(DEFAULT_GROUPS)})",
    )
    run.add_argument(
        "--workloads",
        type=_csv,
        default=list(KINDS),
        help=f"comma list of {','.join(KINDS)} (default: all)",
    )
    run.add_argument(
        "--payloads",
        type=_csv,
        default=list(PAYLOADS),
        help=f"comma list of {','.join(PAYLOADS)} (default: all)",
    )
    run.add_argument(
        "--pairs",
        type=_pair_counts,
        default=PAIRS,
        help=f"pair counts of the parallel workload (default {','.join(map(str, PAIRS))})",
    )
    run.add_argument("--repeats", type=int, help="repeats per workload (default 3, quick 1)")
    run.add_argument("--duration", type=float, help="seconds of streaming per run")
    run.add_argument(
        "--quiet-cap",
        type=float,
        help="max seconds to wait for a quiet machine (default 120, quick 20)",
    )
    run.add_argument(
        "--content-type",
        choices=("image", "other"),
        default="image",
        help="DataChunk content type of frames for the ChimeraPy family",
    )
    run.add_argument("--subject", default="chimerapy", help="system compared with each peer")
    run.add_argument("--out", type=Path, help="JSON path (default benchmarks/results/DATE.json)")
    setup = sub.add_parser("setup", help="build the peers' virtual environments")
    setup.add_argument("--systems", type=_csv, default=["cp0010", "engine", "dora"])
    sub.add_parser("list", help="list systems and workloads")
    report = sub.add_parser("report", help="print the tables of a JSON file written by run")
    report.add_argument("path", type=Path)
    report.add_argument("--subject", default="chimerapy", help="system compared with each peer")
    return top


def say(text: str) -> None:
    print(text, flush=True)


def _brief(record: Record) -> str:
    if record.status != "ok":
        return f"{record.status}: {record.reason}"
    m = record.metrics
    parts = [
        f"{key}={m[key]:.4g}"
        for key in ("fps", "latency_p50_ms", "lost", "setup_s", "stop_s")
        if m.get(key) is not None
    ]
    return "ok " + " ".join(parts)


def _machine(system: str, records: list[Record]) -> str:
    """How busy the machine was when the quiet-wait let ``system`` start, per repeat."""
    seen = {
        r.repeat: r.detail["quiet"] for r in records if r.system == system and r.detail.get("quiet")
    }
    quiet = list(seen.values())
    if not quiet:
        return ""
    busy = ", ".join(f"{q['busy_percent']:.0f}%" for q in quiet)
    calm = sum(1 for q in quiet if q["quiet"])
    return f"machine busy before its runs: {busy} ({calm} of {len(quiet)} waits found it quiet)"


def prepare(systems: list[System], log_dir: Path) -> dict[str, str | None]:
    """Build and check each system; map its name to a skip reason (``None``: runnable)."""
    skipped: dict[str, str | None] = {}
    for system in systems:
        say(f"checking {system.name} ...")
        try:
            system.prepare()
            skipped[system.name] = system.unavailable(log_dir)
        except SetupError as error:
            skipped[system.name] = f"set-up failed: {error}"
        status = f"skipped: {skipped[system.name]}" if skipped[system.name] else system.version
        say(f"  {system.name}: {status}")
    return skipped


def run_all(
    systems: list[System],
    workloads: list[Workload],
    args: argparse.Namespace,
    session: Path,
    skipped: dict[str, str | None],
    records: list[Record],
) -> None:
    """Every repeat, every runnable system back to back, every workload; appends records."""
    cap = args.quiet_cap if args.quiet_cap is not None else (20.0 if args.quick else 120.0)
    for repeat in range(args.repeats):
        for system in systems:
            if skipped[system.name]:
                continue
            quiet = (
                asdict(
                    machine.wait_quiet(
                        max_busy_percent=QUIET_BUSY_PERCENT, settle=QUIET_SETTLE, cap_s=cap
                    )
                )
                if cap
                else {}
            )
            say(f"[repeat {repeat + 1}/{args.repeats}] {system.name}: machine {quiet}")
            for workload in workloads:
                reason = system.unsupported(workload)
                if reason:
                    if repeat == 0:
                        records.append(
                            Record(system.name, workload.key, repeat, UNSUPPORTED, reason)
                        )
                    continue
                run_dir = session / f"r{repeat}" / system.name / workload.key.replace("/", "-")
                result = system.run(system.spec_for(workload, run_dir, args.content_type))
                record = Record.from_result(system.name, workload.key, repeat, result, quiet)
                records.append(record)
                say(f"  {workload.key:<20} {_brief(record)}  ({result['wall_s']:.0f} s)")


def cmd_run(args: argparse.Namespace) -> int:
    """``run``: measure, print, write JSON."""
    args.repeats = args.repeats or (1 if args.quick else 3)
    systems = select(args.systems)
    workloads = catalogue(
        tuple(args.workloads),
        tuple(args.payloads),
        quick=args.quick,
        duration_s=args.duration,
        pairs=args.pairs,
    )
    stamp = dt.datetime.now().strftime("%Y-%m-%d_%H%M%S")
    session = RESULTS_DIR / "runs" / stamp
    session.mkdir(parents=True, exist_ok=True)
    out = args.out or RESULTS_DIR / f"{stamp[:10]}{'-quick' if args.quick else ''}.json"
    header: dict[str, Any] = {
        "date": stamp,
        "machine": machine.describe(),
        "arguments": {k: str(v) for k, v in vars(args).items()},
        "workloads": [asdict(w) | {"key": w.key} for w in workloads],
    }
    say(
        f"benchmark session {stamp}: {len(systems)} systems, {len(workloads)} workloads, "
        f"{args.repeats} repeat(s); logs in {session}"
    )
    records: list[Record] = []
    skipped = prepare(systems, session)
    header["systems"] = {
        s.name: {"kind": s.kind, "version": s.version, "skipped": skipped[s.name]} for s in systems
    }
    records += [
        Record(name, w.key, 0, SKIPPED, reason)
        for name, reason in skipped.items()
        if reason
        for w in workloads
    ]
    began = time.monotonic()
    interrupted = True
    try:
        run_all(systems, workloads, args, session, skipped, records)
        interrupted = False
    finally:
        procs.kill_all()
        header["interrupted"] = interrupted
        header["elapsed_s"] = round(time.monotonic() - began)
        write(out, header=header, records=records, summary=aggregate(records))
        say(render(header, records, args.subject))
        say(f"\nJSON written to {out}")
    return 0


def render(header: dict[str, Any], records: list[Record], subject: str) -> str:
    """The tables of one run, from its JSON header and records."""
    fields = {f.name for f in dataclasses.fields(Workload)}
    workloads = [
        Workload(**{k: v for k, v in w.items() if k in fields}) for w in header["workloads"]
    ]
    columns = [
        Column(name, s["kind"], s["skipped"], s["version"], _machine(name, records))
        for name, s in header["systems"].items()
    ]
    return Report(aggregate(records), workloads, columns, subject).render()


def cmd_report(args: argparse.Namespace) -> int:
    """``report``: print the tables of a JSON file written by ``run``."""
    header, records = load(args.path)
    host = header["machine"]
    say(
        f"benchmark session {header['date']}: {host['cores']} cores, {host['memory_gib']} GiB, "
        f"Python {host['python']}, {host['platform']}"
    )
    say(render(header, records, args.subject))
    return 0


def cmd_setup(args: argparse.Namespace) -> int:
    """``setup``: build the selected peers' venvs."""
    failed = 0
    for system in select(args.systems):
        try:
            say(f"setting up {system.name} ...")
            system.prepare()
            say(f"  {system.name}: ready")
        except SetupError as error:
            failed += 1
            say(f"  {system.name}: {error}")
    return 1 if failed else 0


def cmd_list(_args: argparse.Namespace) -> int:
    """``list``: systems and workloads."""
    for group, factory in GROUPS.items():
        say(f"{group}: {', '.join(f'{s.name} ({s.kind})' for s in factory())}")
    for workload in catalogue(KINDS, PAYLOADS, quick=False):
        say(f"  {workload.key:<20} {workload.title}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m benchmarks``."""
    args = parser().parse_args(argv)
    procs.install_cleanup()
    commands = {"run": cmd_run, "setup": cmd_setup, "list": cmd_list, "report": cmd_report}
    try:
        return commands[args.command](args)
    except KeyboardInterrupt:
        say("interrupted; every process started by the suite has been stopped")
        return 130


if __name__ == "__main__":
    sys.exit(main())
