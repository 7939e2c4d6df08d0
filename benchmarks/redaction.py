"""Redaction benchmark: recall on secret-scanner test data, false positives, throughput, and linear time.

Four measurements of `bot.core.redaction.redact`:

* **recall**, per family and overall, on the true positives of the peer scanners' test data (gitleaks and
  detect-secrets, prepared in `<repo>/../shared/peer-data/secrets/`; read its `meta` key). Each sample is
  embedded in a Slack-style message, once as typed and once Slack-escaped (`&amp;`, `&lt;`, `&gt;`). A sample
  counts as caught only when none of its secret values, nor any 8-character chunk of one, is still readable
  (chunks that also occur in the text around the secret, such as its key name, do not count);
* **false positives**: the fraction of the negatives altered at all, over the negatives that carry no
  secret-named key (`password=`, `api_key:` ...; those are reported apart, as redacting them is by design);
* **throughput** in MB/s on a generated chat corpus of a few MB (prose, code, logs, URLs, uuids, hashes, a
  few secrets), message by message as capture calls it;
* **linear time**: adversarial near-matches at 5 sizes up to `--linear-kb` (1 MB); the fitted exponent must stay near 1.

Times are the process's CPU time (the machine may be shared). Run:
`uv run python benchmarks/redaction.py [--data DIR] [--corpus-mb 4] [--linear-kb 1000] [--show-misses N]`
(quick: `--corpus-mb 1 --linear-kb 200`). Exits 1 when
a target (recall >= 98%, false positives <= 2%, >= 10 MB/s, every exponent < 1.3) is missed, 2 without data.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bot.core.redaction import redact  # noqa: E402

DEFAULT_DATA = (REPO / ".." / "shared" / "peer-data" / "secrets", Path("/work/shared/peer-data/secrets"))
CAP_SECONDS = 10.0
TARGETS = {"recall": 0.98, "fp": 0.02, "mbps": 10.0, "exponent": 1.3}

# Independent of the redactor on purpose: a negative "carries a secret-named key" when such a name is assigned.
SECRET_NAMED_KEY = re.compile(
    r"(?i)(?:pass(?:word|wd)?|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|credential|auth|private[_-]?key|[_.-]key\b)"
    r"[\w.\-\"']{0,30}\s*(?:[:=<>?.]{1,3}|,\s*[\"'])"
)


def slack_escape(text: str) -> str:
    """`text` as Slack delivers it in message events."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def embed(sample: str, escaped: bool) -> str:
    body = f"hey can you check why this fails?\n```{sample}```\nthanks!"
    return slack_escape(body) if escaped else body


_PLACEHOLDER = re.compile(r"\[REDACTED:[a-z_]+\]")


def leaked(secret: str, original: str, redacted: str) -> bool:
    """Whether `secret`, or an 8-character chunk of it not found elsewhere in `original`, is in `redacted`.

    Placeholders do not count: "[REDACTED:duffel_token]" shows no part of "duffel_test_…".
    """
    redacted = _PLACEHOLDER.sub("\0", redacted)
    if secret in redacted:
        return True
    context = original.replace(secret, "\0")
    return any(
        (chunk := secret[i : i + 8]) in redacted and chunk not in context for i in range(max(0, len(secret) - 7))
    )


def load(data: Path) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for name in ("gitleaks.json", "detect-secrets.json"):
        doc = json.loads((data / name).read_text())
        for kind in ("tp", "fp"):
            for row in doc[kind]:
                records.append({**row, "kind": kind, "file": name})
    return records


def recall(records: Iterable[dict[str, Any]], show: int) -> tuple[float, int, int]:
    per_family: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    misses: list[str] = []
    for row in records:
        if row["kind"] != "tp" or row.get("scored", True) is False:
            continue
        text = row.get("t", row["s"][0])
        for escaped in (False, True):
            message = embed(text, escaped)
            out = redact(message, contacts=False)
            secrets = [slack_escape(s) for s in row["s"]] if escaped else row["s"]
            caught = not any(leaked(s, message, out) for s in secrets)
            per_family[row["f"]][0] += caught
            per_family[row["f"]][1] += 1
            if not caught and len(misses) < show:
                misses.append(f"  MISS {row['f']} / {row['r']} / {row['v']} / escaped={escaped}:\n    {out[:400]!r}")
    caught = sum(c for c, _ in per_family.values())
    total = sum(t for _, t in per_family.values())
    print("recall per family (caught / scored samples, each as typed and Slack-escaped):")
    for family in sorted(per_family, key=lambda f: (per_family[f][0] / per_family[f][1], f)):
        c, t = per_family[family]
        print(f"  {family:40s} {c:4d}/{t:<4d} {c / t:7.1%}")
    print("\n".join(misses))
    print(f"RECALL overall: {caught}/{total} = {caught / total:.2%}")
    return caught / total, caught, total


