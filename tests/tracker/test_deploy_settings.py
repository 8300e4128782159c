"""Production security settings and the development server's port.

`manage.py check --deploy` runs in a fresh interpreter with a production-like environment
(no `.env`), as an operator runs it; the settings logic runs tracker/settings.py afresh.
"""

import os
import runpy
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

PRODUCTION = {
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
    "DJANGO_ALLOWED_HOSTS": "tracker.example.org",
}

# Every variable the settings below read; each test sets only what it means to.
SETTINGS_VARIABLES = (
    "DJANGO_DEBUG",
    "DJANGO_SECRET_KEY",
    "DJANGO_ALLOWED_HOSTS",
    "DJANGO_SECURE_COOKIES",
    "DJANGO_SECURE_SSL_REDIRECT",
    "DJANGO_SSL_REDIRECT_BY_PROXY",
    "DJANGO_SECURE_HSTS_SECONDS",
    "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "DJANGO_SECURE_HSTS_PRELOAD",
    "DJANGO_SECURE_PROXY_SSL_HEADER",
    "WEB_PORT",
    "SITE_URL",
)


def check_deploy(**env_vars) -> subprocess.CompletedProcess:
    """`manage.py check --deploy --fail-level WARNING` as an operator runs it (no .env)."""
    env = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "tracker.settings",
        "DJANGO_ENV_FILE": str(ROOT / "var" / "no-such-env-file"),
        **PRODUCTION,
        **env_vars,
    }
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def load_settings(monkeypatch, tmp_path):
    """Run tracker/settings.py afresh with only the given variables set; its namespace."""

    def load(**env_vars) -> dict:
        for name in SETTINGS_VARIABLES:
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("DJANGO_ENV_FILE", str(tmp_path / "no-such-env-file"))
        for name, value in env_vars.items():
            monkeypatch.setenv(name, value)
        return runpy.run_path(str(ROOT / "tracker" / "settings.py"))

    return load


# --- check --deploy ------------------------------------------------------------------------


def test_check_deploy_is_clean_in_production():
    result = check_deploy()
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_names_w008_when_the_redirect_is_merely_switched_off():
    # Django cannot see a proxy's redirect: switched off alone, the check says so.
    result = check_deploy(DJANGO_SECURE_SSL_REDIRECT="0")
    assert result.returncode != 0
    assert "security.W008" in result.stderr
    assert result.stderr.count("(security.") == 1, result.stderr


def test_check_deploy_is_clean_when_a_proxy_redirects(load_settings):
    loaded = load_settings(**PRODUCTION, DJANGO_SSL_REDIRECT_BY_PROXY="1")
    assert loaded["SECURE_SSL_REDIRECT"] is False
    assert "security.W008" in loaded["SILENCED_SYSTEM_CHECKS"]
    result = check_deploy(DJANGO_SSL_REDIRECT_BY_PROXY="1")
    assert result.returncode == 0, result.stderr


# --- The settings behind it ------------------------------------------------------------------


