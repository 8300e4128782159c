"""The client address: REMOTE_ADDR, unless the request comes from a proxy in TRUSTED_PROXIES."""

import pytest
from django.test import RequestFactory

from tests.tracker.test_settings import run_settings
from tracker.client_ip import client_ip, parse_trusted_proxies


def request(remote="203.0.113.7", forwarded=None):
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **extra)


def test_forwarded_for_is_ignored_without_trusted_proxies(settings):
    settings.TRUSTED_PROXIES = []
    assert client_ip(request("203.0.113.7", "198.51.100.1")) == "203.0.113.7"


def test_forwarded_for_is_ignored_from_a_peer_that_is_not_a_trusted_proxy(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    assert client_ip(request("203.0.113.7", "198.51.100.1")) == "203.0.113.7"


@pytest.mark.parametrize(
    ("forwarded", "client"),
    [
        ("198.51.100.1", "198.51.100.1"),
        # what the client wrote itself stands left of what the proxy appended: ignored
        ("6.6.6.6, 198.51.100.1", "198.51.100.1"),
        # two proxies of ours: the first address from the right that is not one of them
        ("6.6.6.6, 198.51.100.1, 10.1.2.3", "198.51.100.1"),
        ("not-an-address, 198.51.100.1", "198.51.100.1"),
        # only proxies of ours: the leftmost address they vouched for
        ("10.9.9.9, 10.1.2.3", "10.9.9.9"),
        ("garbage, 10.1.2.3", "10.1.2.3"),
        ("", "10.0.0.2"),
        ("198.51.100.1:52100", "198.51.100.1"),
        ("[2001:db8::5]:443", "2001:db8::5"),
        ("::ffff:198.51.100.1", "198.51.100.1"),
    ],
)
def test_behind_trusted_proxies_the_forwarded_client_is_used(settings, forwarded, client):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    assert client_ip(request("10.0.0.2", forwarded)) == client


def test_a_single_trusted_address_and_ipv6(settings):
    settings.TRUSTED_PROXIES = ["127.0.0.1", "fd00::/8"]
    assert client_ip(request("127.0.0.1", "198.51.100.1")) == "198.51.100.1"
    assert client_ip(request("fd00::1", "2001:db8::9")) == "2001:db8::9"
    assert client_ip(request("127.0.0.2", "198.51.100.1")) == "127.0.0.2"


def test_no_remote_address_is_none(settings):
    assert client_ip(request(remote="")) is None


def test_parse_names_a_bad_entry():
    assert [str(n) for n in parse_trusted_proxies(["10.0.0.1", " 192.168.0.0/16 "])] == [
        "10.0.0.1/32",
        "192.168.0.0/16",
    ]
    with pytest.raises(ValueError, match="'proxy.example.org'"):
        parse_trusted_proxies(["proxy.example.org"])


def test_settings_refuse_a_bad_trusted_proxy():
    result = run_settings(DJANGO_DEBUG="1", TRUSTED_PROXIES="10.0.0.0/8,proxy.example.org")
    assert result.returncode != 0
    assert "TRUSTED_PROXIES: 'proxy.example.org' is not an IP address" in result.stderr
