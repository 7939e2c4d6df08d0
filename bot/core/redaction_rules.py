"""The token rules: secrets recognisable by their own shape (a vendor prefix, a fixed length, a checksum part).

Source: ported from the gitleaks default rule set, `config/gitleaks.toml` of https://github.com/gitleaks/gitleaks
(MIT licence, Copyright (c) 2019 Zachary Rice) at commit b58d3f102cf3a2c84cb7f923d05c25c9b1aed84b, the commit
the peer test data of `benchmarks/redaction.py` was taken from. Each row keeps the gitleaks rule id in its
comment, its lowercase `keywords` (the prefilter: a rule's regex only runs when one of them is in the lowercased
text) and the shape of its secret, rewritten for Python's `re`:

* gitleaks' `\\b…(?:[\\x60'"\\s;]|\\\\[nr]|$)` frame becomes a left-boundary check in the engine (`boundary`)
  and nothing on the right, so a token glued to punctuation or markup is still taken whole;
* patterns start with their literal prefix where they can, so `re` searches for it instead of trying every
  position; lengths are sometimes relaxed (`{36}` to `{36,}`) so a longer variant is not half redacted;
* rules that only name an identifier (client ids, publishable keys) are left out, and so are gitleaks' generic
  `<vendor>_token = value` rules: `bot.core.redaction_context` handles every secret-named key at once.

Refresh: take `config/gitleaks.toml` at a newer commit, diff its `[[rules]]` against the ids below, port new or
changed prefixes here, update the commit above, and rerun `uv run python benchmarks/redaction.py`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class TokenRule:
    """One secret format: the placeholder kind, the prefilter keywords, and the regex (group `secret` if not all)."""

    kind: str
    keywords: tuple[str, ...]
    pattern: re.Pattern[str]
    boundary: bool = True  # the characters around the match must not be letters, digits, "_" (or "." before it)
    entropy: float = 0.0  # gitleaks' minimum Shannon entropy of the secret, where its test data needs one
    # For a rule without keywords: a regex the lowercased candidate runs must hold, or the rule is not run.
    gate: re.Pattern[str] | None = None


def _rule(
    kind: str, keywords: str, pattern: str, *, flags: int = 0, boundary: bool = True, entropy: float = 0.0, gate: str = ""
) -> TokenRule:
    compiled_gate = re.compile(gate) if gate else None
    return TokenRule(kind, tuple(keywords.split()), re.compile(pattern, flags), boundary, entropy, compiled_gate)


_I = re.IGNORECASE

TOKEN_RULES: tuple[TokenRule, ...] = (
    # private-key: the block is handled by bot.core.redaction_context (it needs the END line or the block's end).
    # Slack: slack-bot/user/app/legacy/config tokens; real tokens always carry digits ("xoxb-your-token" stays).
    _rule("slack_token", "xox", r"xox[abposre]-(?:\d+-){2,}[A-Za-z0-9-]+"),
    _rule("slack_token", "xoxb", r"xoxb-[0-9]{8,14}-[A-Za-z0-9]{18,26}"),
    _rule("slack_token", "xoxa xoxr", r"xox[ar]-(?:\d-)?[0-9A-Za-z]{8,48}", entropy=2.0),
    _rule("slack_token", "xoxe", r"(?:xoxe\.xox[bp]-\d-[A-Za-z0-9]{163,166}|xoxe-\d-[A-Za-z0-9]{146})"),
    _rule("slack_token", "xapp", r"xapp-\d-[A-Za-z0-9]+-\d+-[A-Za-z0-9]+"),
    _rule("slack_webhook", "hooks.slack.com", r"(?:https?://)?hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_+/-]{16,}"),
    # anthropic-api-key, anthropic-admin-api-key (and shorter keys of older formats)
    _rule("anthropic_key", "sk-ant-", r"sk-ant-(?:api|admin)\d\d-[A-Za-z0-9_-]{80,}AA"),
    # openai-api-key: project / service-account / admin keys, and the legacy sk-… with T3BlbkFJ inside
    _rule("openai_key", "t3blbkfj", r"sk-(?:(?:proj|svcacct|admin)-)?[A-Za-z0-9_-]{20,}T3BlbkFJ[A-Za-z0-9_-]{20,}"),
    _rule("openai_key", "sk-", r"sk-(?!ant-|proj-|svcacct-|admin-)(?=[A-Za-z0-9_-]*\d)[A-Za-z0-9_-]{20,}"),
    # github-pat, github-oauth, github-app-token, github-refresh-token, github-fine-grained-pat
    _rule("github_token", "ghp_ gho_ ghu_ ghs_ ghr_ github_pat_", r"(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_\w{30,})"),
    # gitlab-pat(-routable), -ptt, -rrt, -runner-authentication-token(-routable), -deploy-token, -feed-token, …
    _rule("gitlab_token", "glpat- glrt- gldt- glft- glsoat- glffct- glcbt-", r"gl(?:pat|rt|dt|ft|soat|ffct|cbt)-[\w-]{20,}(?:\.[0-9a-z]{9})?"),
    _rule("gitlab_token", "glimt- glagent- gloas- glptt-", r"(?:glimt-[\w-]{25,}|glagent-[\w-]{50,}|gloas-[\w-]{64,}|glptt-[\w-]{40})"),
    _rule("gitlab_token", "gr1348941 _gitlab_session=", r"(?:GR1348941[\w-]{20,}|_gitlab_session=[0-9a-z]{32})", boundary=False, entropy=3.0),
    # aws-access-token (ids of keys: they are half a credential, and the secret half is rarely far away)
    _rule("aws_access_key", "akia asia abia acca a3t", r"(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Za-z0-9])"),
    # aws-amazon-bedrock-api-key-long-lived / -short-lived
    _rule("aws_bedrock_key", "absk bedrock-api-key-", r"(?:ABSK[A-Za-z0-9+/]{100,}={0,2}|bedrock-api-key-YmVkcm9jay5hbWF6b25hd3MuY29t[A-Za-z0-9+/=]*)"),
    # 1password-secret-key, 1password-service-account-token
    _rule("onepassword_key", "a3-", r"A3-[A-Z0-9]{6}-(?:[A-Z0-9]{11}|[A-Z0-9]{6}-[A-Z0-9]{5})-[A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{5}"),
    _rule("onepassword_key", "ops_eyj", r"ops_eyJ[A-Za-z0-9+/]{100,}={0,3}"),
    # adobe-client-secret, age-secret-key, alibaba-access-key-id, airtable-personnal-access-token
    _rule("adobe_secret", "p8e-", r"p8e-[A-Za-z0-9]{32}"),
    _rule("age_key", "age-secret-key-1", r"AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}"),
    _rule("alibaba_key", "ltai", r"LTAI[A-Za-z0-9]{20}"),
    _rule("airtable_token", "pat", r"pat[A-Za-z0-9]{14}\.[a-f0-9]{64}"),
    # artifactory-api-key, artifactory-reference-token, atlassian-api-token (ATATT3…), authress
    _rule("artifactory_token", "akcp cmvmd", r"(?:AKCp[A-Za-z0-9]{69}|cmVmd[A-Za-z0-9]{59})"),
    _rule("atlassian_token", "atatt3", r"ATATT3[A-Za-z0-9_=-]{180,}"),
    _rule("authress_key", "sc_ ext_ scauth_ authress_", r"(?:sc|ext|scauth|authress)_[a-z0-9]{5,30}\.[a-z0-9]{4,6}\.acc[_-][a-z0-9-]{10,32}\.[a-z0-9+/_=-]{30,120}", flags=_I),
    # azure-ad-client-secret: three characters, a digit, "Q~", then 31-34 more
    _rule("azure_secret", "q~", r"(?<![A-Za-z0-9_~.-])[A-Za-z0-9_~.]{3}\dQ~[A-Za-z0-9_~.-]{31,34}(?![A-Za-z0-9_~.-])", boundary=False),
    # clickhouse-cloud-api-secret-key, clojars-api-token, cloudflare-origin-ca-key, databricks-api-token
    _rule("clickhouse_key", "4b1d", r"4b1d[A-Za-z0-9]{38}"),
    _rule("clojars_token", "clojars_", r"CLOJARS_[A-Za-z0-9]{60}", flags=_I),
    _rule("cloudflare_key", "v1.0-", r"v1\.0-[a-f0-9]{24}-[a-f0-9]{146}"),
    _rule("databricks_token", "dapi", r"dapi[a-f0-9]{32}(?:-\d)?"),
    # defined-networking-api-token, digitalocean-pat / -access-token / -refresh-token, doppler, duffel, dynatrace
    _rule("defined_token", "dnkey-", r"dnkey-[a-z0-9=_-]{26}-[a-z0-9=_-]{52}", flags=_I),
    _rule("digitalocean_token", "dop_v1_ doo_v1_ dor_v1_", r"do[opr]_v1_[a-f0-9]{64}"),
    _rule("doppler_token", "dp.pt.", r"dp\.pt\.[A-Za-z0-9]{43}"),
    _rule("duffel_token", "duffel_", r"duffel_(?:test|live)_[A-Za-z0-9_=-]{43}"),
    _rule("dynatrace_token", "dt0c01.", r"dt0c01\.[A-Za-z0-9]{24}\.[A-Za-z0-9]{64}"),
    # easypost-api-token / -test-api-token, facebook-page-access-token, facebook-access-token
    _rule("easypost_token", "ezak eztk", r"EZ[AT]K[A-Za-z0-9]{54}"),
    _rule("facebook_token", "eaam eaac", r"EAA[MC][A-Za-z0-9]{100,}"),
    _rule("facebook_token", "| %7c", r"\d{15,16}(?:\||%7C)[0-9A-Za-z_-]{27,40}"),
    # flutterwave-secret-key / -encryption-key, flyio-access-token, frameio-api-token
    _rule("flutterwave_key", "flwseck_test", r"FLWSECK_TEST-[a-hA-H0-9]{12,32}(?:-X)?"),
    _rule("flyio_token", "fo1_ fm1 fm2_", r"(?:fo1_[\w-]{43}|fm1[ar]_[A-Za-z0-9+/]{100,}={0,3}|fm2_[A-Za-z0-9+/]{100,}={0,3})"),
    _rule("frameio_token", "fio-u-", r"fio-u-[A-Za-z0-9_=-]{64}"),
    # gcp-api-key, grafana-api-key / -cloud-api-token / -service-account-token, harness-api-key
    _rule("gcp_key", "aiza", r"AIza[\w-]{35}(?![\w-])"),
    _rule("grafana_token", "eyjrijoi", r"eyJrIjoi[A-Za-z0-9]{70,400}={0,3}"),
    _rule("grafana_token", "glc_ glsa_", r"(?:glc_[A-Za-z0-9+/]{32,400}={0,3}|glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8})"),
    _rule("harness_token", "pat. sat.", r"(?:pat|sat)\.[\w-]{22}\.[A-Za-z0-9]{24}\.[A-Za-z0-9]{20}"),
    # hashicorp-tf-api-token, vault-service-token, vault-batch-token
    _rule("hashicorp_token", "atlasv1", r"[A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_=-]{60,70}"),
    _rule("vault_token", "hvs. hvb.", r"hv[sb]\.[\w-]{90,300}"),
    _rule("vault_token", "s.", r"s\.(?=[A-Za-z]*\d)[A-Za-z0-9]{24}(?![\w.-])"),
    # heroku-api-key-v2, huggingface-access-token / -organization-api-token, infracost, intra42
    _rule("heroku_key", "hrku-aa", r"HRKU-AA[0-9A-Za-z_-]{58}"),
    _rule("huggingface_token", "hf_ api_org_", r"(?:hf_|api_org_)[A-Za-z]{34}"),
    _rule("infracost_token", "ico-", r"ico-[A-Za-z0-9]{32}"),
    _rule("intra42_secret", "s-s4t2", r"s-s4t2(?:ud|af)-[a-fA-F0-9]{64}"),
    # jwt, jwt-base64 (a JWT's payload always starts "eyJ", so ".ey" is the prefilter)
    _rule("jwt", ".ey", r"ey[A-Za-z0-9_-]{17,}\.ey[A-Za-z0-9/\\_-]{17,}(?:\.(?:[A-Za-z0-9/\\_-]{10,}={0,2})?)?"),
    _rule("jwt", "zxlk", r"ZXlK[A-Za-z0-9/\\_+-]{40,}={0,2}"),
    # linear-api-key, mailchimp-api-key, mailgun-private-api-token / -pub-key, maxmind-license-key
    _rule("linear_key", "lin_api_", r"lin_api_[A-Za-z0-9]{40}"),
    _rule("mailchimp_key", "-us", r"[a-f0-9]{32}-us\d{1,2}(?![A-Za-z0-9])"),
    _rule("mailgun_key", "key-", r"(?:pub)?key-[a-f0-9]{32}"),
    _rule("maxmind_key", "_mmk", r"[A-Za-z0-9]{6}_[A-Za-z0-9]{29}_mmk"),
    # mapbox-api-token, microsoft-teams-webhook, new-relic-user-api-key / -insert-key / -browser-api-token
    _rule("mapbox_token", "pk. sk.", r"[ps]k\.[A-Za-z0-9]{60}\.[A-Za-z0-9_-]{22}"),
    _rule("teams_webhook", "webhook.office.com", r"https://[A-Za-z0-9-]+\.webhook\.office\.com/webhookb2/[^\s\"'<>|`]+"),
    _rule("newrelic_key", "nrak- nrii- nrjs-", r"NR(?:AK|II|JS)-[A-Za-z0-9-]{19,32}"),
    # notion-api-token, npm-access-token, octopus-deploy-api-key, openshift-user-token, perplexity-api-key
    _rule("notion_token", "ntn_", r"ntn_[0-9]{11}[A-Za-z0-9]{35}"),
    _rule("npm_token", "npm_", r"npm_[A-Za-z0-9]{36}"),
    _rule("octopus_key", "api-", r"API-[A-Z0-9]{26}"),
    _rule("openshift_token", "sha256~", r"sha256~[\w-]{43}"),
    _rule("perplexity_key", "pplx-", r"pplx-[A-Za-z0-9]{48}"),
    # planetscale-password / -api-token / -oauth-token, postman, prefect, pulumi, pypi-upload-token
    _rule("planetscale_token", "pscale_", r"pscale_(?:tkn|oauth|pw)_[\w=.-]{32,64}"),
    _rule("postman_token", "pmak-", r"PMAK-[a-fA-F0-9]{24}-[a-fA-F0-9]{34}"),
    _rule("prefect_token", "pnu_", r"pnu_[A-Za-z0-9]{36}"),
    _rule("pulumi_token", "pul-", r"pul-[a-f0-9]{40}"),
    _rule("pypi_token", "pypi-age", r"pypi-AgE[\w-]{50,}"),
    # readme-api-token, rubygems-api-token, scalingo-api-token, sendgrid-api-token, sendinblue-api-token
    _rule("readme_token", "rdme_", r"rdme_[a-z0-9]{70}"),
    _rule("rubygems_token", "rubygems_", r"rubygems_[a-f0-9]{48}"),
    _rule("scalingo_token", "tk-us-", r"tk-us-[\w-]{48}"),
    _rule("sendgrid_token", "sg.", r"SG\.(?:[\w-]{22}\.[\w-]{43}|[\w=-]{66})"),
    _rule("sendinblue_token", "xkeysib-", r"xkeysib-[a-f0-9]{64}-[A-Za-z0-9]{16}"),
    # sentry-org-token / -user-token, settlemint-*-access-token, shippo-api-token, shopify-*
    _rule("sentry_token", "sntrys_ sntryu_", r"(?:sntrys_eyJ[A-Za-z0-9+/=]{50,}_[A-Za-z0-9+/]{43}(?![A-Za-z0-9+/])|sntryu_[a-f0-9]{64})", entropy=3.5),
    _rule("settlemint_token", "sm_aat sm_pat sm_sat", r"sm_(?:aat|pat|sat)_[A-Za-z0-9]{16}"),
    _rule("shippo_token", "shippo_", r"shippo_(?:live|test)_[a-fA-F0-9]{40}"),
    _rule("shopify_token", "shpat_ shpca_ shppa_ shpss_", r"shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}"),
    # sidekiq-secret (the sensitive URL is a URL password), sourcegraph-access-token, square-access-token
    _rule("sidekiq_secret", "contribsys__com", r"BUNDLE_(?:ENTERPRISE|GEMS)__CONTRIBSYS__COM[\s\"':=]{1,5}(?P<secret>[a-f0-9]{8}:[a-f0-9]{8})", flags=_I),
    _rule("sourcegraph_token", "sgp_", r"sgp_(?:(?:[a-fA-F0-9]{16}|local)_)?[a-fA-F0-9]{40}", entropy=3.0),
    _rule("square_token", "sq0atp- sq0csp- eaaa", r"(?:EAAA|sq0atp-|sq0csp-)[\w\\-]{22,60}"),
    # stripe-access-token (secret and restricted keys; publishable pk_ keys identify, they are left alone)
    _rule("stripe_key", "sk_ rk_ whsec_", r"(?:(?:sk|rk)_(?:test|live|prod)_[A-Za-z0-9]{10,99}|whsec_[A-Za-z0-9]{24,})"),
    # telegram-bot-api-token (bot id ":" secret), twilio-api-key, twitter-bearer-token, typeform-api-token
    _rule("telegram_token", ":a", r"[0-9]{5,16}:A[\w-]{34}(?![\w-])"),
    _rule("twilio_key", "sk", r"SK[0-9a-fA-F]{32}(?![A-Za-z0-9])"),
    _rule("twitter_token", "aaaaaaaaaaaaaaaaaaaaaa", r"A{22}[A-Za-z0-9%]{80,100}"),
    _rule("typeform_token", "tfp_", r"tfp_[\w.=-]{59}"),
    # yandex-api-key, yandex-access-token; discord bot tokens (the detect-secrets shape)
    _rule("yandex_token", "aqvn t1.", r"(?:AQVN[\w-]{35,38}|t1\.[\w-]+={0,2}\.[\w-]{86}={0,2})"),
    _rule("discord_token", "", r"[MNO][\w-]{23,25}\.[\w-]{6}\.(?:[\w-]{38}|[\w-]{27})(?![\w-])", gate=r"[mno][\w-]{23,25}\.[\w-]{6}\."),
)

# gitleaks' allowlist for gcp-api-key: keys published in public SDKs and docs, not secrets of anyone's.
ALLOWED: frozenset[str] = frozenset(
    {
        "AIzaSyabcdefghijklmnopqrstuvwxyz1234567", "AIzaSyAnLA7NfeLquW1tJFpx_eQCxoX-oo6YyIs",
        "AIzaSyCkEhVjf3pduRDt6d1yKOMitrUEke8agEM", "AIzaSyDMAScliyLx7F0NPDEJi1QmyCgHIAODrlU",
        "AIzaSyD3asb-2pEZVqMkmL6M9N6nHZRR_znhrh0", "AIzayDNSXIbFmlXbIE6mCzDLQAqITYefhixbX4A",
        "AIzaSyAdOS2zB6NCsk1pCdZ4-P6GBdi_UUPwX7c", "AIzaSyASWm6HmTMdYWpgMnjRBjxcQ9CKctWmLd4",
        "AIzaSyANUvH9H9BsUccjsu2pCmEkOPjjaXeDQgY", "AIzaSyA5_iVawFQ8ABuTZNUdcwERLJv_a_p4wtM",
        "AIzaSyA4UrcGxgwQFTfaI3no3t7Lt1sjmdnP5sQ", "AIzaSyDSb51JiIcB6OJpwwMicseKRhhrOq1cS7g",
        "AIzaSyBF2RrAIm4a0mO64EShQfqfd2AFnzAvvuU", "AIzaSyBcE-OOIbhjyR83gm4r2MFCu4MJmprNXsw",
        "AIzaSyB8qGxt4ec15vitgn44duC5ucxaOi4FmqE", "AIzaSyA8vmApnrHNFE0bApF4hoZ11srVL_n0nvY",
    }
)

KINDS: tuple[str, ...] = tuple(dict.fromkeys(rule.kind for rule in TOKEN_RULES))
