"""The context rules: secrets known by what surrounds them, not by their own shape.

A value after a secret-named key (`password=…`, `api_key: …`, `$token .= "…"`, `token := …`, `<password>…
</password>`, `setProperty("DB_PASSWORD", "…")`, `if ("…" == password)`), an `Authorization:` header, a
`Bearer` token, `curl -u user:pass`, the credentials in a URL, the values under `data:` in a Kubernetes
Secret, and whole private-key blocks. Every finder takes the text and yields `(start, end, kind)` spans; the
engine in `bot.core.redaction` merges them with the token rules' spans.

Every regex here is linear: each repetition is bounded by a character class its neighbour cannot match, or by
a fixed count, so no input makes `re` backtrack more than a constant per character.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator

Span = tuple[int, int, str]

# The name must hold a secret word; "key" alone only as a word of its own ("API_KEY", "alibabaKey", not "monkey").
_WORD = (
    r"(?:(?P<pass>passw(?:or)?d|passphrase|pass(?![a-z])|pwd|pw(?![a-z]))"
    r"|secrete?|token|credentials?|creds|auth(?![a-z])|api[_.-]?key|access[_.-]?key|private[_.-]?key|sonar[_.-]?login"
    r"|(?<=[a-z0-9][_.-])key|(?<=[a-z])(?-i:K)ey)"
)
# Names that hold "key" and are not secrets (gitleaks' generic-api-key allowlist): "primaryKey", "public_key".
_NOT_SECRET_KEY = re.compile(
    r"(?i)(?:bucket|foreign|hot|idx|natural|primary|pub(?:lic)?|schema|sequence|sort|partition|cache|row|column"
    r"|composite|unique|index|host|map|dict|lookup|object|entity|hash|idempotency|i18n|translation|ssh)[_.-]?$"
)
# A name tail that turns the word into something that is not a secret ("token_count", "max_tokens", "key_id").
_NOT_SECRET_TAIL = re.compile(
    r"^(?:(?i:s|es|ary|aries|izer|izers|ize|ized|izing|ization|ing|ed|less)$"
    r"|(?:[_.-]|(?=[A-Z]))?(?i:alias|board|chars?|code|count|down|event|frame|id|ids|index|left|len|length|mesh\w*|name"
    r"|names|pair|press\w*|right|ring|selector|signature\w*|size|stone|store\w*|str|stroke|type|types|up|word|binding"
    r"|handler|listener|map|set|list|threshold|rate|ratio|percent\w*|through)(?:$|[_.-]|(?=[A-Z])))"
    r"|(?:^|[_.-]|(?<=[a-z])(?=[A-Z]))(?i:count|type|id|ids|name|names|length|len|size|limit|url|uri|endpoint|file|path"
    r"|dir|format|ttl|expiry|expires?|timeout|usage|index|field|header|prefix|policy|store|required|hint|label"
    r"|placeholder|reset|hash|vault|at|in)$"
)
# Go and TypeScript put a type between the name and the value: `var token string = "…"`, `token: string = "…"`.
_TYPE = r"(?:[ \t]+(?:string|String|str|&str|\[\]byte|bytes)|[ \t]*:[ \t]*(?:string|String|str|bytes)(?=[ \t]*=))?"
_OPERATOR = r"(?::{1,3}=|\?=|\.=|\+=|={2,3}|!==?|=>|=|:)"
# Secret words are found in the lowercased text (a literal alternation, fast), then `_ASSIGNMENT` is matched there.
# Where an assignment can start: a secret word (found by substring search, fast) followed by what `_ASSIGNMENT` needs
# after its name (tail, type, then an operator or a quote). The check is a cheap superset of `_ASSIGNMENT`, so prose
# that merely says "token" or "password" costs a few `str.find` calls and one failed `match` per mention.
_BLANK_QUOTE = re.compile(r"[ \t][\"'`]")
# "pw" stands for "pwd"; "api", "access" and "private" are kept for "apikey", "accesskey", "privatekey".
_SCAN_WORDS = ("pass", "pw", "secret", "token", "cred", "auth", "api", "access", "private", "sonar", "key")
_AFTER_WORD = re.compile(
    r"[\w.-]{0,40}(?:\[\d*\])?[\"'`\]]{0,2}"
    r"(?:[ \t]+(?:string|str|&str|\[\]byte|bytes)|[ \t]*:[ \t]*(?:string|str|bytes))?[ \t]*(?:[:=\"'`]|[?.+!]=)"
)
_ASSIGNMENT = re.compile(
    r"(?i)" + _WORD + r"(?P<tail>[\w.-]{0,24})(?:\[\d*\])?[\"'`\]]{0,2}" + _TYPE + r"[ \t]*"
    r"(?:(?P<op>" + _OPERATOR + r")[ \t]*|[ \t](?=[\"'`]))"
    r"@?(?:(?P<q>[\"'`])(?P<quoted>[^\"'`\n]{1,2000})(?P=q)|(?P<bare>[^\s\"'`]{1,300}))"
)
# `if ("…" == password)`: the value first, then a comparison, then the name.
_REVERSED = re.compile(r"(?P<q>[\"'`])(?P<quoted>[^\"'`\n]{1,300})(?P=q)[ \t]*(?:={2,3}|!==?)[ \t]*(?P<name>[A-Za-z_$][\w.$]{0,60})")
# `setProperty("DB_PASSWORD", "…")`, `["api_key", "…"]`, `"artifactory", "…"`
_PAIR = re.compile(r"(?P<kq>[\"'])(?P<name>[\w.-]{1,60})(?P=kq)[ \t]*,[ \t]*(?P<q>[\"'])(?P<quoted>[^\"'\n]{1,300})(?P=q)")
# `<password>…</password>`, `<AWSToken>\n  AKIA…\n</AWSToken>`
_XML = re.compile(r"<(?P<name>[\w.:-]{1,60})>[ \t\r\n]{0,40}(?P<quoted>[^<\s][^<\n]{0,300}?)[ \t\r\n]{0,40}</(?P=name)>")
# `<add key="ClearTextPassword" value="…" />`
_KEY_VALUE_ATTRS = re.compile(r"(?i)key[ \t]*=[ \t]*\"(?P<name>[^\"\n]{1,60})\"[ \t]+value[ \t]*=[ \t]*\"(?P<quoted>[^\"\n]{1,300})\"")
_SECRET_NAME = re.compile(r"(?i)" + _WORD)

_AUTH_HEADER = re.compile(
    r"(?i)(?:proxy-)?authori[sz]ation[\"']?[ \t]*[:=][ \t]*[\"']?[ \t]*"
    r"(?:[a-z][\w-]{0,20}[ \t]+(?=[\w~+/.=@:-]{8,}))?(?P<secret>[\w~+/.=@:-]{8,})"
)
_BEARER = re.compile(r"(?i)\bbearer[ \t]+(?P<secret>(?=[\w~+/.-]*\d)[\w~+/-]{8,}(?:\.[\w~+/-]+)*=*)")
_CURL_USER = re.compile(r"(?:^|[ \t])(?:-u|--user)(?:=|[ \t]{1,5})(?P<secret>\"[^\"\n]{1,100}\":\"[^\"\n]{1,200}\"|\"[^\"\n]{2,200}\"|'[^'\n]{2,200}'"
    r"|[^\s\"':]{0,100}:(?:'[^'\n]{2,200}'|\"[^\"\n]{2,200}\"|[^\s\"']{2,200}))")
# The password may itself hold "@": the greedy class backs off to the last "@" before the host.
_URL_CREDENTIALS = re.compile(r"://(?P<secret>[^\s:/@<>|\"'`]{0,100}:[^\s/<>|\"'`]{1,200})@(?=[^\s@/<>|\"'`]+)")
_PRIVATE_KEY_BEGIN = re.compile(r"-----BEGIN[ A-Z0-9_]{0,100}PRIVATE KEY(?: BLOCK)?-----")
_PRIVATE_KEY_END = re.compile(r"-----END[ A-Z0-9_]{0,100}PRIVATE KEY(?: BLOCK)?-----")
# gitleaks' curl-auth-user allowlist: "user:pass", "<user>:<password>", "[PASSWORD]", "$VAR", "{{ … }}".
_CURL_PLACEHOLDER = re.compile(
    r"(?i):(?:change(?:it|me)|pass(?:word)?|pwd|test|token|\*+|x+)$|<[^>]+>|\[[^]]+]|\{\{|(?:^|:)\$\{?[a-z_]\w*\}?(?:$|:)"
)
_URL_AUTHORITY = re.compile(r"[^\s/@<>|\"'`]*")
_KEY_BODY = re.compile(
    r"(?:[ \t]*\r?\n[^\n`]*)?(?:\r?\n(?:(?:Proc-Type|DEK-Info):[^\n`]*|[ \t]*[A-Za-z0-9+/]{16,}=*|[ \t]*[A-Za-z0-9+/]*={1,2})(?=\r?\n|$|`))*"
)
_KUBE_DATA = re.compile(r"(?im)^[ \t]*(?:data|stringData):[ \t]*\r?\n(?P<body>(?:[ \t]+[^\n]*(?:\n|$))+)")
_KUBE_ENTRY = re.compile(r"(?m)^[ \t]+(?P<secret>[\w.-]+:[ \t]*(?:[|>][-+]?[ \t]*\r?\n[ \t]+)?[\"']?[A-Za-z0-9+/]{4,}={0,3}[\"']?)(?=[ \t]*(?:\r?$|```))")
_KUBE_KIND = re.compile(r"(?i)\bkind:[ \t]*[\"']?secret\b")

# Values that stand for a secret rather than being one: `${VAR}`, `$VAR`, `{{ x }}`, `%s`, `<your-token>`, `None`.
_PLACEHOLDER_VALUE = re.compile(
    r"(?i)^(?:\$\{?[\w.]+\}?|\$\{[^}]*\}|\{\w+\}|\{\{[^}]*\}\}|%[sd(]|%\w+%|<[^>]*>|\*+|x{3,}|\.{3}|…|null|none|nil|true|false"
    r"|undefined|empty|string|str|bytes|int|optional\[\w+\]|required|redacted|\[redacted:?[a-z_]*\]?)$"
)
# A bare value that is code: an identifier, attribute path or call without digits (`os.environ`, `getenv(`).
_CODE_VALUE = re.compile(r"^[A-Za-z_$][A-Za-z_$]*(?:\.[A-Za-z_$]\w*)*(?:[(\[].*)?[,;]?$")
# After ":" a bare value must not read like prose ("password: click here"): it needs a digit or a symbol.
_SYMBOLIC = re.compile(r"[0-9@#$%^&*_+=~/\\!?{}()\[\]<>-]")
_QUERY_CONTINUES = re.compile(r"&(?=[\w.-]+=)|</")


def _entropy(value: str) -> float:
    return -sum(value.count(c) / len(value) * math.log2(value.count(c) / len(value)) for c in set(value))


def _kind(match: re.Match[str]) -> str:
    return "password" if match.group("pass") else "secret"


def _trim_bare(value: str) -> str:
    """A bare value up to where the surrounding syntax resumes: a query string's next "&k=", a closing tag, trailing
    punctuation, or a closing bracket that the value did not open."""
    cut = _QUERY_CONTINUES.search(value)
    if cut:
        value = value[: cut.start()]
    while value and value[-1] in ",;.":
        value = value[:-1]
    for opener, closer in ("()", "[]", "{}", "<>"):
        while value.endswith(closer) and value.count(closer) > value.count(opener):
            value = value[:-1]
    return value


def _assignments(text: str) -> Iterator[Span]:
    # Every operator holds ":" or "="; without one, a value needs a quote after a blank (`password "x"`).
    if ":" not in text and "=" not in text and not _BLANK_QUOTE.search(text):
        return
    lower = text.lower()
    if len(lower) != len(text):  # a few characters lowercase to two: search the text itself, more slowly
        lower = text
    position = 0
    for start, end in _word_starts(lower):
        if start < position:
            continue
        match = _ASSIGNMENT.match(text, start)
        if match is None:
            position = end
            continue
        value_start = match.start("quoted") if match.group("q") else match.start("bare")
        span = _assigned_value(match)
        # A rejected match gives its value back: "token_type=x;password=y" still finds the password.
        position = match.end() if span else value_start
        if span:
            yield span


def _word_starts(lower: str) -> list[tuple[int, int]]:
    """(start, end) of each secret word in `lower` that is followed by what an assignment needs, in order."""
    found: list[tuple[int, int]] = []
    for word in _SCAN_WORDS:
        at = lower.find(word)
        while at >= 0:
            end = at + len(word)
            if _AFTER_WORD.match(lower, end):
                found.append((at, end))
            at = lower.find(word, end)
    found.sort()
    return found


def _assigned_value(match: re.Match[str]) -> Span | None:
    name_before = match.string[max(0, match.start() - 12) : match.start()]
    scheme = match.string.rfind("://", max(0, match.start() - 200), match.start())
    if scheme >= 0 and _URL_AUTHORITY.fullmatch(match.string, scheme + 3, match.start()):
        return None  # "https://x-access-token:…@host": the URL credentials rule takes it
    if _NOT_SECRET_TAIL.search(match.group("tail")):
        return None
    if match.group().lower().startswith("key") and _NOT_SECRET_KEY.search(name_before):
        return None
    op = match.group("op")
    if match.group("q"):
        start, value = match.start("quoted"), match.group("quoted")
        if match.group("q") == "`" and " " in value:  # a shell command substitution, not a value
            return None
    else:
        start, value = match.start("bare"), _trim_bare(match.group("bare"))
        if len(value) < 3 or _CODE_VALUE.match(value) or (op == ":" and not _SYMBOLIC.search(value)):
            return None
    if _PLACEHOLDER_VALUE.match(value.strip()):
        return None
    return start, start + len(value), _kind(match)


def _named_values(text: str) -> Iterator[Span]:
    """Values whose name comes in another form: reversed comparisons, quoted pairs, XML elements, key/value attributes."""
    for pattern, hints, refine in _NAMED_PATTERNS:
        if not any(map(text.__contains__, hints)) or (refine is not None and not refine.search(text)):
            continue
        for match in pattern.finditer(text):
            name = _SECRET_NAME.search(match.group("name"))
            value = match.group("quoted").strip()
            if name is None or _PLACEHOLDER_VALUE.match(value) or len(value) < 3:
                continue
            if pattern is _XML and name.end() < len(match.group("name")) and _NOT_SECRET_TAIL.search(match.group("name")[name.end() :]):
                continue
            start = match.start("quoted") + match.group("quoted").index(value[0])
            yield start, start + len(value), "password" if name.group("pass") else "secret"


# Each pattern with the substrings one of which its matches hold (fast searches), then, where those are common in
# code, a regex its matches hold (a quote before the comparison, a quoted pair) before the pattern itself runs.
_NAMED_PATTERNS: tuple[tuple[re.Pattern[str], tuple[str, ...], re.Pattern[str] | None], ...] = (
    (_REVERSED, ("==", "!="), re.compile(r"[\"'`][ \t]*[=!]=")),
    (_PAIR, ('",', "',", '" ,', "' ,"), None),
    (_XML, ("</",), None),
    (_KEY_VALUE_ATTRS, ("value", "VALUE", "Value"), None),
)


def _headers(text: str) -> Iterator[Span]:
    for match in _AUTH_HEADER.finditer(text):
        if not _PLACEHOLDER_VALUE.match(match.group("secret")) and not match.group("secret").isalpha():
            yield match.start("secret"), match.end("secret"), "bearer"
    for match in _BEARER.finditer(text):
        yield match.start("secret"), match.end("secret"), "bearer"


def _basic_auth(text: str) -> Iterator[Span]:
    for match in _CURL_USER.finditer(text) if "-u" in text else ():  # "--user" holds "-u"
        value = match.group("secret").strip("\"'")
        if ":" in value and not _CURL_PLACEHOLDER.search(value) and _entropy(value) >= 2.0:
            yield match.start("secret"), match.end("secret"), "basic_auth"
    for match in _URL_CREDENTIALS.finditer(text):
        yield match.start("secret"), match.end("secret"), "url_password"


def _private_keys(text: str) -> Iterator[Span]:
    begins = list(_PRIVATE_KEY_BEGIN.finditer(text))
    position = 0
    for index, begin in enumerate(begins):
        if begin.start() < position:
            continue
        # Every search stops at the next BEGIN, so many headers without END lines stay linear.
        limit = begins[index + 1].start() if index + 1 < len(begins) else len(text)
        end = _PRIVATE_KEY_END.search(text, begin.end(), limit)
        if end is not None:
            if len(text[begin.end() : end.start()].strip()) < 10:  # "…KEY-----\nanything\n-----END…": a placeholder
                position = end.end()
                continue
            stop = end.end()
        else:
            # No END line: the block is the next line and the base64 (or header) lines after it.
            body = _KEY_BODY.match(text, begin.end(), limit)
            stop = body.end() if body else begin.end()
            while stop > begin.end() and text[stop - 1].isspace():
                stop -= 1
        yield begin.start(), stop, "private_key"
        position = stop


def _kubernetes(text: str) -> Iterator[Span]:
    if not _KUBE_KIND.search(text):
        return
    for block in _KUBE_DATA.finditer(text):
        for entry in _KUBE_ENTRY.finditer(block.group("body")):
            offset = block.start("body")
            yield offset + entry.start("secret"), offset + entry.end("secret"), "kubernetes_secret"


# (lowercase keywords one of which must appear for the finder to run, the finder); each keyword is a full pass over
# the text, so none is a substring of another.
FINDERS: tuple[tuple[tuple[str, ...], Callable[[str], Iterator[Span]]], ...] = (
    (("-----begin",), _private_keys),
    (("pass", "pw", "secret", "token", "cred", "auth", "key"), _assignments),  # "pw" stands for "pwd" too
    ((",", "==", "!=", "</", "value"), _named_values),
    (("authori", "bearer"), _headers),
    (("://", "-u"), _basic_auth),  # "-u" stands for "--user" too
    (("kind:",), _kubernetes),
)

KINDS: tuple[str, ...] = ("private_key", "password", "secret", "bearer", "basic_auth", "url_password", "kubernetes_secret")
