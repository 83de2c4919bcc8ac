"""Line charts drawn with PIL: axes, ticks, lines and a legend; enough for training
curves without a plotting library."""

import math
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

from PIL import Image, ImageDraw

PALETTE = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40),
           (148, 103, 189), (140, 86, 75), (227, 119, 194), (127, 127, 127))
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 70, 20, 26, 36
LEGEND_LINE = 12


DASH = 6  # pixels drawn, then skipped, along a dashed line


@dataclass
class Line:
    """One curve: its legend label and points (xs, ys) of equal length; `colour` indexes
    PALETTE (None: the line's place in its chart), `dashed` draws it in dashes."""

    label: str
    xs: Sequence[float]
    ys: Sequence[float]
    colour: Optional[int] = None
    dashed: bool = False


def nice_ticks(low: float, high: float, count: int = 5) -> List[float]:
    """About `count` round tick values (1, 2 or 5 times a power of ten apart) covering [low, high]."""
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"cannot place ticks on [{low}, {high}]")
    if high <= low:
        low, high = low - 0.5 * (abs(low) or 1.0), high + 0.5 * (abs(high) or 1.0)
    raw = (high - low) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(low / step) * step
    return [first + i * step for i in range(int(math.ceil((high - first) / step)) + 1)]


def axis_ticks(low: float, high: float, limits: Optional[Tuple[float, float]] = None) -> List[float]:
    """nice_ticks of [low, high] without those outside `limits` (e.g. a percentage's
    (0, 100)): a flat line at 100 % gets an axis from 50 to 100, not to 150."""
    ticks = nice_ticks(low, high)
    if limits is None:
        return ticks
    return [tick for tick in ticks if limits[0] <= tick <= limits[1]]


def _label(value: float) -> str:
    return f"{value:.3g}" if value == 0 or 1e-3 <= abs(value) < 1e4 else f"{value:.1e}"


def _finite_points(line: Line) -> List[Tuple[float, float]]:
    return [(x, y) for x, y in zip(line.xs, line.ys) if math.isfinite(x) and math.isfinite(y)]


def line_chart(
    lines: Sequence[Line],
    title: str,
    x_label: str,
    size: Tuple[int, int] = (640, 360),
    y_limits: Optional[Tuple[float, float]] = None,
) -> Image.Image:
    """An RGB chart of `lines` on shared linear axes, with a legend in the upper right;
    the y axis stays within `y_limits` when given (see axis_ticks)."""
    points = [p for line in lines for p in _finite_points(line)]
    if not points:
        raise ValueError(f"chart {title!r} has no finite points to draw")
    x_ticks = nice_ticks(min(p[0] for p in points), max(p[0] for p in points))
    y_ticks = axis_ticks(min(p[1] for p in points), max(p[1] for p in points), y_limits)
    width, height = size
    chart = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(chart)
    left, right, top, bottom = MARGIN_LEFT, width - MARGIN_RIGHT, MARGIN_TOP, height - MARGIN_BOTTOM

    def to_pixel(x: float, y: float) -> Tuple[float, float]:
        fx = (x - x_ticks[0]) / (x_ticks[-1] - x_ticks[0])
        fy = (y - y_ticks[0]) / (y_ticks[-1] - y_ticks[0])
        return left + fx * (right - left), bottom - fy * (bottom - top)

    for x in x_ticks:
        px, _ = to_pixel(x, y_ticks[0])
        draw.line([(px, top), (px, bottom)], fill=(230, 230, 230))
        draw.text((px - 10, bottom + 4), _label(x), fill=(0, 0, 0))
    for y in y_ticks:
        _, py = to_pixel(x_ticks[0], y)
        draw.line([(left, py), (right, py)], fill=(230, 230, 230))
        draw.text((4, py - 6), _label(y), fill=(0, 0, 0))
    draw.rectangle([left, top, right, bottom], outline=(0, 0, 0))
    draw.text((left, 6), title, fill=(0, 0, 0))
    draw.text(((left + right) // 2 - 3 * len(x_label), height - 16), x_label, fill=(0, 0, 0))
    for number, line in enumerate(lines):
        colour = PALETTE[(number if line.colour is None else line.colour) % len(PALETTE)]
        pixels = [to_pixel(x, y) for x, y in _finite_points(line)]
        if len(pixels) == 1:
            draw.ellipse([pixels[0][0] - 2, pixels[0][1] - 2, pixels[0][0] + 2, pixels[0][1] + 2], fill=colour)
        elif pixels:
            _polyline(draw, pixels, colour, line.dashed)
        legend_y = top + 4 + number * LEGEND_LINE
        _polyline(draw, [(right - 170, legend_y + 6), (right - 152, legend_y + 6)], colour, line.dashed)
        draw.text((right - 148, legend_y), line.label[:26], fill=(0, 0, 0))
    return chart


def _polyline(draw: ImageDraw.ImageDraw, pixels: List[Tuple[float, float]], colour, dashed: bool) -> None:
    """A 2-pixel line through `pixels`; dashed: DASH pixels on, DASH off, along its length."""
    if not dashed:
        draw.line(pixels, fill=colour, width=2)
        return
    walked = 0.0  # length along the line, so the dashes continue across its points
    for (x0, y0), (x1, y1) in zip(pixels, pixels[1:]):
        length = math.hypot(x1 - x0, y1 - y0)
        at = 0.0
        while at < length:
            step = min(DASH - walked % DASH, length - at)
            if int(walked // DASH) % 2 == 0:
                f0, f1 = at / length, (at + step) / length
                draw.line([(x0 + f0 * (x1 - x0), y0 + f0 * (y1 - y0)), (x0 + f1 * (x1 - x0), y0 + f1 * (y1 - y0))],
                          fill=colour, width=2)
            at += step
            walked += step


def stack_vertically(charts: Sequence[Image.Image]) -> Image.Image:
    """Charts one above the other, on a white sheet as wide as the widest."""
    sheet = Image.new("RGB", (max(c.width for c in charts), sum(c.height for c in charts)), (255, 255, 255))
    top = 0
    for chart in charts:
        sheet.paste(chart, (0, top))
        top += chart.height
    return sheet
