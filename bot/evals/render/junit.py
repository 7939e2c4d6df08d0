"""JUnit XML of a run: one testcase per case; a failure or error carries the grader messages.

CI systems (GitHub Actions, GitLab, Jenkins) render this format. A flaky case that still passes its threshold
is a passing testcase with its pass rate in `system-out`. A failure's `type` is `regression` (confirmed by
re-running), `unconfirmed-flip` (it passed in the baseline, the re-run did not confirm the drop) or `fail`; a
quarantined case that fails or errors is `skipped` (it never fails the gate), with its failure in the message.
A run made with `--against REF` has REF's result of each case in its `system-out` (the second column).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from bot.core.redaction import redact
from bot.evals.compare import Comparison

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text: str) -> str:
    """Drop the characters XML 1.0 cannot carry (model output may contain them), and redact secrets."""
    return _NOT_XML.sub("\ufffd", redact(text, contacts=False))


def _first_line(text: str | None, fallback: str) -> str:
    lines = (text or "").splitlines()
    return _clean(lines[0][:500]) if lines else fallback


def junit_xml(comparison: Comparison) -> str:
    """The run's cases as a JUnit XML document (UTF-8 text with an XML declaration)."""
    run = comparison.run
    seconds = (run.finished_at - run.started_at).total_seconds() if run.finished_at else 0.0
    suites = ET.Element("testsuites", name="evalbot", tests=str(len(comparison.cases)))
    suite = ET.SubElement(
        suites, "testsuite", name=f"evalbot run {run.id}", tests=str(len(comparison.cases)),
        failures=str(sum(c.status == "fail" and not c.quarantined for c in comparison.cases)),
        errors=str(sum(c.status == "error" and not c.quarantined for c in comparison.cases)),
        skipped=str(sum(c.status != "pass" and c.quarantined for c in comparison.cases)), time=f"{seconds:.3f}",
        timestamp=run.started_at.replace(tzinfo=None).isoformat(timespec="seconds"),
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in (("run_id", run.id), ("target", run.target), ("corpus_commit", run.corpus_commit),
                        ("config_fingerprint", run.config_fingerprint), ("trials", run.trials),
                        ("baseline_run_id", comparison.baseline.id if comparison.baseline else None),
                        ("against_ref", comparison.against.ref if comparison.against else None),
                        ("against_commit", comparison.against.commit if comparison.against else None)):
        if value is not None:
            ET.SubElement(properties, "property", name=name, value=str(value))
    regressed = {c.case_id for c in comparison.regressions}
    doubted = {c.case_id for c in comparison.unconfirmed}
    for case in comparison.cases:
        testcase = ET.SubElement(suite, "testcase", classname="evalbot.cases", name=_clean(f"{case.case_id}: {case.title}"), time="0")
        if case.status in ("fail", "error") and case.quarantined:
            ET.SubElement(testcase, "skipped", message=_clean(f"quarantined; {case.status}: {_first_line(case.failure, case.status)}"))
        elif case.status in ("fail", "error"):
            tag = "failure" if case.status == "fail" else "error"
            kind = "regression" if case.case_id in regressed else "unconfirmed-flip" if case.case_id in doubted else case.status
            element = ET.SubElement(testcase, tag, message=_first_line(case.failure, case.status), type=kind)
            element.text = _clean(case.failure or "")
        low, high = case.interval
        out = [f"pass rate {case.pass_rate:.0%} over {case.trials} trial(s) (95% CI {low * 100:.0f}–{high * 100:.0f}%)"]
        if case.confirmation is not None:
            c = case.confirmation
            out.append(f"{c.decision} {c.direction}: {c.current.passed}/{c.current.total} now against "
                       f"{c.reference.passed}/{c.reference.total} before (p {c.p_value:.2g}, {c.rerun} re-run trial(s))")
        if case.flaky:
            out.append("flaky: trials both passed and failed")
        if case.baseline_status:
            out.append(f"baseline: {case.baseline_status}")
        if comparison.against is not None:
            there = comparison.against.cases.get(case.case_id, {})
            out.append(f"at {comparison.against.ref}: {there.get('status', 'not run')} "
                       f"({float(there.get('pass_rate') or 0):.0%} over {there.get('trials', 0)} trial(s))")
        if case.permalink:
            out.append(case.permalink)
        ET.SubElement(testcase, "system-out").text = "\n".join(out)
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
