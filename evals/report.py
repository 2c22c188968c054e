"""A run folder: ``results.json`` (everything), ``summary.md`` (for a PR comment), ``report.html``
(self-contained: inline CSS and SVG, no script, no external asset, opens from disk or a CI artifact),
and ``junit.xml`` for CI dashboards.

The HTML holds per-slice tables, one confusion matrix per decision field drawn as SVG (cells shaded
by count, the diagonal outlined), and for every failing case its checks side by side with the
evidence trail the graph recorded, so a reader sees why a decision went the way it did.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, select_autoescape
from markupsafe import Markup, escape

from evals.compare import junit_xml
from evals.run import RunResult, headline


def _pct(value: Any) -> str:
    return "—" if value is None else f"{100 * float(value):.1f}%"


def confusion_svg(labels: list[str], matrix: list[list[int]], title: str) -> Markup:
    """A confusion matrix as an SVG: rows expected, columns predicted."""
    cell, left, top = 34, 190, 150
    n = len(labels)
    width, height = left + cell * n + 10, top + cell * n + 10
    peak = max((v for row in matrix for v in row), default=0) or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(title)}" font-family="sans-serif" font-size="11">',
        f"<title>{escape(title)}</title>",
        f'<text x="{left}" y="12" font-weight="bold">predicted →</text>',
        f'<text x="4" y="{top - 6}" font-weight="bold">expected ↓</text>',
    ]
    for j, name in enumerate(labels):
        x = left + j * cell + cell / 2
        parts.append(
            f'<text x="{x}" y="{top - 6}" transform="rotate(-55 {x} {top - 6})">{escape(name[:24])}</text>'
        )
    for i, name in enumerate(labels):
        y = top + i * cell
        parts.append(f'<text x="4" y="{y + cell / 2 + 4}">{escape(name[:28])}</text>')
        for j, value in enumerate(matrix[i]):
            x = left + j * cell
            shade = int(255 - 200 * value / peak)
            fill = f"rgb({shade},{shade},255)" if i == j else f"rgb(255,{shade},{shade})"
            if value == 0:
                fill = "#fafafa"
            stroke = "#333" if i == j else "#ddd"
            parts.append(
                f'<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="{fill}" stroke="{stroke}"/>'
            )
            if value:
                parts.append(
                    f'<text x="{x + cell / 2}" y="{y + cell / 2 + 4}" text-anchor="middle">{value}</text>'
                )
    parts.append("</svg>")
    return Markup("".join(parts))


HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>exops eval {{ run.runId }}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:1200px}
table{border-collapse:collapse;margin:.5rem 0 1.5rem}td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:left}
th{background:#f3f3f3}.fail{color:#b00020}.pass{color:#1b5e20}code,pre{background:#f6f6f6;padding:0 .2rem}
details{margin:.3rem 0}summary{cursor:pointer}.matrices{display:flex;flex-wrap:wrap;gap:1.5rem}
</style></head><body>
<h1>exops eval {{ run.runId }}</h1>
<p>Started {{ run.startedAt }} · provider <b>{{ run.provider }}</b> · targets {{ run.targets|join(", ") }}
· models {{ run.models|join(", ") }} · epochs {{ run.epochs }} · datasets {{ run.datasets|join(", ") }}</p>
<h2>Headline</h2>
<table><tr><th>cases</th><th>pass rate</th><th>over epochs (95% CI)</th><th>trajectory</th><th>drafts</th>
<th>replay misses</th><th>errors</th><th>tokens (in / out)</th><th>cost</th></tr>
<tr><td>{{ o.cases }}</td><td>{{ pct(o.passRate) }}</td>
<td>{{ pct(o.passRateEpochs.mean) }} [{{ pct(o.passRateEpochs.low) }}, {{ pct(o.passRateEpochs.high) }}]</td>
<td>{{ pct(o.trajectoryRate) }}</td><td>{{ pct(o.draftRate) }}</td><td>{{ o.replayMisses }}</td><td>{{ o.errors }}</td>
<td>{{ o.promptTokens }} / {{ o.completionTokens }}</td><td>{{ o.cost }}</td></tr></table>
<h2>Decision fields</h2>
<table><tr><th>field</th><th>n</th><th>accuracy</th><th>macro-F1</th><th>per class (P / R / F1, support)</th></tr>
{% for name, f in o.fields.items() %}<tr><td>{{ name }}</td><td>{{ f.n }}</td><td>{{ pct(f.accuracy) }}</td>
<td>{{ "%.3f"|format(f.macroF1) }}</td><td>{% for c, s in f.classes.items() %}<code>{{ c }}</code>
{{ "%.2f"|format(s.precision) }} / {{ "%.2f"|format(s.recall) }} / {{ "%.2f"|format(s.f1) }} ({{ s.support }}){% if not loop.last %}; {% endif %}{% endfor %}</td></tr>
{% endfor %}</table>
<h2>Confusion matrices</h2><div class="matrices">
{% for name, f in o.fields.items() %}<figure><figcaption>{{ name }}</figcaption>{{ svg(f.labels, f.matrix, name) }}</figure>{% endfor %}
</div>
<h2>Slices</h2>
{% for group, buckets in slices.items() %}<h3>by {{ group }}</h3>
<table><tr><th>{{ group }}</th><th>cases</th><th>pass rate</th>{% for name in fieldnames %}<th>{{ name }} acc.</th>{% endfor %}<th>trajectory</th><th>p50 ms</th></tr>
{% for key, m in buckets.items() %}<tr><td>{{ key }}</td><td>{{ m.cases }}</td><td>{{ pct(m.passRate) }}</td>
{% for name in fieldnames %}<td>{{ pct(m.fields[name].accuracy) if name in m.fields else "—" }}</td>{% endfor %}
<td>{{ pct(m.trajectoryRate) }}</td><td>{{ m.latencyMs.p50 }}</td></tr>{% endfor %}</table>
{% endfor %}
<h2>Failing cases ({{ failing|length }})</h2>
{% for r in failing %}<details><summary class="fail">{{ r.dataset }}/{{ r.caseId }} · {{ r.target }} · {{ r.model }} · epoch {{ r.epoch }}
— {{ r.checks|rejectattr("passed")|map(attribute="name")|join(", ") }}</summary>
<table><tr><th>check</th><th>expected</th><th>observed</th><th>detail</th></tr>
{% for c in r.checks %}<tr><td class="{{ 'pass' if c.passed else 'fail' }}">{{ c.name }}</td><td><code>{{ c.expected }}</code></td>
<td><code>{{ c.observed }}</code></td><td>{{ c.detail }}</td></tr>{% endfor %}</table>
{% if r.observation.path %}<p>path: {{ r.observation.path|join(" → ") }}</p>{% endif %}
{% if r.observation.evidence %}<table><tr><th>stage</th><th>decision</th><th>confidence</th><th>evidence</th></tr>
{% for s in r.observation.evidence %}<tr><td>{{ s.stage }}</td><td>{{ s.decision }}</td><td>{{ s.confidence }}</td>
<td>{% for e in s.evidence %}{{ e.kind if e.kind is defined else "" }} {{ e.detail if e.detail is defined else e }}<br>{% endfor %}</td></tr>{% endfor %}</table>{% endif %}
</details>{% endfor %}
</body></html>
"""


