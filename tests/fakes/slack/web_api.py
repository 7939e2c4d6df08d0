"""The fake's Web API methods: one ``api_<method>`` per Slack method the bot calls, over the workspace state.

Each takes the request's parameters and returns the body without ``ok`` (or raises ``ApiError``); the HTTP side
(``http``) finds the method by name, checks the token and records the call.
"""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import Callable

from tests.fakes.slack.common import (
    APP_ID,
    BOT_ID,
    BOT_NAME,
    BOT_USER_ID,
    JSON,
    PERMALINK_BASE,
    TEAM_ID,
    ApiError,
    UploadedFile,
    as_bool,
    as_int,
    as_json,
    in_range,
    is_reply,
    paginate,
    require,
)
from tests.fakes.slack.workspace import Workspace


class WebApi(Workspace):
    """The workspace with its Web API methods; ``handler(method)`` finds one by Slack's method name."""

    def handler(self, method: str) -> Callable[[JSON], JSON]:
        found = getattr(self, "api_" + method.replace(".", "_"), None)
        if found is None:
            raise ApiError("unknown_method")
        return found

    # -- Web API methods (each returns the body without "ok")

    def api_auth_test(self, params: JSON) -> JSON:
        return {"url": f"{PERMALINK_BASE}/", "team": "Fake Team", "user": BOT_NAME, "team_id": TEAM_ID,
                "user_id": BOT_USER_ID, "bot_id": BOT_ID, "is_enterprise_install": False}  # fmt: skip

    def api_apps_connections_open(self, params: JSON) -> JSON:
        ticket = uuid.uuid4().hex
        self.tickets.add(ticket)
        return {"url": f"{self.http_base.replace('http://', 'ws://')}/link?ticket={ticket}&app_id={APP_ID}"}

    def api_conversations_replies(self, params: JSON) -> JSON:
        channel = self.channel(params.get("channel"))
        message = self.message(channel, require(params, "ts"), error="thread_not_found")
        thread = [message] if is_reply(message) else [message, *channel.replies(message["ts"])]
        page, cursor = paginate(thread, params.get("cursor"), as_int(params.get("limit"), 1000))
        return {"messages": copy.deepcopy(page), "has_more": bool(cursor), "response_metadata": {"next_cursor": cursor}}

    def api_conversations_history(self, params: JSON) -> JSON:
        channel = self.channel(params.get("channel"))
        inclusive = as_bool(params.get("inclusive"))
        newest_first = channel.top_level()[::-1]
        found = [m for m in newest_first if in_range(m["ts"], params.get("oldest"), params.get("latest"), inclusive)]
        page, cursor = paginate(found, params.get("cursor"), as_int(params.get("limit"), 100))
        return {"messages": copy.deepcopy(page), "has_more": bool(cursor), "pin_count": 0,
                "response_metadata": {"next_cursor": cursor}}  # fmt: skip

    def api_conversations_info(self, params: JSON) -> JSON:
        return {"channel": self.channel(params.get("channel"), member=False).info()}

    def api_conversations_join(self, params: JSON) -> JSON:
        channel = self.channel(params.get("channel"), member=False)
        body: JSON = {"warning": "already_in_channel"} if channel.is_member else {}
        channel.is_member = True
        return {**body, "channel": channel.info()}

    def api_chat_postMessage(self, params: JSON) -> JSON:
        channel = self.channel(require(params, "channel", "channel_not_found"))
        if not (params.get("text") or params.get("blocks") or params.get("attachments")):
            raise ApiError("no_text")
        message = self.add_message(channel, self.bot_message(params, self.next_ts()), params.get("thread_ts"))
        return {"channel": channel.id, "ts": message["ts"], "message": copy.deepcopy(message)}

    def api_chat_update(self, params: JSON) -> JSON:
        channel = self.channel(params.get("channel"))
        message = self.message(channel, params.get("ts"))
        if message.get("bot_id") != BOT_ID:
            raise ApiError("cant_update_message")
        message.update({k: v for k, v in self.bot_message(params, message["ts"]).items() if k in params})
        message["edited"] = {"user": BOT_USER_ID, "ts": self.next_ts()}
        return {"channel": channel.id, "ts": message["ts"], "text": message["text"], "message": copy.deepcopy(message)}

    def api_chat_postEphemeral(self, params: JSON) -> JSON:
        channel = self.channel(require(params, "channel", "channel_not_found"))
        user = require(params, "user", "user_not_found")
        if not (params.get("text") or params.get("blocks") or params.get("attachments")):
            raise ApiError("no_text")
        ts = self.next_ts()
        self.ephemerals.append({"channel": channel.id, "user": user, "message_ts": ts, "text": params.get("text"),
                                "blocks": as_json(params.get("blocks")), "thread_ts": params.get("thread_ts")})
        return {"message_ts": ts}

    def api_chat_getPermalink(self, params: JSON) -> JSON:
        channel = self.channel(params.get("channel"), member=False)
        message = self.message(channel, params.get("message_ts"))
        link = f"{PERMALINK_BASE}/archives/{channel.id}/p{message['ts'].replace('.', '')}"
        if is_reply(message):
            link += f"?thread_ts={message['thread_ts']}&cid={channel.id}"
        return {"channel": channel.id, "permalink": link}

    def api_users_info(self, params: JSON) -> JSON:
        user = self.users.get(params.get("user") or "")
        if user is None:
            raise ApiError("user_not_found")
        return {"user": copy.deepcopy(user)}

    def api_usergroups_users_list(self, params: JSON) -> JSON:
        users = self.usergroups.get(params.get("usergroup") or "")
        if users is None:
            raise ApiError("no_such_subteam")
        return {"users": list(users)}

    def api_views_open(self, params: JSON) -> JSON:
        require(params, "trigger_id")
        return {"view": self.store_view(params, view_id=self.next_id("V"), root_id=None)}

    def api_views_push(self, params: JSON) -> JSON:
        return self.api_views_open(params)

    def api_views_update(self, params: JSON) -> JSON:
        view_id = params.get("view_id") or next(
            (v["id"] for v in self.views.values() if v.get("external_id") == params.get("external_id")), None
        )
        current = self.views.get(view_id or "")
        if current is None:
            raise ApiError("not_found")
        if params.get("hash") and params["hash"] != current["hash"]:
            raise ApiError("hash_conflict")
        return {"view": self.store_view(params, view_id=current["id"], root_id=current["root_view_id"])}

    def store_view(self, params: JSON, *, view_id: str, root_id: str | None) -> JSON:
        view = as_json(params.get("view"))
        if not isinstance(view, dict) or "type" not in view:
            raise ApiError("invalid_arguments")
        stored = {
            "private_metadata": "", "callback_id": "", "external_id": "", "state": {"values": {}}, **view,
            "id": view_id, "team_id": TEAM_ID, "app_id": APP_ID, "bot_id": BOT_ID, "root_view_id": root_id or view_id,
            "previous_view_id": None, "hash": f"{int(time.time())}.{uuid.uuid4().hex[:8]}",
        }  # fmt: skip
        self.views[view_id] = stored
        return copy.deepcopy(stored)

    # -- App Home (issue 16): views.publish keeps each user's home view, as Slack shows it in their Home tab

    def api_views_publish(self, params: JSON) -> JSON:
        user_id = require(params, "user_id", "invalid_arguments")
        if user_id not in self.users:
            raise ApiError("user_not_found")
        view = as_json(params.get("view"))
        if not isinstance(view, dict) or view.get("type") != "home":
            raise ApiError("invalid_arguments")
        if len(view.get("blocks") or []) > 100:
            raise ApiError("invalid_blocks")
        current = self.home_views.get(user_id)
        if params.get("hash") and current and params["hash"] != current["hash"]:
            raise ApiError("hash_conflict")
        stored = self.store_view(params, view_id=current["id"] if current else self.next_id("V"), root_id=None)
        self.home_views[user_id] = stored
        return {"view": copy.deepcopy(stored)}

    def api_reactions_add(self, params: JSON) -> JSON:
        channel = self.channel(params.get("channel"))
        message = self.message(channel, params.get("timestamp"))
        name = require(params, "name", "invalid_name")
        reaction = next((r for r in message.setdefault("reactions", []) if r["name"] == name), None)
        if reaction is None:
            message["reactions"].append({"name": name, "users": [BOT_USER_ID], "count": 1})
        elif BOT_USER_ID in reaction["users"]:
            raise ApiError("already_reacted")
        else:
            reaction["users"].append(BOT_USER_ID)
            reaction["count"] += 1
        return {}

    def api_files_getUploadURLExternal(self, params: JSON) -> JSON:
        upload = UploadedFile(self.next_id("F"), require(params, "filename"), as_int(require(params, "length"), 0))
        self.files[upload.id] = upload
        return {"upload_url": f"{self.http_base}/upload/{upload.id}", "file_id": upload.id}

    def api_files_completeUploadExternal(self, params: JSON) -> JSON:
        entries = as_json(require(params, "files"))
        uploads = [self.files.get(entry.get("id", "")) for entry in entries]
        if not uploads or any(u is None or u.content is None for u in uploads):
            raise ApiError("file_not_found")
        channel_id = params.get("channel_id") or (params.get("channels") or "").split(",")[0] or None
        channel = self.channel(channel_id) if channel_id else None
        for upload, entry in zip(uploads, entries, strict=True):
            assert upload is not None
            upload.title, upload.channel_id = entry.get("title"), channel_id
            upload.thread_ts, upload.initial_comment = params.get("thread_ts"), params.get("initial_comment")
        objects = [self.file_object(u) for u in uploads if u is not None]
        if channel is not None:
            message = {**self.bot_message({"text": params.get("initial_comment")}, self.next_ts()), "files": objects}
            self.add_message(channel, message, params.get("thread_ts"))
        return {"files": objects}

