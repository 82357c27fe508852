"""A small SVG chart writer for the report's plots: axes with linear or log y ticks, bars, step
lines, horizontal / vertical rules, rotated category labels, a legend.

Hand-written instead of matplotlib: a build's plots cost milliseconds instead of seconds (and
no 0.5 s import), and the bytes depend only on the numbers (fixed number formatting, no fonts
rasterised, no timestamps), so builds stay byte-identical."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape

FONT = "font-family=\"DejaVu Sans, Arial, sans-serif\""


def _f(v: float) -> str:
    """Coordinates with two decimals: the same string for the same float on every machine."""
    s = f"{v:.2f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def nice_ticks(lo: float, hi: float, n: int = 6) -> list[float]:
    """Round tick values covering [lo, hi] (1, 2 or 5 times a power of ten apart)."""
    if not math.isfinite(lo) or not math.isfinite(hi) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(n - 1, 1)
    mag = 10.0 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks = []
    k = 0
    while start + k * step <= hi + step * 1e-9:
        ticks.append(round(start + k * step, 12))
        k += 1
    return ticks


def tick_label(v: float) -> str:
    if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
        return f"{v:.3g}"
    return f"{v:.10g}" if v == int(v) else f"{v:.4g}"


@dataclass
class Chart:
    """One plot: data coordinates x in [x0, x1], y in [y0, y1] (log10 axis when ``log_y``)."""

    width: float
    height: float
    x0: float
    x1: float
    y0: float
    y1: float
    title: str = ""
    xlabel: str = ""
    ylabel: str = ""
    log_y: bool = False
    left: float = 70.0
    right: float = 20.0
    top: float = 34.0
    bottom: float = 50.0
    body: list[str] = field(default_factory=list)
    legend: list[tuple[str, str, str]] = field(default_factory=list)   # (label, color, kind)

    # -- coordinates ---------------------------------------------------------------
    def px(self, x: float) -> float:
        span = (self.x1 - self.x0) or 1.0
        return self.left + (x - self.x0) / span * (self.width - self.left - self.right)

    def py(self, y: float) -> float:
        lo, hi, v = self.y0, self.y1, y
        if self.log_y:
            lo, hi, v = math.log10(lo), math.log10(hi), math.log10(max(y, self.y0))
        span = (hi - lo) or 1.0
        v = min(max(v, lo), hi)
        return self.height - self.bottom - (v - lo) / span * (self.height - self.top - self.bottom)

    # -- marks -----------------------------------------------------------------------
    def bars(self, xs: list[float], heights: list[float], width: float, color: str, label: str = "") -> None:
        base = self.py(self.y0)
        for x, h in zip(xs, heights):
            top = self.py(h)
            if top >= base:
                continue
            self.body.append(f'<rect x="{_f(self.px(x - width / 2))}" y="{_f(top)}" '
                             f'width="{_f(self.px(x + width / 2) - self.px(x - width / 2))}" '
                             f'height="{_f(base - top)}" fill="{color}"/>')
        if label:
            self.legend.append((label, color, "box"))

    def step(self, xs: list[float], ys: list[float], color: str, label: str = "") -> None:
        """A step line changing value half-way between points (matplotlib's where="mid")."""
        if not xs:
            return
        pts = [(xs[0] - 0.5, ys[0])]
        for i in range(1, len(xs)):
            mid = (xs[i - 1] + xs[i]) / 2
            pts += [(mid, ys[i - 1]), (mid, ys[i])]
        pts.append((xs[-1] + 0.5, ys[-1]))
        path = " ".join(f"{_f(self.px(x))},{_f(self.py(y))}" for x, y in pts)
        self.body.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="1.5"/>')
        if label:
            self.legend.append((label, color, "line"))

    def hline(self, y: float, color: str, dash: str = "", label: str = "") -> None:
        self._rule(self.left, self.width - self.right, self.py(y), self.py(y), color, dash, label)

    def vline(self, x: float, color: str, dash: str = "", label: str = "") -> None:
        self._rule(self.px(x), self.px(x), self.top, self.height - self.bottom, color, dash, label)

    def _rule(self, x1: float, x2: float, y1: float, y2: float, color: str, dash: str, label: str) -> None:
        d = f' stroke-dasharray="{dash}"' if dash else ""
        self.body.append(f'<line x1="{_f(x1)}" x2="{_f(x2)}" y1="{_f(y1)}" y2="{_f(y2)}" stroke="{color}" '
                         f'stroke-width="1.5"{d}/>')
        if label:
            self.legend.append((label, color, "dash" if dash else "line"))

    def text(self, x: float, y: float, s: str, size: float = 7.0) -> None:
        self.body.append(f'<text x="{_f(self.px(x))}" y="{_f(self.py(y) - 2)}" font-size="{_f(size)}" '
                         f'text-anchor="middle">{escape(s)}</text>')

    # -- axes and rendering ------------------------------------------------------------
    def _y_ticks(self) -> list[float]:
        if not self.log_y:
            return [t for t in nice_ticks(self.y0, self.y1) if self.y0 <= t <= self.y1]
        lo, hi = math.floor(math.log10(self.y0)), math.ceil(math.log10(self.y1))
        return [10.0 ** k for k in range(lo, hi + 1) if self.y0 <= 10.0 ** k <= self.y1]

    def _axes(self, categories: list[tuple[float, str]] | None, grid: bool) -> list[str]:
        out = []
        x_l, x_r, y_b = self.left, self.width - self.right, self.height - self.bottom
        for t in self._y_ticks():
            y = self.py(t)
            if grid:
                out.append(f'<line x1="{_f(x_l)}" x2="{_f(x_r)}" y1="{_f(y)}" y2="{_f(y)}" stroke="#dddddd"/>')
            out.append(f'<text x="{_f(x_l - 4)}" y="{_f(y + 3)}" font-size="8" text-anchor="end">'
                       f'{escape(tick_label(t))}</text>')
        if categories is None:
            for t in nice_ticks(self.x0, self.x1, 8):
                if self.x0 <= t <= self.x1:
                    x = self.px(t)
                    out.append(f'<line x1="{_f(x)}" x2="{_f(x)}" y1="{_f(y_b)}" y2="{_f(y_b + 4)}" stroke="#000"/>')
                    out.append(f'<text x="{_f(x)}" y="{_f(y_b + 14)}" font-size="8" text-anchor="middle">'
                               f'{escape(tick_label(t))}</text>')
        else:
            for x, label in categories:
                px = self.px(x)
                out.append(f'<text transform="translate({_f(px + 3)},{_f(y_b + 6)}) rotate(-70)" font-size="7" '
                           f'text-anchor="end">{escape(label)}</text>')
        out.append(f'<rect x="{_f(x_l)}" y="{_f(self.top)}" width="{_f(x_r - x_l)}" height="{_f(y_b - self.top)}" '
                   f'fill="none" stroke="#000"/>')
        return out

    def _legend(self, corner: str) -> list[str]:
        if not self.legend:
            return []
        w = 24 + 5.2 * max(len(label) for label, _, _ in self.legend)
        h = 6 + 13 * len(self.legend)
        x = self.width - self.right - w - 6 if corner.endswith("right") else self.left + 6
        y = self.top + 6 if corner.startswith("upper") else self.height - self.bottom - h - 6
        out = [(f'<rect x="{_f(x)}" y="{_f(y)}" width="{_f(w)}" height="{_f(h)}" fill="#ffffff" '
                f'fill-opacity="0.9" stroke="#cccccc"/>')]
        for i, (label, color, kind) in enumerate(self.legend):
            cy = y + 10 + 13 * i
            if kind == "box":
                out.append(f'<rect x="{_f(x + 5)}" y="{_f(cy - 4)}" width="12" height="8" fill="{color}"/>')
            else:
                dash = ' stroke-dasharray="4,3"' if kind == "dash" else ""
                out.append(f'<line x1="{_f(x + 4)}" x2="{_f(x + 18)}" y1="{_f(cy)}" y2="{_f(cy)}" '
                           f'stroke="{color}" stroke-width="1.5"{dash}/>')
            out.append(f'<text x="{_f(x + 22)}" y="{_f(cy + 3)}" font-size="8">{escape(label)}</text>')
        return out

    def render(self, categories: list[tuple[float, str]] | None = None, grid: bool = True,
               legend_corner: str = "upper right") -> bytes:
        """The SVG document (``categories``: labelled x positions instead of numeric x ticks)."""
        mid_y = (self.top + self.height - self.bottom) / 2
        head = [(f'<svg xmlns="http://www.w3.org/2000/svg" width="{_f(self.width)}" height="{_f(self.height)}" '
                 f'viewBox="0 0 {_f(self.width)} {_f(self.height)}" {FONT}>'),
                f'<rect width="{_f(self.width)}" height="{_f(self.height)}" fill="#ffffff"/>',
                f'<text x="{_f(self.width / 2)}" y="18" font-size="12" text-anchor="middle">{escape(self.title)}</text>',
                (f'<text transform="translate(14,{_f(mid_y)}) rotate(-90)" font-size="9" text-anchor="middle">'
                 f'{escape(self.ylabel)}</text>')]
        if self.xlabel:
            head.append(f'<text x="{_f((self.left + self.width - self.right) / 2)}" y="{_f(self.height - 8)}" '
                        f'font-size="9" text-anchor="middle">{escape(self.xlabel)}</text>')
        parts = head + self._axes(categories, grid) + self.body + self._legend(legend_corner) + ["</svg>", ""]
        return "\n".join(parts).encode("utf-8")
