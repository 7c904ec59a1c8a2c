"""The shipped assets keep the security rules the CSP and the XSS defence rely on: no inline script or
style, no markup built from strings, nothing fetched from elsewhere; every referenced asset exists. The
pages are checked as served: assembled from the shared shell and each page's ``<main>``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sloguard.ui import routes
from sloguard.ui.routes import _load_static

STATIC = Path(__file__).resolve().parents[3] / "sloguard" / "ui" / "static"
SCRIPTS = sorted(STATIC.glob("*.js"))
SERVED = _load_static()
PAGES = sorted(routes.PAGES)

#: Sinks that parse a string as markup or code.
SINKS = (
    "innerHTML",
    "outerHTML",
    "insertAdjacentHTML",
    "document.write",
    "eval(",
    "new Function",
    "javascript:",
)


def code_of(script: Path) -> str:
    """The script without its comments (which may name the sinks they avoid)."""
    text = re.sub(r"/\*.*?\*/", "", script.read_text(), flags=re.S)
    return re.sub(r"^\s*//.*$", "", text, flags=re.M)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_never_parse_strings_as_markup_or_code(script: Path) -> None:
    text = code_of(script)
    for sink in SINKS:
        assert sink not in text, f"{script.name} uses {sink}"
    assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in text and "javascript:" not in text


@pytest.mark.parametrize("page", PAGES)
def test_pages_have_no_inline_script_or_style_and_only_local_assets(page: str) -> None:
    html = SERVED[page][0].decode()
    assert "<style" not in html and " style=" not in html
    assert not re.search(r"\son[a-z]+\s*=", html), "inline event handler"
    for m in re.finditer(r"<script([^>]*)>(.*?)</script>", html, re.S):
        assert 'src="/static/' in m.group(1) and not m.group(2).strip(), "inline script"
    refs = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
    assert refs
    for ref in refs:
        assert (STATIC / ref.removeprefix("/static/")).is_file(), ref
    for url in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert url.startswith("/") and not url.startswith("//"), url


def test_the_attribute_allow_list_has_no_event_handlers_or_style() -> None:
    common = (STATIC / "common.js").read_text()
    allowed = re.search(r"const ATTRS = new Set\(\[(.*?)\]\);", common, re.S)
    assert allowed is not None
    names = re.findall(r'"([^"]+)"', allowed.group(1))
    assert names and not [n for n in names if n.startswith("on") or n in ("style", "src", "srcdoc", "action")]


@pytest.mark.parametrize("page", PAGES)
def test_each_page_is_the_shell_around_its_own_main(page: str) -> None:
    html = SERVED[page][0].decode()
    title, data_page, scripts, current = routes.PAGES[page]
    assert not re.search(r"\{(title|scripts|page|nav|main)\}", html)  # every placeholder filled
    assert html.count("<head>") == 1 and f"<title>{title} · sloguard</title>" in html
    assert f'<body data-page="{data_page}">' in html
    assert re.findall(r'<script src="/static/([^"]+)"', html) == ["common.js", *scripts]
    assert html.count('aria-current="page"') == (current is not None)
    main = (STATIC / f"{data_page}.main.html").read_text()
    assert f"<main>\n{main}</main>" in html


def test_shell_and_main_parts_are_not_served() -> None:
    assert not [n for n in SERVED if n == "shell.html" or n.endswith(".main.html")]
