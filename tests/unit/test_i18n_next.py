"""Where the language switch returns to: only a path on this origin, read the way a browser
reads it (tab, CR and LF dropped, "\\" as "/"); anything else goes to the front page."""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

import pytest

from shared.i18n import local_path

ORIGIN = "https://id.stuudium.example"


def _as_a_browser_resolves(location: str) -> str:
    """The URL a browser goes to for this Location on ORIGIN (the WHATWG URL parser's steps
    that matter here: trimmed C0 controls and spaces, no tab/CR/LF, "\\" read as "/")."""
    cleaned = location.strip("".join(map(chr, range(0x21))))
    cleaned = "".join(c for c in cleaned if c not in "\t\r\n").replace("\\", "/")
    return urljoin(ORIGIN + "/page", cleaned)


@pytest.mark.parametrize(
    "target",
    [
        "/\t/evil.com",
        "/\n/evil.com",
        "/\r/evil.com",
        "\\\\evil.com",
        "/\\evil.com",
        "\\/evil.com",
        "//evil.com",
        "///evil.com",
        "https://evil.com",
        "HTTPS://evil.com/x",
        "https:/evil.com",
        " /x",
        "/x ",
        "\x00/x",
        "/\u00a0/evil.com",
        "/\u200b/evil.com",
        "javascript:alert(1)",
        "evil.com",
        "",
        None,
    ],
)
def test_refused_targets_fall_back_to_the_front_page(target: str | None) -> None:
    assert local_path(target) == "/"


@pytest.mark.parametrize(
    "target",
    [
        "/account",
        "/s/kool/login?ix=1",
        "/",
        "/account#top",
        "/s/kool/klass?nimi=3.a&p=2",
        "/päevik",
    ],
)
def test_paths_on_this_origin_are_kept(target: str) -> None:
    assert local_path(target) == target


def test_a_percent_encoded_tab_stays_a_path_here() -> None:
    # A browser does not decode %09 in a path: this asks our own server for "/%09/evil.com".
    target = "/%09/evil.com"
    assert local_path(target) == target
    went = urlsplit(_as_a_browser_resolves(local_path(target)))
    assert (went.scheme, went.netloc, went.path) == (
        "https",
        "id.stuudium.example",
        "/%09/evil.com",
    )


@pytest.mark.parametrize(
    "target",
    [
        "/\t/evil.com",
        "/\n/evil.com",
        "\\\\evil.com",
        "/\\evil.com",
        "//evil.com",
        "https://evil.com",
        "/%09/evil.com",
        "/%2F/evil.com",
        "/%5C/evil.com",
        " /x",
        "javascript:alert(1)",
        "/./\t/evil.com",
        "/..//evil.com",
        "/account",
        "/s/kool/login?ix=1",
    ],
)
def test_no_answer_leaves_this_origin(target: str) -> None:
    went = urlsplit(_as_a_browser_resolves(local_path(target)))
    assert (went.scheme, went.netloc) == ("https", "id.stuudium.example"), target


def test_the_browser_model_would_have_left() -> None:
    # The test's own check: without local_path these would go to evil.com.
    for target in ("/\t/evil.com", "/\\evil.com", "\\\\evil.com", " //evil.com"):
        assert urlsplit(_as_a_browser_resolves(target)).netloc == "evil.com", target
