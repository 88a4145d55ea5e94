"""What the phone journeys and the axe walk check on every page: a way onward, the schools'
names in the bar, axe-core's serious and critical violations, and tap-target sizes.

axe-core comes from npm (tests/e2e/package.json, pinned in package-lock.json; `make test`
runs `npm ci --prefix tests/e2e` when it is missing) and is injected into the page under test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"
PHONE: dict[str, Any] = {
    "viewport": {"width": 390, "height": 844},
    "is_mobile": True,
    "has_touch": True,
}
BROWSER_LOCALES = {"et": "et-EE", "ru": "ru-RU", "en": "en-GB"}
# WCAG 2.0/2.1/2.2 levels A and AA, and axe's best practices.
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa", "best-practice"]
BLOCKING = ("serious", "critical")
MIN_TARGET = 24  # WCAG 2.2 SC 2.5.8 Target Size (Minimum), CSS px
MIN_MAIN_ACTION = 44  # the main actions: as tall as a finger (WCAG 2.5.5's size)

_ONWARD_JS = """() => {
  const shown = (el) => {
    const r = el.getBoundingClientRect();
    const s = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && !el.closest('[hidden]');
  };
  return [...document.querySelectorAll('a[href], button')]
    .filter((el) => !el.closest('form.lang-switch') && !el.disabled && shown(el))
    .map((el) => (el.tagName + ' ' + (el.id || el.textContent.trim())).slice(0, 80));
}"""

# Every visible interactive element smaller than 24x24 CSS px, and every main action lower than
# 44 px. Exempt (WCAG 2.5.8's inline exception): a link inside a sentence. A checkbox or radio
# passes when its label (the larger target that also toggles it) does.
_TARGETS_JS = """([minimum, main]) => {
  const shown = (el) => {
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && getComputedStyle(el).visibility !== 'hidden'
      && !el.closest('[hidden]');
  };
  const big = (el, size) => {
    const r = el.getBoundingClientRect();
    return r.width >= size - 0.5 && r.height >= size - 0.5;
  };
  const inSentence = (el) => {
    if (el.tagName !== 'A' || getComputedStyle(el).display !== 'inline') return false;
    const block = el.parentElement;
    return block && block.textContent.trim().length > el.textContent.trim().length;
  };
  const labelOf = (input) => input.closest('label')
    || (input.id && document.querySelector('label[for="' + CSS.escape(input.id) + '"]'));
  const describe = (el) => {
    const r = el.getBoundingClientRect();
    const name = (el.id ? '#' + el.id : '') || (el.getAttribute('name') ? '[name=' +
      el.getAttribute('name') + ']' : '') || el.textContent.trim().slice(0, 30);
    return el.tagName.toLowerCase() + ' ' + name + ' ' + Math.round(r.width) + 'x' +
      Math.round(r.height);
  };
  const problems = [];
  const selector = 'a[href], button, input:not([type=hidden]), select, textarea, summary, label';
  for (const el of document.querySelectorAll(selector)) {
    if (!shown(el) || inSentence(el)) continue;
    if (el.tagName === 'LABEL') {
      const control = el.control;
      if (!control || !['checkbox', 'radio'].includes(control.type)) continue;
    }
    if (el.tagName === 'INPUT' && ['checkbox', 'radio'].includes(el.type)) {
      const label = labelOf(el);
      if (big(el, minimum) || (label && shown(label) && big(label, minimum))) continue;
      problems.push('under ' + minimum + ' px: ' + describe(el));
      continue;
    }
    if (!big(el, minimum)) problems.push('under ' + minimum + ' px: ' + describe(el));
    const primary = (el.matches('button, input[type=submit]')
      && (el.type === 'submit') && !el.closest('form.lang-switch'))
      || el.matches('a.button');
    if (primary && !el.matches('.secondary')
        && el.getBoundingClientRect().height < main - 0.5) {
      problems.push('main action under ' + main + ' px high: ' + describe(el));
    }
  }
  return problems;
}"""

_AXE_JS = """async (tags) => {
  const result = await axe.run(document, {runOnly: {type: 'tag', values: tags},
                                          resultTypes: ['violations']});
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    targets: v.nodes.map((n) => n.target.join(' ')),
  }));
}"""


def axe_script() -> Path:
    """axe.min.js from tests/e2e/node_modules, or a failure saying how to install it."""
    if not AXE.exists():
        pytest.fail(
            f"{AXE} is missing: run `npm ci --prefix tests/e2e --no-audit --no-fund` "
            "(`make test` does it when missing)",
            pytrace=False,
        )
    return AXE


def axe_violations(page: Any, where: str) -> list[str]:
    """axe-core's serious and critical violations on the page: rule, page, targets."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(axe_script()))
    found = page.evaluate(_AXE_JS, AXE_TAGS)
    return [
        f"{v['id']} ({v['impact']}: {v['help']}) on {where}: {', '.join(v['targets'][:6])}"
        for v in found
        if v["impact"] in BLOCKING
    ]


def tap_target_problems(page: Any, where: str) -> list[str]:
    """Visible interactive elements under 24x24 CSS px (inline links exempt) and main actions
    under 44 px high, each with the page."""
    found = page.evaluate(_TARGETS_JS, [MIN_TARGET, MIN_MAIN_ACTION])
    return [f"{problem} on {where}" for problem in found]


def ways_onward(page: Any) -> list[str]:
    """The page's visible, enabled links and buttons other than the language switch."""
    return list(page.evaluate(_ONWARD_JS))


def assert_way_onward(page: Any) -> None:
    """The page has at least one visible enabled link or button besides the language switch."""
    assert ways_onward(page), f"no way onward (link or button) on {page.url}"


def assert_school_in_bar(page: Any, name: str, *, here: bool) -> None:
    """The school's name is visible in the school's bar: in the strip (this school marked, the
    others as jumps) or, when the strip collapsed on a phone, in the "Minu koolid" menu."""
    from playwright.sync_api import expect

    bar = page.locator("header.bar")
    kind = "a.school-here" if here else "a.school-jump"
    in_strip = bar.locator(kind, has_text=name)
    if in_strip.count() and in_strip.first.is_visible():
        if here:
            expect(in_strip.locator(".school-name")).to_be_visible()
            expect(in_strip.locator(".school-name")).to_contain_text(name.split()[-1])
        return
    menu = bar.locator("details.school-menu")
    assert menu.count() and menu.is_visible(), f"{name} is not visible in the bar of {page.url}"
    menu.locator("summary").click()
    option = menu.locator("a.school-option", has_text=name)
    expect(option).to_be_visible()
    menu.locator("summary").click()
