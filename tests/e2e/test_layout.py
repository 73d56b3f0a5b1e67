"""Every page fits the window: Home and each page under pages/, opened in Chromium at 1024, 1400 and 1920 px
wide, with nothing in the main area running past its right edge (cut off at the window's edge, or under the
column beside it) and no text cut short with an ellipsis. Each page and width leaves its screenshot in
artifacts/screenshots/layout/ (kept, pass or fail: the artifact to look at).

What counts: every element inside ``[data-testid="stMain"]`` (and inside the live views' shadow roots) whose
box's right edge is more than 1 px past the content box of the main block, or past the window; the main
containers scrolling sideways; text whose CSS cuts it with an ellipsis (a metric's value, a button's label).
Things meant to scroll inside themselves (a dataframe's grid, a code block) are not counted: only their own box.
"""

from __future__ import annotations

import re

import pytest
from st_browser import ROOT, SCREENSHOTS, errors_on, open_page, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

WIDTHS = (1024, 1400, 1920)
HEIGHT = 900
LAYOUT = SCREENSHOTS / "layout"
PAGES = {"Home": "/"} | {
    re.sub(r"^\d+_", "", p.stem): "/" + re.sub(r"^\d+_", "", p.stem) for p in sorted((ROOT / "pages").glob("*.py"))
}
SLOW_MS = 300_000  # Interpolate and Compare's first runs on 2 busy cores

# Everything past the right edge, by a short description of the element (test id, tag, class, text).
OVERFLOW = """
() => {
  const main = document.querySelector('[data-testid="stMain"]');
  const block = main.querySelector('[data-testid="stMainBlockContainer"]') || main;
  const r = block.getBoundingClientRect(), cs = getComputedStyle(block);
  const edge = Math.min(r.right - parseFloat(cs.paddingRight), window.innerWidth);
  // Their own box must fit; what is inside scrolls (or is clipped) on purpose.
  const SCROLLERS = '[data-testid="stDataFrame"], [data-testid="stDataFrameResizable"], '
    + '[data-testid="stCode"], pre, [data-testid="stElementToolbar"], [data-testid="stTooltipContent"]';
  const describe = (el) => {
    const box = el.closest('[data-testid]');
    const id = box ? box.getAttribute('data-testid') : '';
    const cls = (typeof el.className === 'string' ? el.className : '').split(' ').filter(Boolean).slice(0, 2).join('.');
    const text = (el.getAttribute('aria-label') || el.innerText || el.textContent || '').trim().slice(0, 50);
    return `${id} <${el.tagName.toLowerCase()}${cls ? '.' + cls : ''}> "${text.replace(/\\s+/g, ' ')}"`;
  };
  const visible = (el, b) => {
    if (b.width < 1 || b.height < 1) return false;
    const s = getComputedStyle(el);
    return s.visibility !== 'hidden' && s.display !== 'none' && !el.closest('details:not([open]) > :not(summary)');
  };
  // An SVG drawing (a plotly figure) is clipped at its outermost <svg>: that box must fit the page, and what
  // is drawn inside must fit that box (a title or legend past it is cut), except plotly's invisible drag handles.
  const outerSvg = (el) => {
    let s = el.ownerSVGElement;
    while (s && s.ownerSVGElement) s = s.ownerSVGElement;
    return s;
  };
  const over = new Map(), cut = [];
  const walk = (root) => {
    for (const el of root.querySelectorAll('*')) {
      if (el.shadowRoot) walk(el.shadowRoot);
      const inner = el.parentElement && el.parentElement.closest(SCROLLERS);
      if (inner || el.closest('.katex-mathml, g.draglayer')) continue;  // KaTeX's MathML copy is hidden
      const b = el.getBoundingClientRect();
      if (!visible(el, b)) continue;
      const svg = outerSvg(el);
      const limit = svg ? svg.getBoundingClientRect().right : edge;
      const drawn = !svg || el.matches('text, g.legend, g.g-gtitle');  // lines and shapes are clipped on purpose
      const where = `${Math.round(b.right)} > ${Math.round(limit)}${svg ? ' (its figure)' : ''}`;
      if (drawn && b.right > limit + 1) over.set(el, `${describe(el)} right ${where}`);
      const s = getComputedStyle(el);
      if (s.textOverflow === 'ellipsis' && el.scrollWidth > el.clientWidth + 1 && el.innerText.trim())
        cut.push(`${describe(el)} (${el.scrollWidth} px of text in ${el.clientWidth})`);
    }
  };
  walk(block);
  const scrolls = [main, block, document.querySelector('[data-testid="stAppViewContainer"]')]
    .filter((e) => e && e.scrollWidth > e.clientWidth + 1)
    .map((e) => `${e.getAttribute('data-testid')} scrolls sideways (${e.scrollWidth} > ${e.clientWidth})`);
  // The outermost offenders are the causes: drop an element whose parent (or shadow host) is listed too.
  const parent = (el) => el.parentElement || (el.parentNode && el.parentNode.host) || null;
  const causes = [...over].filter(([el]) => !over.has(parent(el))).map(([, text]) => text);
  return { over: [...new Set(causes)], cut: [...new Set(cut)], scrolls };
}
"""

SETTLED = """
() => [...document.querySelectorAll('[data-testid="stMain"] img')].every((i) => i.complete)
"""


def _settle(page) -> None:
    """Images loaded and charts laid out (plotly and Vega draw after the script run has finished)."""
    page.wait_for_function(SETTLED, timeout=60_000)
    page.wait_for_timeout(1500)


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("name", list(PAGES))
def test_the_page_fits_the_window(browser, server, name, width):
    context = browser.new_context(viewport={"width": width, "height": HEIGHT})
    context.set_default_timeout(60_000)
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    try:
        open_page(page, server.url, PAGES[name], timeout=SLOW_MS)
        _settle(page)
        found = page.evaluate(OVERFLOW)
        LAYOUT.mkdir(parents=True, exist_ok=True)
        screenshot(page, f"layout/{name}-{width}")
        assert errors_on(page) == []
        nav = [t.split()[-1] for t in page.locator('[data-testid="stSidebarNav"] a').all_inner_texts()]
        assert nav[:2] == ["Home", "Train"], nav  # app.py's navigation, even for a page opened by its URL first
        problems = found["scrolls"] + [f"overflows: {o}" for o in found["over"]] + [f"cut: {c}" for c in found["cut"]]
        assert not problems, f"{name} at {width} px:\n" + "\n".join(problems)
        infinite = [m for m in console if "Infinite extent" in m]
        assert not infinite, infinite  # a chart fed NaN or infinite values draws flat
    finally:
        context.close()
