#!/usr/bin/env python3
"""Judges Autobahn|Testsuite reports for tests/autobahn/run.sh and writes the Markdown summary.

A case passes when both `behavior` and `behaviorClose` are OK, NON-STRICT or INFORMATIONAL, in
every section (12 and 13, permessage-deflate, included: UNIMPLEMENTED fails there too). Every NON-STRICT result must be listed, with a reason, in the
allow-list file. Every expected case must be present in the report. The last line printed is
`autobahn: N passed, M failed`; the exit status is 1 when anything failed.
"""

import argparse
import datetime
import json
import os
import subprocess
import sys
from collections import Counter

ACCEPTED = {"OK", "NON-STRICT", "INFORMATIONAL"}
COLUMNS = ["OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "Failed"]
DIRECTIONS = {
    # AUTOBAHN_SERVER_LABEL names another server under test (AUTOBAHN_SERVER_CMD).
    "server": os.environ.get("AUTOBAHN_SERVER_LABEL", "multipeer server (`ws_echo_server`)")
    + " tested by wstest `fuzzingclient`",
    "client": "multipeer client (`ws_autobahn_client`) tested by wstest `fuzzingserver`",
}
# Fields of a per-case report that explain a verdict, in the order they are printed.
REASON_FIELDS = [
    "description", "expectation", "result", "resultClose", "remoteCloseCode",
    "remoteCloseReason", "localCloseCode", "localCloseReason", "wasClean",
    "wasNotCleanReason", "droppedByMe", "failedByMe",
]


def case_key(case_id):
    return tuple(int(part) for part in case_id.split("."))


def section_of(case_id):
    return int(case_id.split(".")[0])


def read_allow_list(path):
    """Parses lines `<server|client|both> <case-id>  # why`; returns ({(dir, case): why}, errors)."""
    allowed, errors = {}, []
    if not os.path.exists(path):
        return allowed, errors
    with open(path, encoding="utf-8") as f:
        for number, raw in enumerate(f, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            entry, _, why = line.partition("#")
            fields = entry.split()
            why = why.strip()
            where = f"{os.path.basename(path)}:{number}"
            if len(fields) != 2 or fields[0] not in ("server", "client", "both"):
                errors.append(f"{where}: expected '<server|client|both> <case-id>  # why', got {line!r}")
                continue
            try:
                case_key(fields[1])
            except ValueError:
                errors.append(f"{where}: {fields[1]!r} is not a case id like 6.4.3")
                continue
            if len(why) < 10:
                errors.append(f"{where}: NON-STRICT entry {fields[1]} has no explanation after '#'")
                continue
            directions = ("server", "client") if fields[0] == "both" else (fields[0],)
            for direction in directions:
                allowed[(direction, fields[1])] = why
    return allowed, errors


def classify(case_id, result):
    """Returns the column a case is counted in."""
    behaviors = {result.get("behavior"), result.get("behaviorClose")}
    accepted = ACCEPTED
    if not behaviors <= accepted:
        return "Failed"
    for column in ("UNIMPLEMENTED", "NON-STRICT", "INFORMATIONAL"):
        if column in behaviors:
            return column
    return "OK"


def failure_reason(report_dir, result):
    details = {
        "behavior": result.get("behavior"),
        "behaviorClose": result.get("behaviorClose"),
    }
    path = os.path.join(report_dir, result.get("reportfile", ""))
    try:
        with open(path, encoding="utf-8") as f:
            case = json.load(f)
        for field in REASON_FIELDS:
            if field in case:
                details[field] = case[field]
    except (OSError, ValueError) as error:
        details["report"] = f"unreadable per-case report {path}: {error}"
    return details


def judge(direction, index_path, expected, allowed):
    """Returns a dict with per-section counts, failures and NON-STRICT cases of one direction."""
    outcome = {
        "direction": direction, "sections": {}, "failed": [], "non_strict": [],
        "unexplained": [], "stale": [], "durations": [], "errors": [], "informational": [],
    }
    index = {}
    if not os.path.exists(index_path):
        outcome["errors"].append(f"{direction}: no report at {index_path}")
    else:
        with open(index_path, encoding="utf-8") as f:
            agents = json.load(f)
        if len(agents) != 1:
            outcome["errors"].append(f"{direction}: expected one agent in {index_path}, found {sorted(agents)}")
        if agents:
            index = agents[sorted(agents)[0]]
    report_dir = os.path.dirname(index_path)
    unexpected = sorted(set(index) - set(expected), key=case_key)
    if unexpected:
        outcome["errors"].append(f"{direction}: cases not asked for in the report: {' '.join(unexpected)}")
    for case_id in expected:
        counts = outcome["sections"].setdefault(section_of(case_id), Counter())
        counts["cases"] += 1
        result = index.get(case_id)
        if result is None:
            counts["Failed"] += 1
            outcome["failed"].append((case_id, {"behavior": "MISSING", "report": "case absent from index.json"}))
            continue
        outcome["durations"].append((result.get("duration", 0), case_id))
        column = classify(case_id, result)
        counts[column] += 1
        if column == "Failed":
            outcome["failed"].append((case_id, failure_reason(report_dir, result)))
        elif column == "INFORMATIONAL":
            outcome["informational"].append(case_id)
        elif "NON-STRICT" in (result.get("behavior"), result.get("behaviorClose")):
            why = allowed.get((direction, case_id))
            if why is None:
                outcome["unexplained"].append(case_id)
            else:
                outcome["non_strict"].append((case_id, why))
    ran = set(expected)
    listed_ok = {case for case, _ in outcome["non_strict"]}
    for (where, case_id), _ in sorted(allowed.items(), key=lambda kv: (kv[0][0], case_key(kv[0][1]))):
        if where == direction and case_id in ran and case_id in index and case_id not in listed_ok:
            outcome["stale"].append(case_id)
    return outcome


def command_output(args, cwd=None):
    try:
        return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=30,
                              check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def versions(args):
    wstest = " / ".join(line.strip() for line in open(args.versions, encoding="utf-8") if line.strip()) \
        if args.versions and os.path.exists(args.versions) else "unknown"
    commit = command_output(["git", "rev-parse", "--short=12", "HEAD"], cwd=args.repo) or "unknown"
    # The summary is this script's own output, so its state says nothing about what was tested.
    dirty = command_output(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                            ":(exclude)tests/autobahn/SUMMARY.md"], cwd=args.repo)
    if commit != "unknown" and dirty:
        commit += " (plus uncommitted changes)"
    rustc = command_output(["rustc", "--version"], cwd=args.repo) or "unknown"
    return wstest, commit, rustc


def markdown(args, outcomes, expected, section_names, passed, failed, notes):
    wstest, commit, rustc = versions(args)
    # When the reports were written (so a summary regenerated later keeps the run's date).
    stamps = [os.path.getmtime(p) for p in (args.servers, args.clients) if p and os.path.exists(p)]
    when = datetime.datetime.fromtimestamp(max(stamps), datetime.timezone.utc) if stamps \
        else datetime.datetime.now(datetime.timezone.utc)
    now = when.strftime("%Y-%m-%d %H:%M UTC")
    full = args.patterns == ["*"]
    lines = [
        "# Autobahn|Testsuite results",
        "",
        "Written by `tests/autobahn/run.sh`; do not edit by hand. The HTML and JSON reports are",
        "in `tests/reports/autobahn/` after a run (not committed).",
        "",
        f"- Date: {now}",
        f"- multipeer commit: {commit}",
        f"- Test suite: {wstest} (CPython 2.7)",
        f"- Rust: {rustc}",
        f"- Cases: {len(expected)} per direction"
        + (" (every section; 12.* and 13.* are permessage-deflate, negotiated by both binaries"
           " with --permessage-deflate)" if full else f" (partial run: {', '.join(args.patterns or [])})"),
        f"- Verdict: **{'PASS' if failed == 0 and not notes else 'FAIL'}**: {passed} passed, {failed} failed",
        "",
        "A case passes when both its behavior and its close behavior are OK, NON-STRICT or",
        "INFORMATIONAL, and every NON-STRICT case is explained in `tests/autobahn/non-strict.txt`.",
    ]
    for outcome in outcomes:
        seconds = args.server_seconds if outcome["direction"] == "server" else args.client_seconds
        total = Counter()
        for counts in outcome["sections"].values():
            total.update(counts)
        lines += ["", f"## {outcome['direction'].capitalize()}: {DIRECTIONS[outcome['direction']]}", "",
                  f"{total['cases']} cases in {seconds} s.", "",
                  "| Section | Cases | " + " | ".join(COLUMNS) + " |",
                  "|---|---:|" + "---:|" * len(COLUMNS)]
        for section in sorted(outcome["sections"]):
            counts = outcome["sections"][section]
            name = section_names.get(str(section), "")
            lines.append(f"| {section} {name} | {counts['cases']} | "
                         + " | ".join(str(counts[c]) for c in COLUMNS) + " |")
        lines.append(f"| **Total** | **{total['cases']}** | "
                     + " | ".join(f"**{total[c]}**" for c in COLUMNS) + " |")
        if outcome["informational"]:
            lines += ["", "INFORMATIONAL (the suite records what happened, with no verdict): "
                      + ", ".join(outcome["informational"]) + "."]
        slowest = sorted(outcome["durations"], reverse=True)[:3]
        if slowest:
            lines += ["", "Slowest cases: " + ", ".join(f"{c} ({ms} ms)" for ms, c in slowest) + "."]
    explained = [(o["direction"], c, why) for o in outcomes for c, why in o["non_strict"]]
    if explained:
        lines += ["", "## NON-STRICT cases", "", "| Direction | Case | Why it is acceptable |", "|---|---|---|"]
        lines += [f"| {d} | {c} | {why} |" for d, c, why in explained]
    problems = []
    for outcome in outcomes:
        d = outcome["direction"]
        missing = [c for c, r in outcome["failed"] if r.get("behavior") == "MISSING"]
        if missing:
            problems.append(f"{d}: {len(missing)} cases missing from the report: {' '.join(missing)}")
        problems += [f"{d} {c}: {r.get('behavior')}/{r.get('behaviorClose')}: {r.get('result')}"
                     f" (close: {r.get('resultClose')}; remote close code {r.get('remoteCloseCode')})"
                     for c, r in outcome["failed"] if c not in missing]
        problems += [f"{d} {c}: NON-STRICT without an entry in non-strict.txt" for c in outcome["unexplained"]]
        problems += outcome["errors"]
    problems += notes
    if problems:
        lines += ["", "## Problems", ""] + [f"- {p}" for p in problems]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--expected", required=True, help="JSON with the case ids and section names")
    parser.add_argument("--servers", help="index.json of the fuzzingclient run (our server)")
    parser.add_argument("--clients", help="index.json of the fuzzingserver run (our client)")
    parser.add_argument("--allow", required=True, help="NON-STRICT allow-list")
    parser.add_argument("--summary", help="Markdown file to write")
    parser.add_argument("--versions", help="output of wstest -a")
    parser.add_argument("--repo", default=".")
    parser.add_argument("--server-seconds", default="0")
    parser.add_argument("--client-seconds", default="0")
    parser.add_argument("--note", action="append", default=[], help="a run problem; any makes the run fail")
    args = parser.parse_args()

    with open(args.expected, encoding="utf-8") as f:
        spec = json.load(f)
    expected = sorted(spec["cases"], key=case_key)
    args.patterns = spec.get("patterns")
    if not expected:
        sys.exit("check_reports: no cases expected; refusing to report an empty run")
    allowed, allow_errors = read_allow_list(args.allow)

    outcomes = []
    if args.servers:
        outcomes.append(judge("server", args.servers, expected, allowed))
    if args.clients:
        outcomes.append(judge("client", args.clients, expected, allowed))
    if not outcomes:
        sys.exit("check_reports: give --servers and/or --clients")

    passed = failed = 0
    for outcome in outcomes:
        d = outcome["direction"]
        total = Counter()
        for counts in outcome["sections"].values():
            total.update(counts)
        bad = total["Failed"] + len(outcome["unexplained"])
        failed += bad
        passed += total["cases"] - bad
        print(f"{d}: {total['cases']} cases: " + ", ".join(f"{c} {total[c]}" for c in COLUMNS if total[c]))
        missing = [c for c, details in outcome["failed"] if details.get("behavior") == "MISSING"]
        if missing:
            print(f"  MISSING from the {d} report ({len(missing)} cases): " + " ".join(missing))
        for case_id, details in outcome["failed"]:
            if case_id not in missing:
                print(f"  FAILED {d} {case_id}: " + json.dumps(details, ensure_ascii=False))
        for case_id in outcome["unexplained"]:
            print(f"  NON-STRICT {d} {case_id} is not explained in {args.allow}")
        for case_id in outcome["stale"]:
            print(f"  note: {d} {case_id} is listed in {os.path.basename(args.allow)} but was not NON-STRICT")
        for error in outcome["errors"]:
            print(f"  error: {error}")
    notes = list(args.note) + allow_errors + [e for o in outcomes for e in o["errors"]]
    for note in args.note + allow_errors:
        print(f"error: {note}")

    if args.summary:
        os.makedirs(os.path.dirname(os.path.abspath(args.summary)), exist_ok=True)
        with open(args.summary, "w", encoding="utf-8") as f:
            f.write(markdown(args, outcomes, expected, spec.get("sections", {}), passed, failed,
                             list(args.note) + allow_errors))
        print(f"summary written to {args.summary}")
    if notes:
        # a broken run (a crash, a timeout, a bad allow-list) must never read as all-green
        print(f"autobahn: {len(notes)} run problem(s), counted as failures below")
        failed += len(notes)
    print(f"autobahn: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
