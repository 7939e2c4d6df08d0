"""Noise: how many false regression alarms a nightly run raises, before and after confirmation by re-running.

A simulated corpus of `--cases` cases (default 1,000) runs once a night for `--nights` nights (default 30) at the
defaults (1 trial, `confirm_trials` 5): 90% of the cases always pass, `--flaky` (10%) pass at a rate drawn from
70–95%, and none of them changes, so every regression reported is a false alarm. `--drops` more cases (default 5,
among the stable ones) really drop from 100% to 20% half-way through, to show that confirmation still sees them.

The runs go through the real `Runner` and `bot.evals.rerun.rerun_flips` (the re-run policy of bot/evals/confirm.py,
references pooled by `pool_reference`), against an in-memory fake model: no database, no network. It prints, per
night, the flips that the old rule (any pass -> fail is a regression) reports, and the confirmed regressions, then
the totals and the extra model calls the re-runs cost.

Run: `uv run python benchmarks/noise.py [--cases 1000] [--nights 30] [--seed 7] [--repeats N]`; `--cases 100`
for a quick look; `--repeats 20` averages the false alarms over 20 seeds.
Targets: fewer than 1 false confirmed regression per 30 nights, at most 15% extra calls.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.core.usage import Usage  # noqa: E402
from bot.corpus.schema import Case  # noqa: E402
from bot.evals.confirm import Confirmation, ConfirmPolicy  # noqa: E402
from bot.evals.rerun import flip_direction, pool_reference, rerun_flips, tally_of  # noqa: E402
from bot.evals.runner import Runner  # noqa: E402
from bot.evals.stats import Tally  # noqa: E402
from bot.evals.targets import Reply  # noqa: E402

HISTORY_RUNS = 10


class NoisyModel:
    """Answers 'ok' with each case's pass rate on the current night, else 'no'; counts its calls."""

    label = "noise:model"

    def __init__(self, rates: dict[str, object], seed: int):
        self.rates = rates
        self.random = random.Random(seed)
        self.night = 0
        self.calls = 0

    def rate(self, case_id: str) -> float:
        rate = self.rates[case_id]
        return rate(self.night) if callable(rate) else float(rate)  # type: ignore[arg-type]

    async def generate(self, case: Case) -> Reply:
        self.calls += 1
        return Reply("ok" if self.random.random() < self.rate(case.id) else "no", 0.0, Usage(10, 5), None)

    async def aclose(self) -> None:
        return None


def make_case(index: int) -> Case:
    return Case.model_validate({
        "id": f"c{index:07d}", "title": f"case {index}", "status": "promoted",
        "source": {"kind": "file", "flagged_at": datetime(2026, 1, 1, tzinfo=timezone.utc)},
        "conversation": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
        "expect": [{"equals": "ok"}],
    })