def test_production_turns_every_protection_on(load_settings):
    loaded = load_settings(**PRODUCTION)
    assert loaded["SECURE_SSL_REDIRECT"] is True
    assert loaded["SECURE_HSTS_SECONDS"] == 31536000
    assert loaded["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert loaded["SECURE_HSTS_PRELOAD"] is True
    assert loaded["SESSION_COOKIE_SECURE"] is loaded["CSRF_COOKIE_SECURE"] is True
    assert "SECURE_PROXY_SSL_HEADER" not in loaded  # Django's default: no header trusted
    assert "security.W008" not in loaded.get("SILENCED_SYSTEM_CHECKS", [])


def test_debug_turns_redirect_hsts_and_secure_cookies_off(load_settings):
    loaded = load_settings(DJANGO_DEBUG="1")
    assert loaded["SECURE_SSL_REDIRECT"] is False
    assert loaded["SECURE_HSTS_SECONDS"] == 0
    assert loaded["SESSION_COOKIE_SECURE"] is loaded["CSRF_COOKIE_SECURE"] is False


@pytest.mark.parametrize(
    ("variable", "value", "setting", "expected"),
    [
        ("DJANGO_SECURE_SSL_REDIRECT", "0", "SECURE_SSL_REDIRECT", False),
        ("DJANGO_SECURE_HSTS_SECONDS", "3600", "SECURE_HSTS_SECONDS", 3600),
        ("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", "0", "SECURE_HSTS_INCLUDE_SUBDOMAINS", False),
        ("DJANGO_SECURE_HSTS_PRELOAD", "0", "SECURE_HSTS_PRELOAD", False),
        ("DJANGO_SECURE_COOKIES", "0", "CSRF_COOKIE_SECURE", False),
    ],
)
def test_each_protection_is_switchable(load_settings, variable, value, setting, expected):
    assert load_settings(**PRODUCTION, **{variable: value})[setting] == expected


def test_the_proxy_header_is_trusted_only_when_named(load_settings):
    loaded = load_settings(**PRODUCTION, DJANGO_SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto")
    assert loaded["SECURE_PROXY_SSL_HEADER"] == ("HTTP_X_FORWARDED_PROTO", "https")


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("DJANGO_SECURE_PROXY_SSL_HEADER", "X-Forwarded-Proto: https", "an HTTP header name"),
        ("DJANGO_SECURE_HSTS_SECONDS", "-1", "DJANGO_SECURE_HSTS_SECONDS must be 0 or more"),
    ],
)
def test_bad_security_values_stop_start_up(load_settings, variable, value, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        load_settings(**PRODUCTION, **{variable: value})


def _production(settings, load_settings) -> None:
    """Apply the production security settings to the running test (DEBUG off, no proxy)."""
    loaded = load_settings(**PRODUCTION)
    settings.SECURE_PROXY_SSL_HEADER = loaded.get("SECURE_PROXY_SSL_HEADER")
    for name in (
        "SECURE_SSL_REDIRECT",
        "SECURE_HSTS_SECONDS",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS",
        "SECURE_HSTS_PRELOAD",
    ):
        setattr(settings, name, loaded[name])


def test_a_forged_forwarded_proto_is_redirected_without_a_trusted_proxy(
    client, settings, load_settings
):
    _production(settings, load_settings)
    response = client.get("/admin/login/", headers={"X-Forwarded-Proto": "https"})
    assert response.status_code == 301
    assert response["Location"] == "https://testserver/admin/login/"


def test_https_answers_carry_hsts(client, settings, load_settings):
    _production(settings, load_settings)
    response = client.get("/admin/login/", secure=True)
    assert response.status_code == 200
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"


# --- The development server's port and SITE_URL ----------------------------------------------


def test_site_url_follows_the_web_port(load_settings):
    assert load_settings(DJANGO_DEBUG="1")["SITE_URL"] == "http://127.0.0.1:8000"
    assert load_settings(DJANGO_DEBUG="1", WEB_PORT="8001")["SITE_URL"] == "http://127.0.0.1:8001"
    explicit = load_settings(
        DJANGO_DEBUG="1", WEB_PORT="8001", SITE_URL="https://tracker.example.org/"
    )
    assert explicit["SITE_URL"] == "https://tracker.example.org"


@pytest.mark.parametrize("port", ["0", "65536"])
def test_a_web_port_out_of_range_stops_start_up(load_settings, port):
    with pytest.raises(ImproperlyConfigured, match="WEB_PORT must be a port number"):
        load_settings(DJANGO_DEBUG="1", WEB_PORT=port)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_procfile_web_serves_on_web_port_whatever_port_honcho_assigns(tmp_path):
    """honcho gives each process its own $PORT (base + 100 per line); the web line must use
    WEB_PORT, which `make run PORT=...` sets, and nothing else."""
    web_port, honcho_port = _free_port(), _free_port()
    env = {
        "PATH": os.environ["PATH"],
        "DJANGO_ENV_FILE": str(tmp_path / "no-such-env-file"),
        "DJANGO_DEBUG": "1",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "WEB_PORT": str(web_port),
        "PORT": str(honcho_port),
    }
    process = subprocess.Popen(
        [str(BIN / "honcho"), "start", "-f", "Procfile", "-e", str(tmp_path / "none.env"), "web"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        status, deadline = None, time.monotonic() + 60
        while status is None and time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{web_port}/admin/login/", timeout=5
                ) as response:
                    status = response.status
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.5)
        assert status == 200, process.stdout.read1().decode() if process.poll() else "no answer"
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", honcho_port)) != 0  # nothing on honcho's PORT
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        process.stdout.close()
