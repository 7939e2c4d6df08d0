"""The normalised Slack message capture works on: who wrote it, its content as text, its files, and whether
it is conversation at all. The Slack edge (`bot.slack.reader`) builds these from whatever Slack sends, so
capture never reads subtypes, blocks, attachments or markup itself.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SharedFile:
    """A file shared in a message: its name, and where to download it (when Slack gave a URL)."""

    name: str
    url: str | None = None
    size: int = 0


@dataclass(frozen=True)
class Message:
    """One Slack message as capture sees it.

    `text` is the content as plain text with Markdown styles (mentions as @name, links as `label (url)`),
    read from the message's blocks, attachments or `text`, whichever carries it. `system` names what a system
    message is ("someone joined the channel") and is None for conversation; `deleted` marks tombstones.
    """

    ts: str
    text: str = ""
    thread_ts: str | None = None
    author_ids: frozenset[str] = frozenset()  # user id, bot id, bot profile id: what EVALBOT_ASSISTANT_IDS matches
    user: str | None = None
    bot_id: str | None = None
    is_bot: bool = False
    files: tuple[SharedFile, ...] = ()
    system: str | None = None
    deleted: bool = False

    @property
    def is_conversation(self) -> bool:
        """Whether the message belongs in a captured conversation (not a system message, not deleted)."""
        return self.system is None and not self.deleted

    def content(self, *, with_files: bool) -> str:
        """The text, and with `with_files` a line naming each attached file."""
        if not with_files:
            return self.text
        return self.text + "".join(f"\n[attached file: {f.name}]" for f in self.files)
