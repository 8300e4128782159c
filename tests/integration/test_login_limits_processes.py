"""Two real web processes (gunicorn) on the test PostgreSQL and Redis share the login limits:
failures counted by one lock the account at the other, whatever X-Forwarded-For says."""

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from django.conf import settings

from tests.factories import DEFAULT_PASSWORD, UserFactory
from tests.integration.conftest import _free_port, database_url_of_test_db, wait_for
from tracker.login_limits import LOGIN_LOCKED
from tracker.models import ApiToken

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[2]


class WebProcess:
    def __init__(self, name: str):
        self.port = _free_port()
        self.log = ROOT / "var" / f"test-web-{name}.log"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tracker.settings",
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": "integration-test-key",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            "DJANGO_SECURE_COOKIES": "0",
            "DJANGO_SECURE_SSL_REDIRECT": "0",
            "DATABASE_URL": database_url_of_test_db(),
            "TRUSTED_PROXIES": "",
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "tracker.wsgi:application", "--workers", "1",
             "--bind", f"127.0.0.1:{self.port}", "--error-logfile", "-"],
            cwd=ROOT, env=env, stdout=self.log.open("w"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.url = f"http://127.0.0.1:{self.port}"

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/api/v1/auth/token/", timeout=2).status_code == 405
        except httpx.HTTPError:
            return False

    def login(self, username, password, forwarded_for):
        return httpx.post(
            f"{self.url}/api/v1/auth/token/",
            json={"username": username, "password": password},
            headers={"X-Forwarded-For": forwarded_for},
            timeout=30,
        )

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def two_web_processes():
    processes = [WebProcess("a"), WebProcess("b")]
    try:
        for process in processes:
            assert wait_for(process.ready, timeout=90), process.log.read_text()
        yield processes
    finally:
        for process in processes:
            process.stop()


def test_two_web_processes_share_the_lock(two_web_processes):
    first, second = two_web_processes
    user = UserFactory()
    limit = settings.LOGIN_FAILURE_LIMIT
    codes = [
        (first if i % 2 else second)
        .login(user.username, "wrong", forwarded_for=f"198.51.100.{i + 1}")
        .status_code
        for i in range(limit)
    ]
    assert codes == [401] * (limit - 1) + [429]
    for process in (first, second):
        refused = process.login(user.username, DEFAULT_PASSWORD, forwarded_for="203.0.113.9")
        assert refused.status_code == 429
        assert refused.json()["detail"] == LOGIN_LOCKED
        assert int(refused.headers["Retry-After"]) > 0
    assert not ApiToken.objects.filter(user=user).exists()