async def simulate(args: argparse.Namespace, *, quiet: bool = False) -> tuple[int, int, float, int]:
    """One simulation; (false alarms before, false confirmed after, extra calls fraction, real drops confirmed)."""
    say = (lambda *a, **k: None) if quiet else print
    rng = random.Random(args.seed)
    cases = [make_case(i) for i in range(args.cases)]
    flaky = {c.id for c in rng.sample(cases, round(args.cases * args.flaky))}
    stable = [c.id for c in cases if c.id not in flaky]
    drops = set(rng.sample(stable, min(args.drops, len(stable))))
    half = args.nights // 2
    rates: dict[str, object] = {}
    for case in cases:
        if case.id in flaky:
            rates[case.id] = rng.uniform(0.70, 0.95)
        elif case.id in drops:
            rates[case.id] = lambda night: 1.0 if night < half else 0.2
        else:
            rates[case.id] = 1.0
    model = NoisyModel(rates, args.seed)
    policy = ConfirmPolicy()
    history: dict[str, list[tuple[Tally, bool, str]]] = {c.id: [] for c in cases}  # oldest first
    pending: dict[str, Confirmation] = {}  # last night's unconfirmed regressions
    scheduled_calls = rerun_calls = 0
    false_before = false_after = 0
    caught: dict[str, int] = {}
    say(f"{args.cases} cases ({len(flaky)} flaky at 70-95%, {len(drops)} dropping 100%->20% at night {half + 1}), "
          f"{args.nights} nights, 1 trial, confirm_trials {policy.trials}")
    say("night  flips(old rule: regressions)  false after  true confirmed  extra calls")
    for night in range(args.nights):
        model.night = night
        runner = Runner(model, judge=None, trials=1, concurrency=64)
        before_calls = model.calls
        outcomes = await runner.run(cases)
        scheduled_calls += model.calls - before_calls
        statuses = {cid: h[-1][2] for cid, h in history.items() if h}
        references = {cid: pool_reference((t, r) for t, r, _ in reversed(h[-HISTORY_RUNS:])) for cid, h in history.items() if h}
        flips = [o.case.id for o in outcomes if flip_direction(statuses.get(o.case.id), o.status) == "regression"]
        mid = model.calls
        outcomes, confirmations = await rerun_flips(runner, outcomes, baseline_status=statuses, references=references,
                                                    policy=policy, pending=pending)
        pending = {cid: c for cid, c in confirmations.items() if c.direction == "regression" and c.decision == "unconfirmed"}
        rerun_calls += model.calls - mid
        confirmed = [cid for cid, c in confirmations.items() if c.direction == "regression" and c.decision == "confirmed"]
        wrong = [cid for cid in confirmed if cid not in drops or night < half]
        right = [cid for cid in confirmed if cid in drops and night >= half]
        for cid in right:
            caught.setdefault(cid, night)
        old_false = [cid for cid in flips if cid not in drops or night < half]
        false_before += len(old_false)
        false_after += len(wrong)
        for outcome in outcomes:
            history[outcome.case.id].append((tally_of(outcome), len(outcome.trials) > 1, outcome.status))
        say(f"{night + 1:>5}  {len(flips):>5} ({len(old_false)} false)  {len(wrong):>24}  {len(right):>14}  "
              f"{model.calls - mid:>11}")
    extra = rerun_calls / scheduled_calls
    say()
    say(f"false regression alarms: before confirmation {false_before} in {args.nights} nights "
          f"({false_before / args.nights:.1f} a night); after {false_after} ({false_after / args.nights:.2f} a night)")
    say(f"real drops confirmed: {len(caught)} of {len(drops)}"
          + (f", nights after the drop: {sorted(n - half for n in caught.values())}" if caught else ""))
    say(f"model calls: {scheduled_calls} scheduled + {rerun_calls} re-run = {extra:.1%} extra")
    return false_before, false_after, extra, len(caught)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--nights", type=int, default=30)
    parser.add_argument("--flaky", type=float, default=0.10, help="fraction of flaky cases")
    parser.add_argument("--drops", type=int, default=5, help="cases that really drop from 100%% to 20%%")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeats", type=int, default=1, help="also simulate seeds seed+1..seed+N-1 and print the means")
    args = parser.parse_args()
    results = [asyncio.run(simulate(args))]
    for offset in range(1, args.repeats):
        results.append(asyncio.run(simulate(argparse.Namespace(**{**vars(args), "seed": args.seed + offset}), quiet=True)))
    n = len(results)
    false_after = sum(r[1] for r in results) / n * 30 / args.nights
    extra = max(r[2] for r in results)
    if n > 1:
        print(f"\nover {n} seeds: false alarms before {sum(r[0] for r in results) / n:.1f} per {args.nights} nights, "
              f"false confirmed after {false_after:.2f} per 30 nights (per seed: {[r[1] for r in results]}), "
              f"extra calls at most {extra:.1%}, real drops confirmed {sum(r[3] for r in results)} of {n * args.drops}")
    ok = false_after < 1 and extra <= 0.15
    print("targets (< 1 false confirmed per 30 nights, <= 15% extra calls):", "met" if ok else "NOT met")
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