def false_positives(records: Iterable[dict[str, Any]], show: int) -> float:
    plain = [0, 0]
    keyed = [0, 0]
    shown = 0
    for row in records:
        if row["kind"] != "fp":
            continue
        bucket = keyed if SECRET_NAMED_KEY.search(row["t"]) else plain
        altered = False
        for escaped in (False, True):
            message = embed(row["t"], escaped)
            out = redact(message, contacts=False)
            if out != message:
                altered = True
                if bucket is plain and shown < show:
                    shown += 1
                    print(f"  FP {row['f']} / {row['r']}: {out[:300]!r}")
        bucket[0] += altered
        bucket[1] += 1
    rate = plain[0] / plain[1]
    print(f"FALSE POSITIVES (negatives without a secret-named key, altered): {plain[0]}/{plain[1]} = {rate:.2%}")
    print(f"  negatives with a secret-named key, altered (by design, not scored): {keyed[0]}/{keyed[1]}")
    return rate


# --- throughput on chat text ------------------------------------------------------------------------------

_WORDS = (
    "the a we it this that deploy build test fails again after merge please check logs staging prod api token "
    "secret key password config retry timeout error null undefined works fine thanks looks like cache flaky "
    "model prompt eval grader rubric answer wrong hallucinated customer refund order invoice pipeline job"
).split()


def _sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(5, 25))).capitalize() + rng.choice(".?!")


