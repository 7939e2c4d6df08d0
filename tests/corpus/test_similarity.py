"""Near-duplicate detection: text normalisation, ranking, and the corpus lookup with its file cache."""

from __future__ import annotations

import os

import pytest

from bot.corpus.files import Corpus
from bot.corpus.gitrepo import SYSTEM
from bot.corpus.schema import Case, Turn
from bot.corpus.similarity import THRESHOLD, conversation_text, near_duplicates, normalise, rank
from tests.helpers import candidate

TENT = "tne841s8"


def turns(user: str, assistant: str) -> list[Turn]:
    return [Turn(role="user", content=user), Turn(role="assistant", content=assistant)]


def like(case: Case, case_id: str, **changes: str) -> Case:
    """A copy of `case` as a candidate with another id, its first two turns' text optionally replaced."""
    data = case.model_dump()
    data.update(id=case_id, status="candidate", expect=[], promoted_by=None, promoted_at=None)
    for index, key in enumerate(("user", "assistant")):
        if key in changes:
            data["conversation"][index]["content"] = changes[key]
    return Case.model_validate(data)


def write(corpus: Corpus, *cases: Case) -> None:
    with corpus.change(author=SYSTEM, message="test cases") as tx:
        for case in cases:
            tx.write(case)


def test_normalise_drops_case_punctuation_and_extra_space():
    assert normalise("  You have 90 DAYS!\n\nSee <our policy>. ") == "you have 90 days see our policy"


def test_conversation_text_is_role_tagged_and_keeps_the_end_of_long_threads():
    assert conversation_text(turns("Hi?", "Hello!")) == "user: hi assistant: hello"
    long = conversation_text([Turn(role="user", content="x " * 10_000), Turn(role="assistant", content="The end.")])
    assert len(long) == 6000 and long.endswith("assistant: the end")


@pytest.mark.parametrize(
    ("other", "similar"),
    [
        (turns("How long do I have to return my tent?", "You have 90 days."), True),
        (turns("How long do I have to return my stove?", "You have 90 days to return it."), True),
        (turns("How long is the warranty on my tent?", "The warranty is 2 years."), False),
        (turns("Do you sell backpacking stoves?", "Try another outdoor retailer."), False),
        (turns("You have 90 days.", "How long do I have to return my tent?"), False),  # roles matter
    ],
    ids=["same", "reworded", "other-question", "unrelated", "roles-swapped"],
)
def test_rank_finds_very_similar_conversations_only(other, similar):
    text = conversation_text(turns("How long do I have to return my tent?", "You have 90 days. See our policy."))
    found = rank(text, {"other": conversation_text(other)})
    assert bool(found) is similar
    if found:
        assert found[0][0] == "other" and THRESHOLD <= found[0][1] <= 1


def test_rank_orders_by_score_and_limits():
    others = {f"c{i}": "user: how long do i have to return my tent assistant: you have 90 days" + " ok" * i for i in range(6)}
    found = rank(others["c0"], others, limit=3)
    assert [key for key, _ in found] == ["c0", "c1", "c2"] and found[0][1] == 1.0


def test_near_duplicates_names_similar_cases_with_link_and_excludes_itself(corpus_dir):
    corpus = Corpus(corpus_dir)
    new = like(corpus.get(TENT), "new00001", user="Hi! I bought the Ridgeline 3 tent last month. How long can I return it?")
    write(corpus, new)
    found = near_duplicates(new, corpus)
    assert [(d.case_id, d.status, d.title) for d in found] == [(TENT, "promoted", "Refund answer invents a 90-day window")]
    assert found[0].permalink == "https://acme-outdoor.slack.com/archives/C07SUPPORT/p1763600000000100"
    assert 0.85 <= found[0].score < 1


def test_near_duplicates_is_empty_for_a_new_kind_of_failure(corpus_dir):
    corpus = Corpus(corpus_dir)
    assert near_duplicates(candidate(title="Tent question"), corpus) == []


