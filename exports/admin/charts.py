"""The dashboard's outcome tables and daily charts, as data the templates draw."""
from exports import dashboard
from exports.admin.jobs import STATUS_COLOURS, status_words

# Gridlines on the count axis: at most this many steps above zero.
MAX_Y_STEPS = 4


def outcome_rows(figures: dict) -> list[tuple[str, list[int]]]:
    """The rows of a dashboard's outcome table: last hour and last 7 days, a count per outcome."""
    return [
        (label, [figures[key][outcome] for outcome in dashboard.OUTCOMES])
        for label, key in (("last hour", "last_hour"), ("last 7 days", "last_7_days"))
    ]


def count_axis(peak: int) -> list[int]:
    """Evenly spaced whole-number ticks from 0 to at least `peak`, in steps of 1, 2 or 5 × 10ⁿ."""
    scale = 1
    while True:
        for multiple in (1, 2, 5):
            step = multiple * scale
            if peak <= step * MAX_Y_STEPS:
                top = max(-(-peak // step), 1) * step
                return list(range(0, top + 1, step))
        scale *= 10


def _day_bars(day: dict, x: float, bar_width: float, baseline: float, unit_height: float) -> list[dict]:
    """One day's stacked bars, outcomes first and jobs still active on top."""
    bars, y = [], baseline
    for key in (*dashboard.OUTCOMES, dashboard.ACTIVE):
        count = day["counts"].get(key, 0)
        if not count:
            continue
        y -= unit_height * count
        bars.append(
            {
                "x": round(x, 1),
                "y": round(y, 1),
                "width": round(bar_width, 1),
                "height": round(unit_height * count, 1),
                "colour": STATUS_COLOURS[key],
                "title": f"{day['date']:%b %d}: {count} {status_words(key)}",
            }
        )
    return bars


def daily_chart(
    daily: list[dict],
    width: int = 640,
    height: int = 220,
    title: str = "Jobs per day by outcome",
    css_class: str = "daily-chart",
) -> dict:
    """Geometry of a stacked bar chart of daily jobs by outcome, drawn as SVG by the template."""
    left, right, top, bottom = 40, 10, 10, 40
    plot_width, plot_height = width - left - right, height - top - bottom
    baseline = top + plot_height
    ticks = count_axis(max([sum(day["counts"].values()) for day in daily] + [0]))
    unit_height = plot_height / ticks[-1]
    step = plot_width / max(len(daily), 1)
    bars, labels = [], []
    for index, day in enumerate(daily):
        x = left + index * step + step * 0.15
        bars += _day_bars(day, x, step * 0.7, baseline, unit_height)
        labels.append(
            {
                "x": round(x + step * 0.35, 1),
                "text": f"{day['date']:%d %b}",
                "show": (len(daily) - 1 - index) % 2 == 0,
            }
        )
    return {
        "title": title,
        "css_class": css_class,
        "width": width,
        "height": height,
        "left": left,
        "baseline": baseline,
        "right_edge": width - right,
        "axis_title_x": (left + width - right) // 2,
        "bars": bars,
        "labels": labels,
        "label_y": baseline + 16,
        "y_ticks": [{"value": tick, "y": round(baseline - unit_height * tick, 1)} for tick in ticks],
        "legend": [
            {"key": status_words(key), "colour": STATUS_COLOURS[key]} for key in (*dashboard.OUTCOMES, dashboard.ACTIVE)
        ],
        "total": sum(sum(day["counts"].values()) for day in daily),
    }