def _hexs(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def _b64(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") for _ in range(n))


def _uuid(rng: random.Random) -> str:
    h = _hexs(rng, 32)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _message(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.45:
        return " ".join(_sentence(rng) for _ in range(rng.randint(1, 6)))
    if kind < 0.6:
        return (
            f"{_sentence(rng)} see https://github.com/acme/app/commit/{_hexs(rng, 40)} and "
            f"<https://app.example.com/orders/{_uuid(rng)}?page=2&amp;sort=desc|order> "
            f"(image https://cdn.example.com/img/{_hexs(rng, 64)}.png)"
        )
    if kind < 0.8:
        lines = [
            "```",
            "def handler(event, context):",
            f"    request_id = \"{_uuid(rng)}\"",
            f"    digest = hashlib.sha256(body).hexdigest()  # {_hexs(rng, 64)}",
            "    if response.status_code != 200:",
            "        raise RuntimeError(f\"bad status {response.status_code}\")",
            f"    max_tokens = {rng.randint(100, 4000)}",
            "    return {\"ok\": True, \"items\": [x for x in items if x]}",
            "```",
        ]
        return f"{_sentence(rng)}\n" + "\n".join(lines)
    if kind < 0.97:
        return "\n".join(
            f"2024-06-{rng.randint(10, 28)}T12:{rng.randint(10, 59)}:00Z INFO worker[{rng.randint(1, 99)}] "
            f"job={_uuid(rng)} sha={_hexs(rng, 12)} took={rng.random():.3f}s status=ok blob={_b64(rng, 24)}"
            for _ in range(rng.randint(2, 8))
        )
    secret = rng.choice(
        [
            "xoxb-" + "2400000000001-2400000000002-" + _b64(rng, 24).replace("+", "a").replace("/", "b"),
            "ghp_" + _b64(rng, 36).replace("+", "a").replace("/", "b"),
            f"password={_b64(rng, 12)}",
            "AKIA" + "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16)),
        ]
    )
    return f"oops I pasted {secret} in the channel, rotating it now"


def chat_corpus(megabytes: float, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    messages: list[str] = []
    size = 0
    while size < megabytes * 1_000_000:
        message = _message(rng)
        messages.append(message)
        size += len(message.encode())
    return messages


def throughput(megabytes: float) -> float:
    messages = chat_corpus(megabytes)
    size = sum(len(m.encode()) for m in messages)
    best = wall = math.inf
    for _ in range(3):
        # CPU time of this process: the machine is shared, and other people's work must not count as ours.
        start, started = time.process_time(), time.perf_counter()
        for message in messages:
            redact(message)
        best = min(best, time.process_time() - start)
        wall = min(wall, time.perf_counter() - started)
    mbps = size / best / 1e6
    print(
        f"THROUGHPUT: {size / 1e6:.1f} MB of chat in {len(messages)} messages, best of 3 (CPU time): "
        f"{best:.2f}s = {mbps:.1f} MB/s (wall clock {size / wall / 1e6:.1f} MB/s)"
    )
    return mbps


# --- linear time on adversarial input ---------------------------------------------------------------------

ADVERSARIAL: dict[str, Callable[[int], str]] = {
    "password=password=...": lambda n: "password=" * (n // 9),
    "password: 'x... unclosed": lambda n: "password: '" + "x" * (n - 11),
    "key names, no value": lambda n: "api_key secret_token password " * (n // 31),
    "BEGIN PRIVATE KEY x n": lambda n: "-----BEGIN RSA PRIVATE KEY-----\n" * (n // 32),
    "url://user:pass no host": lambda n: "https://" + "u:p" * (n // 3),
    "url with many @": lambda n: "https://u:" + "@" * (n - 10),
    "eyJ dots": lambda n: "eyJ" + "a." * (n // 2),
    "Bearer Bearer": lambda n: "Authorization: Bearer " * (n // 22),
    "xoxb- dashes": lambda n: "xoxb-" + "1-" * (n // 2),
    "long base64 run": lambda n: "Zm9v" * (n // 4),
    "hex run": lambda n: "deadbeef" * (n // 8),
    "email-like": lambda n: "a." * (n // 2) + "@",
    "digits and dashes": lambda n: "415-555-" * (n // 8),
    "&amp; chains": lambda n: "password=a" + "&amp;" * (n // 5),
    "rejected keys": lambda n: "token_count=" * (n // 12),
    "quotes galore": lambda n: "\"secret\": \"" * (n // 11),
    "xml open tags": lambda n: "<password>" * (n // 10),
    "secret words, glued": lambda n: "passpwdsecrettokencredauthapiaccessprivatesonarkey" * (n // 50),
    "pw= pw= ...": lambda n: "pw= " * (n // 4),
    "one long word": lambda n: "ghp_" + "a1" * (n // 2),
    "digits, one run": lambda n: "1" * n,
    "digits and spaces": lambda n: "1 " * (n // 2),
    "+ ( digits": lambda n: "+(1" * (n // 3),
    "quotes and commas": lambda n: "\"a\", " * (n // 6),
    "== after quotes": lambda n: "\"x\" == " * (n // 8),
    "dates (8-digit stretches)": lambda n: "2024-06-12x" * (n // 11),
    "10-digit stretches": lambda n: "1234567890x" * (n // 11),
}


def linear_time(largest: int) -> float:
    sizes = tuple(largest // divisor for divisor in (32, 8, 4, 2, 1))
    worst = 0.0
    labels = " / ".join(f"{size // 1000} KB" for size in sizes)
    print(f"LINEAR TIME (seconds at {labels}; exponent of the fit, 1 = linear):")
    for name, build in ADVERSARIAL.items():
        times: list[float] = []
        for size in sizes:
            text = build(size)
            start = time.process_time()
            redact(text)
            times.append(max(time.process_time() - start, 1e-3))
            if times[-1] > CAP_SECONDS:  # far past linear already: the larger sizes would take minutes
                break
        exponent = math.log(times[-1] / times[0]) / math.log(sizes[len(times) - 1] / sizes[0]) if len(times) > 1 else 9.0
        worst = max(worst, exponent)
        cells = " ".join(f"{t:7.3f}" for t in times) + " " * 8 * (len(sizes) - len(times))
        note = f"  (stopped: > {CAP_SECONDS:.0f}s)" if len(times) < len(sizes) else ""
        print(f"  {name:28s} {cells}   exponent {exponent:4.2f}{note}")
    print(f"  worst exponent: {worst:.2f}")
    return worst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="folder holding gitleaks.json, detect-secrets.json")
    parser.add_argument("--corpus-mb", type=float, default=4.0)
    parser.add_argument("--show-misses", type=int, default=0, help="print up to N misses and false positives")
    parser.add_argument("--skip-timing", action="store_true")
    parser.add_argument("--linear-kb", type=int, default=1000, help="largest adversarial input, in KB (quick: 200)")
    args = parser.parse_args(argv)
    candidates = (args.data,) if args.data else DEFAULT_DATA
    data = next((d for d in candidates if (d / "gitleaks.json").is_file()), None)
    ok = True
    if data is None:
        print(f"no peer data in {', '.join(map(str, candidates))}: recall and false positives skipped")
    else:
        records = load(data)
        rate, _, _ = recall(records, args.show_misses)
        fp = false_positives(records, args.show_misses)
        ok = rate >= TARGETS["recall"] and fp <= TARGETS["fp"]
    if not args.skip_timing:
        ok = throughput(args.corpus_mb) >= TARGETS["mbps"] and ok
        ok = linear_time(args.linear_kb * 1000) < TARGETS["exponent"] and ok
    print("TARGETS MET" if ok else "TARGETS MISSED", {k: v for k, v in TARGETS.items()})
    if data is None:
        return 2
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