def test_near_duplicates_follows_file_changes_and_skips_invalid_files(corpus_dir):
    corpus = Corpus(corpus_dir)
    probe = like(corpus.get(TENT), "probe001")
    assert [d.case_id for d in near_duplicates(probe, corpus)] == [TENT]
    edited = like(corpus.get(TENT), "other001", user="Where is my order?", assistant="It shipped yesterday.")
    twin = like(corpus.get(TENT), "twin0001")
    write(corpus, edited, twin)
    assert [d.case_id for d in near_duplicates(probe, corpus)] == [TENT, "twin0001"]
    path = corpus.path_for("twin0001", "candidate")
    path.write_text(path.read_text().replace("How long", "Where is my order? How long") + "colour: red\n")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # a different mtime even on coarse clocks
    assert [d.case_id for d in near_duplicates(probe, corpus)] == [TENT]  # invalid now: skipped, not an error
    path.unlink()
    assert [d.case_id for d in near_duplicates(probe, corpus)] == [TENT]


def test_a_second_lookup_on_a_large_corpus_reads_no_file_again(corpus_dir, monkeypatch):
    corpus = Corpus(corpus_dir)
    base = corpus.get(TENT)
    many = [like(base, f"bulk{i:04d}", user=f"Question number {i} about order AO-{i:06d} and its delivery window",
                 assistant=f"Order AO-{i:06d} ships in {i % 9 + 1} days from warehouse {i % 7}.") for i in range(300)]
    write(corpus, *many)
    near_duplicates(base, corpus)  # the first lookup reads every file

    def no_reads(*_args, **_kwargs):
        raise AssertionError("an unchanged file is served from the cache")

    monkeypatch.setattr(Corpus, "load", no_reads)
    assert [d.case_id for d in near_duplicates(base, corpus)] == []


def test_warm_reads_every_case_once(corpus_dir, monkeypatch):
    from bot.corpus.similarity import warm

    corpus = Corpus(corpus_dir)
    assert warm(corpus) == 7
    probe = like(corpus.get(TENT), "probe002")

    def no_reads(*_args, **_kwargs):
        raise AssertionError("a warmed cache reads no case file again")

    monkeypatch.setattr(Corpus, "load", no_reads)
    assert [d.case_id for d in near_duplicates(probe, corpus)] == [TENT]


def kept_cache(corpus_dir) -> list:
    return list((corpus_dir / ".git" / "evalbot").glob("similarity-*.json"))


def test_a_new_process_starts_from_the_texts_kept_in_the_git_folder(corpus_dir, monkeypatch):
    from bot.corpus import similarity

    corpus = Corpus(corpus_dir)
    assert similarity.warm(corpus) == 7 and len(kept_cache(corpus_dir)) == 1
    write(corpus, like(corpus.get(TENT), "twin0002"))
    monkeypatch.setattr(similarity, "_CACHE", similarity._TextCache())  # what a freshly started worker has
    read: list[str] = []
    load = Corpus.load

    def counting(self, case_id, status):
        read.append(case_id)
        return load(self, case_id, status)

    monkeypatch.setattr(Corpus, "load", counting)
    assert similarity.warm(corpus) == 8
    assert read == ["twin0002"]  # only the file written since the texts were kept
    assert [d.case_id for d in near_duplicates(like(corpus.get(TENT), "probe003"), corpus)] == [TENT, "twin0002"]


def test_a_damaged_kept_cache_only_costs_a_full_read(corpus_dir, monkeypatch):
    from bot.corpus import similarity

    corpus = Corpus(corpus_dir)
    similarity.warm(corpus)
    kept_cache(corpus_dir)[0].write_text('{"version": 1, "max_chars": 6000, "files": {"x": [1]}}')
    monkeypatch.setattr(similarity, "_CACHE", similarity._TextCache())
    assert similarity.warm(corpus) == 7
    assert [d.case_id for d in near_duplicates(like(corpus.get(TENT), "probe004"), corpus)] == [TENT]


def test_settled_folders_are_not_listed_again_until_a_file_is_written(corpus_dir, monkeypatch):
    from bot.corpus import similarity

    monkeypatch.setattr(similarity, "_SETTLE_NS", 0)
    corpus = Corpus(corpus_dir)
    probe = like(corpus.get(TENT), "probe005")
    assert [d.case_id for d in near_duplicates(probe, corpus)] == [TENT]
    scandir = os.scandir

    def no_listing(path):
        raise AssertionError("an unchanged folder is not listed again")

    monkeypatch.setattr(similarity.os, "scandir", no_listing)
    assert [d.case_id for d in near_duplicates(probe, corpus)] == [TENT]
    monkeypatch.setattr(similarity.os, "scandir", scandir)
    write(corpus, like(corpus.get(TENT), "twin0003"))  # an atomic rename: the folder's mtime moves
    assert [d.case_id for d in near_duplicates(probe, corpus)] == [TENT, "twin0003"]
