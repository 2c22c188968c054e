"""The SVG charts as pure functions: one shape per value, sizes proportional to the values, empty and
zero data drawn without dividing by zero, every text from data escaped, and well-formed XML; plus the
choice of per-hour or per-day buckets for the volume chart."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest
from jinja2 import Environment
from markupsafe import Markup

from app.ui.charts import (
    Series,
    bar_chart,
    column_chart,
    data_table,
    duration,
    line_chart,
    nice_max,
    number,
    percent,
    ticks,
)
from app.ui.dashboard_data import choose_buckets, fold, severity_key

NS = {"svg": "http://www.w3.org/2000/svg"}


def parse(markup: str) -> ET.Element:
    return ET.fromstring(markup)


def shapes(root: ET.Element, tag: str, cls: str) -> list[ET.Element]:
    return [e for e in root.iter(f"{{{NS['svg']}}}{tag}") if e.get("class") == cls]


def texts(root: ET.Element, cls: str) -> list[str]:
    return [e.text or "" for e in shapes(root, "text", cls)]


def test_bar_chart_draws_one_bar_per_category_with_lengths_proportional_to_values() -> None:
    svg = bar_chart("By type", [("SETTLEMENT_FAIL", 4), ("TRADE_MISMATCH", 2), ("FX_RATE_STALE", 1)],
                    desc="Exceptions per type", axis_label="Exceptions")  # fmt: skip
    assert isinstance(svg, Markup)
    root = parse(svg)
    assert root.get("role") == "img" and root.get("aria-label") == "By type. Exceptions per type"
    assert root.find("svg:title", NS).text == "By type"  # type: ignore[union-attr]
    assert root.find("svg:desc", NS).text == "Exceptions per type"  # type: ignore[union-attr]
    bars = shapes(root, "rect", "bar")
    assert [b.get("data-label") for b in bars] == ["SETTLEMENT_FAIL", "TRADE_MISMATCH", "FX_RATE_STALE"]
    widths = [float(b.get("width", "0")) for b in bars]
    assert widths[0] == pytest.approx(2 * widths[1]) and widths[1] == pytest.approx(2 * widths[2])
    assert widths[0] == pytest.approx(350 * 4 / 5)  # 350 px of plot for a scale of 0..5
    assert texts(root, "value") == ["4", "2", "1"]
    assert texts(root, "label") == ["SETTLEMENT_FAIL", "TRADE_MISMATCH", "FX_RATE_STALE"]
    assert texts(root, "axis-label") == ["Exceptions"]
    assert texts(root, "tick") == ["0", "1", "2", "3", "4", "5"]


def test_bar_chart_value_labels_use_the_given_format_and_zero_bars_have_no_length() -> None:
    root = parse(bar_chart("Outcomes", [("Auto-resolved", 2), ("Rejected", 0)], desc="d", axis_label="Cases",
                           value_label=lambda v: f"{number(v)} ({percent(v / 2)})"))  # fmt: skip
    assert texts(root, "value") == ["2 (100 %)", "0 (0 %)"]
    assert [float(b.get("width", "-1")) for b in shapes(root, "rect", "bar")] == [350.0, 0.0]


def test_column_chart_stacks_series_per_bucket_with_heights_proportional_to_values() -> None:
    series = [Series("HIGH", [3, 0, 1]), Series("LOW", [1, 0, 0])]
    root = parse(column_chart("Volume", ["1 Nov", "2 Nov", "3 Nov"], series, desc="d", x_label="Day (UTC)",
                              y_label="Exceptions received"))  # fmt: skip
    segments = shapes(root, "rect", "seg")
    assert [(s.get("data-series"), s.get("data-value")) for s in segments] == [
        ("HIGH", "3"), ("LOW", "1"), ("HIGH", "1")
    ]  # fmt: skip
    heights = [float(s.get("height", "0")) for s in segments]
    assert heights[0] == pytest.approx(3 * heights[1]) and heights[2] == pytest.approx(heights[1])
    assert heights[0] + heights[1] == pytest.approx(206 * 4 / 5)  # a total of 4 on a 0..5 axis of 206 px
    first_high, first_low = segments[0], segments[1]  # LOW sits on top of HIGH in the same column
    assert float(first_low.get("y", "0")) + heights[1] == pytest.approx(float(first_high.get("y", "0")))
    assert texts(root, "value") == ["4", "1"]  # totals above the non-empty columns only
    assert texts(root, "legend") == ["HIGH", "LOW"]
    assert texts(root, "axis-label") == ["Day (UTC)", "Exceptions received"]
    assert [e.text for e in root.iter(f"{{{NS['svg']}}}text") if e.get("class") == "tick x-tick"] == [
        "1 Nov", "2 Nov", "3 Nov"
    ]  # fmt: skip


def test_line_chart_draws_one_line_per_series_with_a_marker_per_point() -> None:
    series = [Series("Received", [0, 4, 2]), Series("Escalated", [0, 1, 0])]
    root = parse(line_chart("Escalations", ["a", "b", "c"], series, desc="d", x_label="Day", y_label="Cases"))
    lines = shapes(root, "polyline", "line")
    assert [line.get("data-series") for line in lines] == ["Received", "Escalated"]
    received = [tuple(map(float, p.split(","))) for p in (lines[0].get("points") or "").split()]
    assert len(received) == 3
    base = received[0][1]  # value 0 sits on the axis
    assert base - received[1][1] == pytest.approx(2 * (base - received[2][1]))
    assert lines[0].get("stroke-dasharray") != lines[1].get(
        "stroke-dasharray"
    )  # not told apart by color alone
    points = [e for e in root.iter() if e.get("class") == "point"]
    assert len(points) == 6
    assert {e.tag.split("}")[1] for e in points} == {"circle", "rect"}  # a marker shape per series
    assert texts(root, "value") == ["4", "2", "1"]  # non-zero points are labelled


def test_empty_and_zero_data_are_drawn_without_errors() -> None:
    for svg in (
        bar_chart("Nothing", [], desc="d", axis_label="x"),
        column_chart("Nothing", [], [], desc="d", x_label="x", y_label="y"),
        line_chart("Nothing", [], [Series("a", [])], desc="d", x_label="x", y_label="y"),
    ):
        root = parse(svg)
        assert texts(root, "no-data") == ["No data yet"] and root.get("role") == "img"
    zeros = parse(
        column_chart("Zeros", ["a", "b"], [Series("s", [0, 0])], desc="d", x_label="x", y_label="y")
    )
    assert shapes(zeros, "rect", "seg") == [] and texts(zeros, "value") == []
    assert texts(zeros, "tick") == ["0", "1"]
    flat = parse(bar_chart("Zero", [("a", 0)], desc="d", axis_label="x"))
    assert [b.get("width") for b in shapes(flat, "rect", "bar")] == ["0.00"]
    with pytest.raises(ValueError, match="has 1 values for 2 buckets"):
        column_chart("Bad", ["a", "b"], [Series("s", [1])], desc="d", x_label="x", y_label="y")


def test_every_text_from_data_is_escaped() -> None:
    evil = "<script>alert(\"x\")</script> & 'more'"
    outputs = [
        bar_chart(evil, [(evil, 1)], desc=evil, axis_label=evil),
        column_chart(evil, [evil], [Series(evil, [1])], desc=evil, x_label=evil, y_label=evil),
        line_chart(evil, [evil], [Series(evil, [1])], desc=evil, x_label=evil, y_label=evil),
        data_table(evil, [evil], [[evil]]),
    ]
    for markup in outputs:
        assert "<script>" not in markup and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in markup
        assert "&amp;" in markup and "&apos;more&apos;" in markup
        root = ET.fromstring(markup)  # still well-formed, the attributes included
        assert evil in "".join(root.itertext())  # parsed back, the text is the original one
        # marked safe: Jinja's autoescape leaves it as it is (no double escaping)
        rendered = Environment(autoescape=True).from_string("{{ chart }}").render(chart=markup)
        assert rendered == str(markup)


def test_data_table_has_column_and_row_headers() -> None:
    table = data_table("By type", ["Type", "Exceptions"], [["SETTLEMENT_FAIL", 2], ["FX_RATE_STALE", 1]])
    assert table.startswith('<details class="chart-data"><summary>Data table: By type</summary>')
    assert '<th scope="col">Type</th><th scope="col">Exceptions</th>' in table
    assert '<tr><th scope="row">SETTLEMENT_FAIL</th><td>2</td></tr>' in table
    assert "No data" in data_table("Empty", ["A", "B"], [])


def test_scales_ticks_and_formats() -> None:
    assert [nice_max(v) for v in (0, 1, 2, 3, 7, 12, 23, 0.3)] == [1, 1, 2, 5, 10, 20, 25, 0.5]
    assert ticks(2) == [0, 1, 2] and ticks(10) == [0, 2, 4, 6, 8, 10]
    assert ticks(0.5) == pytest.approx([0, 0.1, 0.2, 0.3, 0.4, 0.5])
    assert [number(v) for v in (7, 7.0, 2.5, 1 / 3)] == ["7", "7", "2.5", "0.33"]
    assert [percent(v) for v in (None, 0.5, 1 / 3, 0)] == ["—", "50 %", "33.3 %", "0 %"]
    assert [duration(s) for s in (None, 0.5, 160, 5400, 3 * 86400)] == [
        "—",
        "0.5 s",
        "2.7 min",
        "1.5 h",
        "3 d",
    ]


NOW = datetime(2026, 11, 22, 15, 30, tzinfo=UTC)


def test_volume_is_per_hour_when_the_data_spans_less_than_two_days() -> None:
    hours = [datetime(2026, 11, 22, 9, tzinfo=UTC), datetime(2026, 11, 22, 14, tzinfo=UTC)]
    unit, starts = choose_buckets(hours, NOW)
    assert unit == "hour" and len(starts) == 24 and starts[-1] == hours[-1]
    assert starts[0] == hours[-1] - timedelta(hours=23)
    counts = {(hours[0], "HIGH"): 2, (hours[1], "HIGH"): 1, (hours[1], "LOW"): 3}
    series = fold(counts, unit, starts, ["HIGH", "LOW"])
    assert (
        series["HIGH"][starts.index(hours[0])] == 2 and sum(series["HIGH"]) == 3 and sum(series["LOW"]) == 3
    )


def test_volume_is_per_day_over_fourteen_days_otherwise() -> None:
    hours = [datetime(2026, 11, 12, 23, tzinfo=UTC), datetime(2026, 11, 22, 1, tzinfo=UTC)]
    unit, starts = choose_buckets(hours, NOW)
    assert unit == "day" and len(starts) == 14
    assert starts[0] == datetime(2026, 11, 9, tzinfo=UTC) and starts[-1] == datetime(2026, 11, 22, tzinfo=UTC)
    series = fold({(hours[0], "x"): 2, (hours[1], "x"): 5}, unit, starts, ["x"])
    assert series["x"][starts.index(datetime(2026, 11, 12, tzinfo=UTC))] == 2 and series["x"][-1] == 5
    assert choose_buckets([], NOW) == ("day", starts)


def test_severities_sort_most_severe_first() -> None:
    assert sorted(["LOW", "UNKNOWN", "CRITICAL", "ODD", "MEDIUM", "HIGH"], key=severity_key) == [
        "CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN", "ODD"
    ]  # fmt: skip
