"""README "Running in production" documents what the Dockerfile and docker-compose.yml really hold: every
service, published port, volume, mount and variable, the image's ENV, EXPOSE, VOLUME and HEALTHCHECK; and it names
no evalbot variable that evalbot does not read."""

from __future__ import annotations

import re

import pytest
import yaml

from bot.core.settings import Settings
from tests.helpers.dockerfile import runtime_stage
from tests.helpers.paths import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))


def section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start:end if end > 0 else None]


PRODUCTION = section("Running in production")
CONFIGURATION = section("Configuration")
CODE = set(re.findall(r"`([^`]+)`", PRODUCTION))  # every `code span` of the section


def settings_variables() -> set[str]:
    names = {str(info.validation_alias) for info in Settings.model_fields.values()}
    return names | {"EVALBOT_PORT"}  # serve's --port option reads it


def configured() -> set[str]:
    """The variables of the Configuration table."""
    return {name for row in re.findall(r"^\| `([^|]+)` \|", CONFIGURATION, flags=re.M) for name in re.findall(r"[A-Z_]+", row)}


def mentioned(text: str) -> bool:
    return text in PRODUCTION


@pytest.mark.parametrize("service", sorted(COMPOSE["services"]))
def test_every_compose_service_is_described_with_its_image_ports_volumes_and_variables(service):
    spec = COMPOSE["services"][service]
    assert f"`{service}`" in PRODUCTION
    if "image" in spec:
        assert f"`{spec['image']}`" in PRODUCTION
    if "command" in spec:
        assert f"`{' '.join(spec['command'])}`" in PRODUCTION
    for port in spec.get("ports", []):
        assert f"`{port}`" in PRODUCTION
    for volume in spec.get("volumes", []):
        source, target = volume.split(":")[:2]
        assert mentioned(f"`{source}`") or mentioned(f"`{volume}`") or mentioned(f"`{source}:{target}`"), volume
    for name, value in (spec.get("environment") or {}).items():
        assert f"`{name}`" in PRODUCTION or f"`{name}=" in PRODUCTION, name
        if not name.startswith("POSTGRES_"):
            assert str(value) in PRODUCTION, (name, value)
    if "env_file" in spec:
        assert f"`env_file: {spec['env_file']}`" in PRODUCTION
    if "user" in spec:
        assert f"`{spec['user']}`" in PRODUCTION


def test_every_named_volume_is_described():
    for volume in COMPOSE["volumes"]:
        assert f"`{volume}`" in PRODUCTION


def test_every_variable_compose_and_the_image_set_is_one_evalbot_reads_and_the_configuration_table_lists():
    stage = runtime_stage()
    ours = {name for name in stage.env if name.startswith("EVALBOT_")}
    for spec in COMPOSE["services"].values():
        ours |= {name for name in (spec.get("environment") or {}) if name.startswith("EVALBOT_")}
    assert ours <= settings_variables()
    assert ours <= configured()


def test_the_image_env_expose_volume_and_healthcheck_are_documented():
    stage = runtime_stage()
    for name, value in stage.env.items():
        if name.startswith("EVALBOT_"):
            assert f"`{name}={value}`" in PRODUCTION, name
    for port in stage.expose:
        assert f"`EXPOSE {port}`" in PRODUCTION
    for volume in stage.volumes:
        assert f"`VOLUME {volume}`" in PRODUCTION
    assert "/readyz" in " ".join(stage.healthcheck)
    assert "HEALTHCHECK asks `/readyz`" in PRODUCTION
    assert "`evalbot`" in PRODUCTION and stage.user == "evalbot"
    assert f"`{' '.join(stage.cmd)}`" in PRODUCTION


def test_the_section_names_no_variable_evalbot_does_not_read():
    named = {re.match(r"[A-Z_]+", code).group(0) for code in CODE if re.match(r"(EVALBOT|SLACK)_[A-Z_]+", code)}
    assert named <= settings_variables()


def test_the_section_publishes_only_the_ports_compose_publishes():
    published = {port for spec in COMPOSE["services"].values() for port in spec.get("ports", [])}
    assert {code for code in CODE if re.fullmatch(r"\d+:\d+", code)} == published


def test_slack_is_given_an_https_url_that_nginx_serves_with_a_mounted_certificate():
    assert "`https://<host>/slack/events`" in PRODUCTION
    nginx = (REPO / "deploy" / "nginx.conf").read_text(encoding="utf-8")
    assert re.search(r"listen 443 ssl;", nginx) and "location /slack/events" in nginx
    certificate = re.search(r"ssl_certificate\s+(\S+);", nginx).group(1)
    mounts = dict(volume.split(":")[:2] for volume in COMPOSE["services"]["lb"]["volumes"])
    assert any(certificate.startswith(target + "/") for target in mounts.values())
    assert "443:443" in COMPOSE["services"]["lb"]["ports"]
