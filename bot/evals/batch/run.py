"""Driving a batch run (`[run] mode = "batch"`): its model calls through the Message Batches API, at half price.

Two phases, because the judge grades what the target replied:
1. target: one request per case x trial (custom_id `<case>-<trial>-t`). A target that is not `anthropic` is
   called synchronously instead (the Batches API runs Claude models only). Every deterministic expectation is then
   graded and the trials are saved as rows (status `pending` while rubric verdicts are owed).
2. judge: one request per rubric expectation of a trial that got a reply (`<case>-<trial>-j<index>`). Then the run
   is finished: trial and case statuses, tokens, cost at batch price and `cost_saved_usd`.
A request that errored, expired or was canceled makes its trial an `error`, never a `fail`.

Resuming after a restart: each batch id is stored in `EvalRun.batch_ids` (`target:<id>` / `judge:<id>`) the
moment the batch exists, the run's case ids and the usage so far in `EvalRun.target` (`records.BATCH_STATE`),
the trials after phase 1 as rows. `bot.evals.batch.resume.resume_batch_runs(runtime)` finishes every `running`
run with batch ids and creates no batch again (only requests that no stored batch holds are sent). One process
drives a run at a time: it holds the JobClaim (`eval-batch`, <run id>) and refreshes it between polls; another
process takes the run over only when that claim has not been refreshed for `take_over_after`.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import insert
from sqlalchemy.engine import Engine

from bot.core.clock import utcnow
from bot.core.errors import CallFailed, ConfigError, RunTakenOverError
from bot.core.llm import LLM, message_text
from bot.core.redaction_exits import redact_payload, redact_text
from bot.core.usage import Usage, UsageMeter
from bot.corpus.schema import Case, Rubric
from bot.evals import records
from bot.evals.batch.api import Answer, Batches, PollPolicy, Sleep, custom_id
from bot.evals.compare import resolve_baseline
from bot.evals.graders import Verdict, grade_deterministic, is_deterministic
from bot.evals.judge import BatchGrader, Grader, parse_verdict
from bot.evals.pool import bounded
from bot.evals.runner import Progress, TrialOutcome, summarize, trial_status
from bot.evals.targets import AnthropicModelTarget, Target
from bot.runtime import Runtime
from bot.store import claims
from bot.store.tables import JobClaim, TrialResult, session_scope

log = logging.getLogger(__name__)
T = TypeVar("T")

TARGET, JUDGE = "target", "judge"
PENDING = "pending"  # TrialResult.status (and a verdict's marker) while the judge's verdict is owed
CLAIM_JOB = "eval-batch"
TAKE_OVER_AFTER = timedelta(minutes=5)  # a claim not refreshed for this long belongs to a process that stopped
HEARTBEAT_EVERY = 15.0  # seconds between refreshes of the claim (polls come at most 60 s apart)


class Claim:
    """This process's right to drive one batch run: a JobClaim row, refreshed while the run's batches go on."""

    def __init__(self, engine: Engine, run_id: int, holder: str):
        self.engine = engine
        self.run_id = run_id
        self.holder = holder
        self.refreshed = 0.0

    def take(self, *, take_over_after: timedelta) -> bool:
        """Claim the run; True unless another holder refreshed its claim within `take_over_after`."""
        # claimed_at has whole seconds: "after 0 s" must also take a claim made earlier in this very second
        before = utcnow() - take_over_after if take_over_after > timedelta(0) else utcnow() + timedelta(seconds=1)
        with session_scope(self.engine) as session:
            taken = claims.claim(session, job=CLAIM_JOB, slot=str(self.run_id), holder=self.holder,
                               take_over_before=before)
        self.refreshed = time.monotonic()
        return taken

    def held_at(self) -> datetime | None:
        """When the current holder last refreshed the claim (None: nobody holds it)."""
        with session_scope(self.engine) as session:
            row = session.get(JobClaim, (CLAIM_JOB, str(self.run_id)))
            return row.claimed_at if row else None

    def refresh(self) -> None:
        """Refresh the claim (at most every HEARTBEAT_EVERY seconds); RunTakenOverError if it was taken over."""
        if time.monotonic() - self.refreshed < HEARTBEAT_EVERY:
            return
        with session_scope(self.engine) as session:
            held = claims.refresh(session, job=CLAIM_JOB, slot=str(self.run_id), holder=self.holder)
        if not held:
            raise RunTakenOverError(f"batch run {self.run_id} was taken over by another process")
        self.refreshed = time.monotonic()

    def release(self) -> None:
        """Give the claim up (idempotent)."""
        with session_scope(self.engine) as session:
            claims.release(session, job=CLAIM_JOB, slot=str(self.run_id), holder=self.holder)


def holder_name() -> str:
    """Who drives a batch run: host, process id and a random suffix."""
    return f"{claims.PROCESS}:{uuid.uuid4().hex[:8]}"


@dataclass
class _Trial:
    """One case x trial on its way through the phases."""

    case: Case
    trial: int
    output: str | None = None
    error: str | None = None
    latency_ms: float | None = None
    usage: Usage = Usage()
    verdicts: list[Verdict | None] = field(default_factory=list)  # None: the judge's verdict is owed

    @property
    def owed(self) -> list[int]:
        return [i for i, verdict in enumerate(self.verdicts) if verdict is None] if self.error is None else []

    def outcome(self) -> TrialOutcome:
        if self.error is not None:
            return TrialOutcome(self.case.id, self.trial, "error", latency_ms=self.latency_ms, usage=self.usage,
                                error=self.error)
        verdicts = [v or Verdict("rubric", False, "no verdict came back from the judge", error=True) for v in self.verdicts]
        status = trial_status(verdicts)
        return TrialOutcome(self.case.id, self.trial, status, self.output, verdicts, self.latency_ms, self.usage)

    def row(self, run_id: int) -> dict[str, Any]:
        owed = {"kind": "rubric", "passed": False, "message": "awaiting the judge (batch)", "error": False, PENDING: True}
        return {
            "run_id": run_id, "case_id": self.case.id, "trial": self.trial,
            "status": PENDING if self.owed else self.outcome().status, "output": redact_text(self.output),
            "verdicts": redact_payload([owed if v is None else v.as_dict() for v in self.verdicts]),
            "latency_ms": self.latency_ms, "input_tokens": self.usage.input_tokens, "output_tokens": self.usage.output_tokens,
            "error": redact_text(self.error),
        }

    @classmethod
    def of_row(cls, row: TrialResult, case: Case) -> _Trial:
        verdicts = [None if v.get(PENDING) else Verdict.from_dict(v) for v in row.verdicts]
        return cls(case, row.trial, row.output, row.error, row.latency_ms, Usage(row.input_tokens, row.output_tokens),
                   verdicts)


def _rubric(case: Case, index: int) -> str | None:
    expectation = case.expect[index] if index < len(case.expect) else None
    return expectation.rubric if isinstance(expectation, Rubric) else None


class BatchRun:
    """Drives one batch run through its phases to its finished record, fresh or after a restart."""

    def __init__(self, rt: Runtime, run_id: int, *, cases: Sequence[Case], trials: int, target: Target | None,
                 judge: Grader | None, pass_threshold: float, concurrency: int, claim: Claim, progress: Progress | None = None,
                 poll: PollPolicy | None = None, sleep: Sleep | None = None, baseline_id: int | None = None):
        self.rt = rt
        self.run_id = run_id
        self.cases = list(cases)
        self.trials = trials
        self.target = target
        self.judge = judge  # a BatchGrader is batched; any other Grader (tests) is called synchronously
        self.pass_threshold = pass_threshold
        self.concurrency = concurrency
        self.claim = claim
        self.progress = progress
        self.poll = poll or PollPolicy()
        self.sleep = sleep or asyncio.sleep
        self.baseline_id = baseline_id
        self.meter = UsageMeter()  # synchronous calls: a target that is not anthropic, a judge that is not a BatchGrader
        self.batch_meter = UsageMeter()  # calls through the Message Batches API
        self.clients: list[Batches] = []
        self.done = 0

    # -- the phases

    async def drive(self) -> None:
        """Run what is left of the phases and finish the run; on failure mark it failed and cancel its batches."""
        try:
            trials = self._saved_trials()
            if trials is None:
                trials = await self._target_phase()
                self._grade(trials)
                self._save(trials)
            await self._judge_phase(trials)
            self._finish(trials)
        except RunTakenOverError:
            raise
        except BaseException as exc:
            with session_scope(self.rt.engine) as session:
                records.fail_run(session, self.run_id, error=f"{type(exc).__name__}: {exc}")
            for client in self.clients:  # nobody will read them: stop paying for them
                await client.cancel_in_flight()
            raise
        finally:
            self.claim.release()

    async def _target_phase(self) -> list[_Trial]:
        trials = [_Trial(case, n) for case in self.cases for n in range(self.trials)]
        if isinstance(self.target, AnthropicModelTarget):
            ids = [custom_id(t.case.id, t.trial, "t") for t in trials]
            requests = {cid: self.target.request(t.case) for cid, t in zip(ids, trials)}
            answers = await self._client(self.target.llm).run(TARGET, requests, self._known(TARGET))
            for cid, t in zip(ids, trials):
                self._take_reply(t, answers.get(cid), self.target.config.model)
        elif self.target is None:
            raise ConfigError(f"run {self.run_id} cannot get its replies: [target] in evalbot.toml is no longer the "
                              "anthropic target it started with")
        else:
            await bounded(trials, self._call_target, self.concurrency)
        return trials

    def _take_reply(self, trial: _Trial, answer: Answer | None, model: str) -> None:
        if answer is None or answer.message is None:
            why = answer.problem if answer else "its batch returned no result for this request"
            trial.error = f"no reply from the target: {why}"
            return
        trial.output, trial.usage = message_text(answer.message), Usage.of(answer.message)
        self.batch_meter.add(model, trial.usage)

    async def _call_target(self, trial: _Trial) -> None:
        assert self.target is not None
        try:
            reply = await self.target.generate(trial.case)
        except CallFailed as exc:
            trial.error = f"no reply from the target: {exc}"
            return
        trial.output, trial.latency_ms, trial.usage = reply.text, reply.latency_ms, reply.usage
        if reply.model:
            self.meter.add(reply.model, reply.usage)

    def _grade(self, trials: list[_Trial]) -> None:
        for trial in trials:
            if trial.error is not None or trial.output is None:
                continue
            for expectation in trial.case.expect:
                if is_deterministic(expectation):
                    trial.verdicts.append(grade_deterministic(expectation, trial.output))
                elif self.judge is None:
                    trial.verdicts.append(Verdict("rubric", False, "no judge is configured", error=True))
                else:
                    trial.verdicts.append(None)
        self._advance(sum(1 for t in trials if not t.owed))

    def _save(self, trials: list[_Trial]) -> None:
        with session_scope(self.rt.engine) as session:
            run = records.get_run(session, self.run_id)
            assert run is not None
            session.execute(insert(TrialResult), [t.row(self.run_id) for t in trials])
            records.set_batch_usage(session, run, {"sync": self.meter.dump(), "batch": self.batch_meter.dump()})

    def _saved_trials(self) -> list[_Trial] | None:
        """The trials saved after phase 1 (a resumed run), with the usage metered until then; None before."""
        with session_scope(self.rt.engine) as session:
            run = records.get_run(session, self.run_id)
            assert run is not None
            rows = records.trial_results(session, self.run_id)
            usage = records.batch_state(run).get("usage") or {}
        if not rows:
            return None
        self.meter, self.batch_meter = UsageMeter.load(usage.get("sync")), UsageMeter.load(usage.get("batch"))
        by_id = {case.id: case for case in self.cases}
        return [_Trial.of_row(row, by_id[row.case_id]) for row in rows if row.case_id in by_id]

    async def _judge_phase(self, trials: list[_Trial]) -> None:
        owed = [(t, i) for t in trials for i in t.owed]
        if not owed:
            return
        if isinstance(self.judge, BatchGrader):  # a capability: a judge that can be batched is
            requests: dict[str, dict[str, Any]] = {}
            for trial, index in owed:
                rubric = _rubric(trial.case, index)
                if rubric is None:
                    trial.verdicts[index] = Verdict("rubric", False, "the case's expectations changed during the run",
                                                    error=True)
                else:
                    cid = custom_id(trial.case.id, trial.trial, f"j{index}")
                    requests[cid] = self.judge.request(rubric, trial.case.replay_turns, trial.output or "")
            answers = await self._client(self.judge.llm).run(JUDGE, requests, self._known(JUDGE))
            for trial, index in owed:
                cid = custom_id(trial.case.id, trial.trial, f"j{index}")
                if cid in requests:
                    trial.verdicts[index] = self._take_verdict(trial, index, answers.get(cid))
        else:
            await bounded(owed, self._judge_sync, self.concurrency)
        self._advance(len({(t.case.id, t.trial) for t, _ in owed}))

    @property
    def _grader(self) -> Grader:
        assert self.judge is not None, "a verdict is owed to the judge only when there is one"
        return self.judge

    def _take_verdict(self, trial: _Trial, index: int, answer: Answer | None) -> Verdict:
        if answer is None or answer.message is None:
            why = answer.problem if answer else "its batch returned no result for this request"
            return Verdict("rubric", False, f"the judge could not be asked: {why}", error=True)
        usage = Usage.of(answer.message)
        trial.usage = trial.usage + usage
        self.batch_meter.add(self._grader.model, usage)
        return parse_verdict(answer.message.get("content") or [], rubric=_rubric(trial.case, index) or "",
                             model=self._grader.model)

    async def _judge_sync(self, owed: tuple[_Trial, int]) -> None:
        trial, index = owed
        rubric = _rubric(trial.case, index) or ""
        judged = await self._grader.grade(rubric, trial.case.replay_turns, trial.output or "")
        trial.verdicts[index] = judged.verdict
        trial.usage = trial.usage + judged.usage
        if judged.usage != Usage():
            self.meter.add(self._grader.model, judged.usage)

    def _finish(self, trials: list[_Trial]) -> None:
        by_case: dict[str, list[TrialOutcome]] = {}
        for trial in sorted(trials, key=lambda t: t.trial):
            by_case.setdefault(trial.case.id, []).append(trial.outcome())
        outcomes = [summarize(case, by_case.get(case.id, []), pass_threshold=self.pass_threshold) for case in self.cases]
        with session_scope(self.rt.engine) as session:
            run = records.get_run(session, self.run_id)
            assert run is not None
            if run.status == "finished":
                raise RunTakenOverError(f"batch run {self.run_id} was finished by another process")
            if run.status != "running":  # e.g. marked failed as stale while its batches were still going
                log.warning("batch run %d was marked %s meanwhile; recording its results", self.run_id, run.status)
                run.error = None
            baseline = resolve_baseline(session, self.run_id, self.baseline_id)
            records.delete_trials(session, self.run_id)  # the pending rows of phase 1, replaced by the final ones
            records.finish_run(session, run, outcomes, meter=self.meter, batch_meter=self.batch_meter,
                               baseline_run_id=baseline.id if baseline else None)

    # -- plumbing

    def _client(self, llm: LLM) -> Batches:
        client = Batches(llm, record=self._record, poll=self.poll, sleep=self.sleep, heartbeat=self.claim.refresh)
        self.clients.append(client)
        return client

    def _record(self, kind: str, batch_id: str) -> None:
        with session_scope(self.rt.engine) as session:
            records.add_batch_id(session, self.run_id, f"{kind}:{batch_id}")

    def _known(self, kind: str) -> list[str]:
        """The ids of this run's batches of `kind` already created (a resumed run)."""
        with session_scope(self.rt.engine) as session:
            run = records.get_run(session, self.run_id)
            assert run is not None
            return [entry.partition(":")[2] for entry in run.batch_ids if entry.partition(":")[0] == kind]

    def _advance(self, trials: int) -> None:
        self.done += trials
        if self.progress is not None and trials:
            self.progress(self.done, len(self.cases) * self.trials)


def batch_notes(target: Target, judge: Grader | None) -> list[str]:
    """What a person should know about a batch run with this target and judge (run_eval's warnings)."""
    if isinstance(target, AnthropicModelTarget):
        return []
    judged = "the judge's calls go through batches" if isinstance(judge, BatchGrader) else "no call goes through a batch"
    return [f"[run] mode = 'batch': the {target.label} target is called synchronously (the Message Batches API "
            f"runs Claude models only); {judged}"]


async def run_batch(rt: Runtime, run_id: int, **options: Any) -> None:
    """Drive a new batch run (recorded by run_eval) to its finished record; `options` are BatchRun's."""
    claim = Claim(rt.engine, run_id, holder_name())
    claim.take(take_over_after=timedelta(0))
    await BatchRun(rt, run_id, claim=claim, **options).drive()
