"""Small helpers of the workspace tests."""

import re
from html import unescape

from django.urls import reverse


def task_url(task, action: str = "") -> str:
    return reverse(f"workspace:task-{action}" if action else "workspace:task", args=[task.pk])


def text(response) -> str:
    """The page's visible text, tags stripped and whitespace collapsed."""
    body = response.content.decode()
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", body, flags=re.S)
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", body))).strip()


def sign_in(client, user):
    if user is not None and user.is_authenticated:
        client.force_login(user)
    return client