def render_html(run: RunResult) -> str:
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    overall = run.metrics.get("overall", {})
    fieldnames = list(overall.get("fields", {}))
    failing = [r for r in run.cases if not r.passed]
    return env.from_string(HTML).render(
        run=run, o=overall, slices=run.metrics.get("slices", {}), fieldnames=fieldnames,
        failing=failing, pct=_pct, svg=confusion_svg,
    )  # fmt: skip


def render_markdown(run: RunResult) -> str:
    overall = run.metrics.get("overall", {})
    epochs = overall.get("passRateEpochs", {})
    lines = [
        f"# exops eval {run.runId}",
        "",
        f"provider `{run.provider}` · targets {', '.join(run.targets)} · models {', '.join(run.models)} · "
        f"epochs {run.epochs} · datasets {', '.join(run.datasets)}",
        "",
        f"**{overall.get('cases')} cases, pass rate {_pct(overall.get('passRate'))}** "
        f"(over epochs {_pct(epochs.get('mean'))}, 95% CI [{_pct(epochs.get('low'))}, {_pct(epochs.get('high'))}]); "
        f"trajectory {_pct(overall.get('trajectoryRate'))}, drafts {_pct(overall.get('draftRate'))}; "
        f"replay misses {overall.get('replayMisses')}, errors {overall.get('errors')}; "
        f"tokens {overall.get('promptTokens')} in / {overall.get('completionTokens')} out.",
        "",
        "| field | n | accuracy | macro-F1 |",
        "|---|---|---|---|",
    ]
    for name, f in overall.get("fields", {}).items():
        lines.append(f"| {name} | {f['n']} | {_pct(f['accuracy'])} | {f['macroF1']:.3f} |")
    lines += ["", "| run | cases | pass rate |", "|---|---|---|"]
    for key, m in run.metrics.get("slices", {}).get("run", {}).items():
        lines.append(f"| {key} | {m['cases']} | {_pct(m['passRate'])} |")
    failing = [r for r in run.cases if not r.passed]
    if failing:
        lines += ["", f"## Failing cases ({len(failing)})", ""]
        for r in failing[:50]:
            why = "; ".join(
                c.detail or f"{c.name}: expected {c.expected!r}, got {c.observed!r}"
                for c in r.checks
                if not c.passed
            )
            lines.append(f"- `{r.dataset}/{r.caseId}` ({r.target}, {r.model}, epoch {r.epoch}): {why}")
        if len(failing) > 50:
            lines.append(f"- … and {len(failing) - 50} more (see report.html)")
    return "\n".join(lines) + "\n"


def write_run(run: RunResult, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(run.model_dump_json(indent=1), encoding="utf-8")
    (folder / "summary.md").write_text(render_markdown(run), encoding="utf-8")
    (folder / "report.html").write_text(render_html(run), encoding="utf-8")
    (folder / "junit.xml").write_text(junit_xml(run), encoding="utf-8")
    return folder


__all__ = ["confusion_svg", "headline", "render_html", "render_markdown", "write_run"]
