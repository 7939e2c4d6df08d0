"""Tests of bot.core.redaction: which text is a secret, the exact placeholder output, and what is left alone.

Every secret here is fake and assembled from pieces, so secret scanners have nothing to flag in this file.
Hex digests (git commit ids, sha256 sums) are deliberately not secrets: they must come through unchanged.
The examples are the tests' own: the peer scanners' data in ../shared is for `benchmarks/redaction.py` only.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator

import pytest

from bot.core.redaction import KINDS, RedactingFilter, redact, redact_with_report

SLACK_BOT = "xoxb-" + "2400000000001-2400000000002-" + "fAkEtOkEnVaLuE0123456789"
SLACK_USER = "xoxp-" + "2400000000001-2400000000003-2400000000004-" + "0123456789abcdef" * 2
SLACK_APP = "xapp-" + "1-A0FAKE00001-2400000000005-" + "0123456789abcdef" * 4
SLACK_ROTATING = "xoxe." + "xoxp-" + "1-" + ("Mi0yLTI0MDAwMDAwMDAwMDEtZmFrZQ" * 6)[:165]
WEBHOOK = "https://hooks.slack.com/" + "services/T0FAKE000/B0FAKE000/" + "fakeWebhookSecret0123abcd"
ANTHROPIC = "sk-" + "ant-api03-" + "FakeKeyMaterial0123456789_abcdefghijKLMNOP-qrstuvwx" * 2 + "AA"
OPENAI = "sk-" + "FakeOpenAI0123456789abcdefghijKLMNOPQRSTUVWX"
OPENAI_PROJECT = "sk-" + "proj-" + "FakeProject_0123456789-abcdefghijklmnop" + "T3Blbk" + "FJ" + "FakeProject_0123456789"
AWS_ID = "AKIA" + "FAKE0123456789AB"
AWS_TEMPORARY_ID = "ASIA" + "FAKE0123456789CD"
AWS_SECRET = "fakeSecretKey0123456789/" + "abcdefghij+KLMNO"
GITHUB_CLASSIC = "ghp_" + "FakeGitHubToken0123456789abcdefghijk"
GITHUB_APP = "ghs_" + "FakeGitHubAppToken0123456789abcdefgh"
GITHUB_FINE = "github_pat_" + "11FAKE0000000000000000_" + "FakeFineGrained0123456789abcdefghij"
KEY_BODY = "MIIEowIBAAKCAQEAfakefakefakefakefakefakefakefakefakefakefake0123\nZmFrZSBrZXkgYm9keQ==\n"
RSA_KEY = "-----BEGIN " + "RSA PRIVATE KEY-----\n" + KEY_BODY + "-----END " + "RSA PRIVATE KEY-----"
EC_KEY = "-----BEGIN " + "EC PRIVATE KEY-----\r\nMHcCAQEEIFakeFakeFakeFakeFake0123\r\n-----END " + "EC PRIVATE KEY-----"
TRUNCATED_KEY = "-----BEGIN " + "OPENSSH PRIVATE KEY-----\n" + "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAE\nAAAA=="
JWT = "eyJ" + "hbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9" + ".eyJzdWIiOiJmYWtlIn0" + ".ZmFrZS1zaWduYXR1cmUtMDEyMzQ1Njc4OQ"
OPAQUE = "fake0123456789" + "abcdefTOKEN"
EMAIL = "jane.doe+evals" + "@example.com"

POSITIVE = [
    # Slack
    pytest.param(f"bot token is {SLACK_BOT}, rotate it", "bot token is [REDACTED:slack_token], rotate it", id="xoxb"),
    pytest.param(f"user token `{SLACK_USER}`", "user token `[REDACTED:slack_token]`", id="xoxp-in-code"),
    pytest.param(f"SLACK_APP_TOKEN={SLACK_APP}\n", "SLACK_APP_TOKEN=[REDACTED:slack_token]\n", id="xapp-env"),
    pytest.param(f"refresh: {SLACK_ROTATING}.", "refresh: [REDACTED:slack_token].", id="xoxe-rotating"),
    pytest.param(f"posting to <{WEBHOOK}>", "posting to <[REDACTED:slack_webhook]>", id="webhook-markup"),
    pytest.param(
        f"curl -X POST {WEBHOOK} -d @msg.json",
        "curl -X POST [REDACTED:slack_webhook] -d @msg.json",
        id="webhook",
    ),
    # model providers
    pytest.param(f"ANTHROPIC_API_KEY={ANTHROPIC}", "ANTHROPIC_API_KEY=[REDACTED:anthropic_key]", id="anthropic-env"),
    pytest.param(
        f'client = Anthropic(api_key="{ANTHROPIC}")',
        'client = Anthropic(api_key="[REDACTED:anthropic_key]")',
        id="anthropic-in-code",
    ),
    pytest.param(f"the old key {OPENAI} still works", "the old key [REDACTED:openai_key] still works", id="openai"),
    pytest.param(
        f"export OPENAI_API_KEY='{OPENAI_PROJECT}'",
        "export OPENAI_API_KEY='[REDACTED:openai_key]'",
        id="openai-proj",
    ),
    # AWS
    pytest.param(f"aws_access_key_id = {AWS_ID}", "aws_access_key_id = [REDACTED:aws_access_key]", id="aws-akia"),
    pytest.param(f"temporary creds ({AWS_TEMPORARY_ID})", "temporary creds ([REDACTED:aws_access_key])", id="aws-asia"),
    pytest.param(
        f"aws_secret_access_key = {AWS_SECRET}",
        "aws_secret_access_key = [REDACTED:secret]",
        id="aws-secret-ini",
    ),
    pytest.param(
        f'{{"AccessKeyId": "{AWS_ID}", "SecretAccessKey": "{AWS_SECRET}"}}',
        '{"AccessKeyId": "[REDACTED:aws_access_key]", "SecretAccessKey": "[REDACTED:secret]"}',
        id="aws-json",
    ),
    # GitHub
    pytest.param(f"GH_TOKEN={GITHUB_CLASSIC}", "GH_TOKEN=[REDACTED:github_token]", id="github-ghp"),
    pytest.param(
        f"git clone https://x-access-token:{GITHUB_APP}@github.com/acme/app.git",
        "git clone https://[REDACTED:github_token]@github.com/acme/app.git",
        id="github-ghs-in-url",
    ),
    pytest.param(f"fine-grained: {GITHUB_FINE}", "fine-grained: [REDACTED:github_token]", id="github-pat"),
    # private keys
    pytest.param(
        f"here it is:\n```\n{RSA_KEY}\n```\nthanks",
        "here it is:\n```\n[REDACTED:private_key]\n```\nthanks",
        id="rsa-block",
    ),
    pytest.param(f"{EC_KEY}\r\nok?", "[REDACTED:private_key]\r\nok?", id="ec-block-crlf"),
    pytest.param(
        f"pasted half of it: {TRUNCATED_KEY}\nthanks",
        "pasted half of it: [REDACTED:private_key]\nthanks",
        id="no-end-line",
    ),
    # JWT and bearer
    pytest.param(f"session cookie {JWT}.", "session cookie [REDACTED:jwt].", id="jwt"),
    pytest.param(f"Authorization: Bearer {JWT}", "Authorization: Bearer [REDACTED:jwt]", id="bearer-jwt"),
    pytest.param(
        f"curl -H 'Authorization: Bearer {OPAQUE}' https://api.example.com",
        "curl -H 'Authorization: Bearer [REDACTED:bearer]' https://api.example.com",
        id="bearer-opaque",
    ),
    pytest.param(f"use bearer {OPAQUE}.", "use bearer [REDACTED:bearer].", id="bearer-lowercase"),
    # passwords in URLs
    pytest.param(
        "postgres://app:s3cr3t@db:5432/app",
        "postgres://[REDACTED:url_password]@db:5432/app",
        id="url-postgres",
    ),
    pytest.param(
        "<postgresql+psycopg://app:p@ss@db/x|postgresql+psycopg://app:p@ss@db/x>",
        "<postgresql+psycopg://[REDACTED:url_password]@db/x|postgresql+psycopg://[REDACTED:url_password]@db/x>",
        id="url-slack-markup-at-in-password",
    ),
    pytest.param("redis://:hunter2@cache:6379/0", "redis://[REDACTED:url_password]@cache:6379/0", id="url-no-user"),
    # key = value
    pytest.param("login with password=hunter2.", "login with password=[REDACTED:password].", id="password-eq"),
    pytest.param('DB_PASSWORD="correct horse"', 'DB_PASSWORD="[REDACTED:password]"', id="password-quoted-spaces"),
    pytest.param('{"api_key": "abc123xyz", "n": 1}', '{"api_key": "[REDACTED:secret]", "n": 1}', id="api-key-json"),
    pytest.param("smtp:\n  passwd: Tr0ub4dor&3\n", "smtp:\n  passwd: [REDACTED:password]\n", id="passwd-yaml"),
    pytest.param(
        "<https://example.com/cb?token=abc123&user=U0A|callback>",
        "<https://example.com/cb?token=[REDACTED:secret]&user=U0A|callback>",
        id="token-query",
    ),
    pytest.param(
        "https://example.com/cb?token=abc123&amp;user=U0A",
        "https://example.com/cb?token=[REDACTED:secret]&amp;user=U0A",
        id="token-query-slack-escaped",
    ),
    pytest.param("SLACK_SIGNING_SECRET=8f2e0c9a1b", "SLACK_SIGNING_SECRET=[REDACTED:secret]", id="secret-env"),
    pytest.param("X-Api-Key: abc-123-def", "X-Api-Key: [REDACTED:secret]", id="api-key-header"),
    # contacts
    pytest.param(f"mail {EMAIL} for access.", "mail [REDACTED:email] for access.", id="email"),
    pytest.param(f"<mailto:{EMAIL}|{EMAIL}>", "<mailto:[REDACTED:email]|[REDACTED:email]>", id="email-slack-markup"),
    pytest.param("call +1 415 555 0132 now", "call [REDACTED:phone] now", id="phone-us-intl"),
    pytest.param("UK office: +44 (0)20 7946 0958.", "UK office: [REDACTED:phone].", id="phone-uk-intl"),
    pytest.param("whatsapp +14155550132", "whatsapp [REDACTED:phone]", id="phone-e164"),
    pytest.param("(415) 555-0132 or 415.555.0133", "[REDACTED:phone] or [REDACTED:phone]", id="phone-us-national"),
    pytest.param(
        "Tel. 020 7946 0958, mobile 06 12 34 56 78",
        "Tel. [REDACTED:phone], mobile [REDACTED:phone]",
        id="phone-trunk",
    ),
    # several kinds at once
    pytest.param(
        f"hi <@U0A>, {EMAIL} pasted {SLACK_BOT} and postgres://app:pw@db/x",
        "hi <@U0A>, [REDACTED:email] pasted [REDACTED:slack_token] and postgres://[REDACTED:url_password]@db/x",
        id="mixed",
    ),
]

NEGATIVE = [
    pytest.param("Let's split the task-sketch into subtasks; risk-free.", id="sk-inside-words"),
    pytest.param("sk-learn is not a package name", id="sk-short"),
    pytest.param("Paste a xoxb token (xoxb-…), e.g. xoxb-your-bot-token, not xoxb-123.", id="xoxb-mentions"),
    pytest.param("Webhooks look like hooks.slack.com/services/... in the docs.", id="webhook-doc"),
    pytest.param("Order #123456789 shipped; account 4155550132.", id="order-ids"),
    pytest.param('ts: "1763700000.000100"', id="slack-ts"),
    pytest.param("flagged_at: 2026-11-20T10:00:00Z, due 20.11.2026", id="dates"),
    pytest.param("bumped to 1.2.3 (was 0.10.2), host 192.168.100.200", id="versions-ips"),
    pytest.param("meeting 10:30-11:45, then 14:00:00", id="times"),
    pytest.param("Refund $1,234,567.89 or €1.234.567,89 or 123 456 789 €", id="money"),
    pytest.param("fixed in 3f2a9c1e4b5d6a7f8e9d0c1b2a3f4e5d6c7b8a90 (see 3f2a9c1)", id="git-sha"),
    pytest.param("sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", id="sha256"),
    pytest.param("max_tokens = 1024\ntemperature = 0\ntoken_count: 512", id="config-numbers"),
    pytest.param("pass_threshold = 1.0\npassRate: 0.95\npass_through=yes-1", id="pass-rates-are-not-passwords"),
    pytest.param("Forgot your password: click the reset link.", id="password-prose"),
    pytest.param("Send a Bearer token in the Authorization header: Bearer YOUR_TOKEN", id="bearer-prose"),
    pytest.param("See https://example.com:8080/docs and ssh://git@github.com/acme/app", id="urls-without-password"),
    pytest.param("Clone git@github.com:acme/app.git then ping <@U0123ABC>", id="git-remote-mention"),
    pytest.param("Case k3m9x2qa in channel C0123 by U0A", id="slack-ids"),
    pytest.param("-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkq\n-----END PUBLIC KEY-----", id="public-key"),
    pytest.param("ISBN 978-3-16-148410-0; card 4111 1111 1111 1111 is the test number", id="long-numbers"),
    pytest.param("JSON in base64 starts with eyJ, and AKIA starts an AWS key id", id="prefix-mentions"),
    pytest.param("already clean: password=[REDACTED:password] Bearer [REDACTED:bearer]", id="placeholders"),
]


# One token per rule family of bot.core.redaction_rules (kind, the token), each checked as typed and as a value.
HEX40 = "0123456789abcdef" * 2 + "01234567"
HEX64 = "0123456789abcdef" * 4
ALNUM = "aB3dE5gH7jK9mN1pQ2rS4tU6vW8xY0zc"  # 32 mixed characters
TOKENS = [
    ("onepassword_key", "A3-" + "ASWWYB-798JRYLJVD4-23DC2-86TVM-H43EB"),
    ("adobe_secret", "p8e-" + ALNUM),
    ("age_key", "AGE-SECRET-KEY-1" + "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L" + "QPZRY9X8GF2TVDW0S3JN54KHCE"),
    ("alibaba_key", "LTAI" + ALNUM[:20]),
    ("artifactory_token", "AKCp" + (ALNUM * 3)[:69]),
    ("aws_bedrock_key", "bedrock-api-key-" + "YmVkcm9jay5hbWF6b25hd3MuY29t" + "LWZha2U="),
    ("azure_secret", "bP8" + "8Q~" + "rcBcYjzzOhg1Hnn76Wm3jGgakZiZ.8vMgR"),
    ("clickhouse_key", "4b1d" + (ALNUM * 2)[:38]),
    ("databricks_token", "dapi" + HEX40[:32]),
    ("digitalocean_token", "dop_" + "v1_" + HEX64),
    ("doppler_token", "dp.pt." + (ALNUM * 2)[:43]),
    ("dynatrace_token", "dt0c01." + ALNUM[:24] + "." + (ALNUM * 2)[:64]),
    ("easypost_token", "EZAK" + (ALNUM * 2)[:54]),
    ("flyio_token", "fo1_" + (ALNUM * 2)[:43]),
    ("gcp_key", "AIza" + "SyFake" + (ALNUM * 2)[:29]),
    ("gitlab_token", "glpat-" + ALNUM[:20]),
    ("grafana_token", "glsa_" + ALNUM + "_" + HEX40[:8]),
    ("hashicorp_token", ALNUM[:14] + ".atlasv1." + (ALNUM * 2)[:64]),
    ("vault_token", "hvs." + (ALNUM * 4)[:100]),
    ("heroku_key", "HRKU-AA" + (ALNUM * 2)[:58]),
    ("huggingface_token", "hf_" + "jCBaQngSHiHDRYOcsMcifUcysGyaiybUWz"),
    ("linear_key", "lin_api_" + (ALNUM * 2)[:40]),
    ("newrelic_key", "NRAK-" + ALNUM[:27]),
    ("npm_token", "npm_" + (ALNUM * 2)[:36]),
    ("openshift_token", "sha256~" + (ALNUM * 2)[:43]),
    ("planetscale_token", "pscale_" + "tkn_" + ALNUM),
    ("postman_token", "PMAK-" + HEX40[:24] + "-" + HEX40[:34]),
    ("pypi_token", "pypi-" + "AgEIcHlwaS5vcmc" + (ALNUM * 2)[:60]),
    ("sendgrid_token", "SG." + ALNUM[:22] + "." + (ALNUM * 2)[:43]),
    ("sentry_token", "sntryu_" + HEX64),
    ("shopify_token", "shpat_" + HEX40[:32]),
    ("square_token", "sq0atp-" + ALNUM[:22]),
    ("stripe_key", "sk_" + "live_" + ALNUM[:24]),
    ("telegram_token", "110201543:" + "AAHdqTcvCH1vGWJxfSe1ofSAs0K5PALDsaw"),
    ("twilio_key", "SK" + HEX40[:32]),
    ("discord_token", "MZ1yGvKTjE0rY0cV8i47CjAa" + ".uRHQPq." + "Xb1Mk2nEhe-4iUcrGOuegj57zMC"),
]


@pytest.mark.parametrize(("kind", "token"), TOKENS, ids=[kind for kind, _ in TOKENS])
def test_redacts_each_token_format(kind: str, token: str) -> None:
    assert redact(f"it fails with {token} since today") == f"it fails with [REDACTED:{kind}] since today"
    assert redact(f"```\nexport SOME_CONFIG={token}\n```") == f"```\nexport SOME_CONFIG=[REDACTED:{kind}]\n```"


# The bug: after a secret-named key, every assignment operator and language form must redact the value.
OPERATORS = [
    pytest.param('token := "s3cr3tValue42"', 'token := "[REDACTED:secret]"', id="go-walrus"),
    pytest.param('TOKEN ::= "s3cr3tValue42"', 'TOKEN ::= "[REDACTED:secret]"', id="make-double-colon"),
    pytest.param("API_KEY :::= s3cr3tValue42", "API_KEY :::= [REDACTED:secret]", id="make-triple-colon"),
    pytest.param("DB_PASSWORD ?= s3cr3tValue42", "DB_PASSWORD ?= [REDACTED:password]", id="make-conditional"),
    pytest.param('if (api_key == "s3cr3tValue42") {', 'if (api_key == "[REDACTED:secret]") {', id="comparison"),
    pytest.param('if ("s3cr3tValue42" === password) {', 'if ("[REDACTED:password]" === password) {', id="reversed"),
    pytest.param('$apiToken .= "s3cr3tValue42";', '$apiToken .= "[REDACTED:secret]";', id="php-append"),
    pytest.param("'password' => 's3cr3tValue42',", "'password' => '[REDACTED:password]',", id="php-array"),
    pytest.param("client_secret: s3cr3tValue42", "client_secret: [REDACTED:secret]", id="yaml"),
    pytest.param('var authToken string = "s3cr3tValue42"', 'var authToken string = "[REDACTED:secret]"', id="go-typed"),
    pytest.param('const token: string = "s3cr3tValue42";', 'const token: string = "[REDACTED:secret]";', id="ts-typed"),
    pytest.param("<password>s3cr3tValue42</password>", "<password>[REDACTED:password]</password>", id="xml"),
    pytest.param("<dbToken>\n    s3cr3tValue42\n</dbToken>", "<dbToken>\n    [REDACTED:secret]\n</dbToken>", id="xml-lines"),
    pytest.param(
        'System.setProperty("DB_PASSWORD", "s3cr3tValue42");',
        'System.setProperty("DB_PASSWORD", "[REDACTED:password]");',
        id="set-property",
    ),
    pytest.param(
        '<add key="ClearTextPassword" value="s3cr3tValue42" />',
        '<add key="ClearTextPassword" value="[REDACTED:password]" />',
        id="nuget-attributes",
    ),
    pytest.param('password "s3cr3tValue42";', 'password "[REDACTED:password]";', id="space-separated"),
    pytest.param("char secret[25] = s3cr3tValue42;", "char secret[25] = [REDACTED:secret];", id="c-array"),
]

# Headers, curl, URLs, Kubernetes Secrets: secrets known by where they sit.
CONTEXTS = [
    pytest.param("Authorization: Basic dXNlcjpzM2NyM3Q=", "Authorization: Basic [REDACTED:bearer]", id="basic-header"),
    pytest.param(
        "curl -H 'Authorization: Token 5eb4223e-5008-46e5-be67-c7b8f2732305' https://x",
        "curl -H 'Authorization: Token [REDACTED:bearer]' https://x",
        id="token-header",
    ),
    pytest.param("curl -u elastic:P@ssw0rd1 https://x", "curl -u [REDACTED:basic_auth] https://x", id="curl-u"),
    pytest.param(
        "curl --user 'johns:h0pk1ns~21s' https://x", "curl --user [REDACTED:basic_auth] https://x", id="curl-user-quoted"
    ),
    pytest.param(
        "DATABASE_URL=mysql://app:Sup3r-S3cret@db.internal:3306/app",
        "DATABASE_URL=mysql://[REDACTED:url_password]@db.internal:3306/app",
        id="db-url",
    ),
    pytest.param(
        "kind: Secret\ndata:\n  tls.key: bXlwYXNzd29yZA==\n  extra: YWRtaW46cGFzcw==\n",
        "kind: Secret\ndata:\n  [REDACTED:kubernetes_secret]\n  [REDACTED:kubernetes_secret]\n",
        id="kubernetes-data",
    ),
    pytest.param(
        "-----BEGIN " + "PRIVATE KEY-----\nsuper secret private key here\n-----END " + "PRIVATE KEY-----",
        "[REDACTED:private_key]",
        id="private-key-short-body",
    ),
]

# Slack delivers "&", "<" and ">" as entities: the secret must still go whole, the entities around it stay.
SLACK_ESCAPED = [
    pytest.param("password=P&amp;ss&lt;w0rd&gt;1 ok", "password=[REDACTED:password] ok", id="entities-inside"),
    pytest.param("a &lt;b&gt; &amp;&amp; password=hunter2!", "a &lt;b&gt; &amp;&amp; password=[REDACTED:password]", id="entities-before"),
    pytest.param(
        "&lt;password&gt;s3cr3t&amp;Value42&lt;/password&gt;",
        "&lt;password&gt;[REDACTED:password]&lt;/password&gt;",
        id="escaped-xml",
    ),
    pytest.param(f"curl -H &quot;x&quot; {GITHUB_CLASSIC} &gt; out", "curl -H &quot;x&quot; [REDACTED:github_token] &gt; out", id="token-near-gt"),
]

MORE_NEGATIVE = [
    pytest.param('"https://url:8000";@something else', id="url-port-then-at"),
    pytest.param("https://url:8000 @something else", id="url-port-space-at"),
    pytest.param("see https://cdn.example.com/img/9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08.png", id="image-url"),
    pytest.param('<img src="data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk">', id="data-uri"),
    pytest.param("eyJBB.eyJCC.eyJDDDD", id="short-jwt-lookalike"),
    pytest.param("request 7c9e6679-7425-40de-944b-e07fc1f90ae7 failed twice", id="uuid"),
    pytest.param("The eval failed because the model refused; rerun it with a longer context please.", id="prose"),
    pytest.param("primaryKey=rLYH1jfftwNmCkgiI0g5IFNwWW4R1j and public_key = 'abc123def456'", id="not-secret-key-names"),
    pytest.param("token_type=bearer; max_tokens=100; keyboard: qwerty1", id="not-secret-tails"),
    pytest.param("password: ${DB_PASSWORD} and token = os.environ['TOKEN'] and api_key=None", id="placeholders-and-code"),
    pytest.param("curl -u user:pass https://x and curl -u $USER:$TOKEN https://y", id="curl-placeholders"),
    pytest.param("glagent-" + "X" * 60, id="x-placeholder-token"),
    pytest.param("AIzaSyabcdefghijklmnopqrstuvwxyz1234567 is the documented sample key", id="gcp-allowlisted"),
]


@pytest.mark.parametrize(("text", "expected"), [*OPERATORS, *CONTEXTS, *SLACK_ESCAPED])
def test_redacts_value_in_context(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize("text", MORE_NEGATIVE)
def test_leaves_identifiers_and_placeholders_alone(text: str) -> None:
    assert redact(text, contacts=False) == text


def test_slack_escaped_secret_leaves_no_chunk_behind() -> None:
    secret = "Zq9&<xK>2mWp&7vLr"
    escaped = secret.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    redacted = redact(f"DB_PASSWORD={escaped} thanks")
    assert redacted == "DB_PASSWORD=[REDACTED:password] thanks"
    assert not any(part in redacted for part in ("Zq9", "xK", "2mWp", "7vLr"))


@pytest.mark.parametrize(("text", "expected"), POSITIVE)
def test_redacts_secret(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize("text", NEGATIVE)
def test_leaves_ordinary_text_alone(text: str) -> None:
    assert redact(text) == text
    assert redact_with_report(text)[1] == Counter()


@pytest.mark.parametrize(("text", "expected"), POSITIVE)
def test_redaction_is_idempotent(text: str, expected: str) -> None:
    assert redact(redact(text)) == redact(text)


def test_samples_cover_every_kind() -> None:
    seen: Counter[str] = Counter()
    for sample in [*POSITIVE, *CONTEXTS]:
        seen += redact_with_report(sample.values[0])[1]
    seen.update(kind for kind, _ in TOKENS)
    assert set(KINDS) - set(seen) <= {
        # formats without an example here: each still has its rule and its gitleaks test data in the benchmark
        "airtable_token", "atlassian_token", "authress_key", "clojars_token", "cloudflare_key", "defined_token",
        "duffel_token", "facebook_token", "flutterwave_key", "frameio_token", "harness_token", "intra42_secret", "infracost_token",
        "mailchimp_key", "mailgun_key", "mapbox_token", "maxmind_key", "notion_token", "octopus_key", "perplexity_key",
        "prefect_token", "pulumi_token", "readme_token", "rubygems_token", "scalingo_token", "sendinblue_token",
        "settlemint_token", "shippo_token", "sidekiq_secret", "sourcegraph_token", "teams_webhook", "twitter_token",
        "typeform_token", "yandex_token",
    }


def test_contacts_false_keeps_emails_and_phones() -> None:
    text = f"{EMAIL}, +44 20 7946 0958, token {SLACK_BOT}"
    assert redact(text, contacts=False) == f"{EMAIL}, +44 20 7946 0958, token [REDACTED:slack_token]"


def test_report_counts_each_kind() -> None:
    text = f"{SLACK_BOT} {SLACK_USER} password=hunter2 {EMAIL}"
    redacted, counts = redact_with_report(text)
    assert redacted == "[REDACTED:slack_token] [REDACTED:slack_token] password=[REDACTED:password] [REDACTED:email]"
    assert counts == Counter({"slack_token": 2, "password": 1, "email": 1})


def test_report_leaves_out_contacts_when_not_redacted() -> None:
    assert redact_with_report(f"{EMAIL} {ANTHROPIC}", contacts=False)[1] == Counter({"anthropic_key": 1})


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def collected() -> Iterator[_Collect]:
    handler = _Collect()
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("tests.redact")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)


def test_logging_filter_redacts_a_secret_passed_as_arg(collected: _Collect) -> None:
    logging.getLogger("tests.redact").info("connecting with %s as %s", SLACK_BOT, EMAIL)
    (record,) = collected.records
    assert record.getMessage() == "connecting with [REDACTED:slack_token] as [REDACTED:email]"
    assert record.args is None


def test_logging_filter_redacts_the_traceback(collected: _Collect) -> None:
    try:
        raise ValueError(f"bad key {ANTHROPIC}")
    except ValueError:
        logging.getLogger("tests.redact").exception("call failed")
    (record,) = collected.records
    assert "ValueError: bad key [REDACTED:anthropic_key]" in record.exc_text
    assert ANTHROPIC not in logging.Formatter().format(record)


def test_logging_filter_can_keep_contacts() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%s wrote %s", (EMAIL, OPENAI), None)
    assert RedactingFilter(contacts=False).filter(record)
    assert record.getMessage() == f"{EMAIL} wrote [REDACTED:openai_key]"
