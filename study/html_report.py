"""report.html: the sweep on one self-contained page (figures embedded), readable without
Python."""

import base64
import html
import time
from pathlib import Path

from common import atomic
from common.run_folder import StudyFolder
from study.sweep import SweepMember
from study.tradeoff import COLUMNS, format_cell

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1200px; margin: 2em auto; color: #222; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }
th { background: #f2f2f2; }
td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(360px, 1fr)); gap: 1em; }
.note { color: #555; font-size: 0.9em; }
"""


def _image(path: Path, alt: str) -> str:
    if not path.exists():
        return f"<p class='note'>({html.escape(alt)}: not produced)</p>"
    data = base64.b64encode(path.read_bytes()).decode()
    return f"<img alt='{html.escape(alt, quote=True)}' src='data:image/png;base64,{data}'>"


def _table(rows: list[dict]) -> str:
    head = "".join(f"<th>{html.escape(title)}</th>" for _, title, _ in COLUMNS)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{html.escape(format_cell(row[key], fmt))}</td>" for key, _, fmt in COLUMNS)
        + "</tr>"
        for row in rows
    )
    return f"<table id='results'><tr>{head}</tr>{body}</table>"


def _verdicts(rows: list[dict]) -> str:
    threat_models = sorted({model for row in rows for model in row["verdicts"]})
    if not threat_models:
        return "<p class='note'>No attack reports yet.</p>"
    parts = []
    for model in threat_models:
        items = "".join(
            f"<li><b>epsilon {html.escape(row['epsilon'])}:</b> "
            f"{html.escape(row['verdicts'].get(model, 'not attacked'))}</li>"
            for row in rows
        )
        parts.append(f"<h3>Attacker with {html.escape(model)}</h3><ul>{items}</ul>")
    return "".join(parts)


def write_report(rows: list[dict], members: list[SweepMember], study_dir: Path, title: str) -> Path:
    study = StudyFolder(study_dir)
    samples = "".join(
        f"<figure><figcaption>epsilon {html.escape(m.label)}</figcaption>"
        f"{_image(m.folder.samples_image, f'samples at epsilon {m.label}')}</figure>"
        for m in members
    )
    page = f"""<!doctype html><html><head><meta charset="utf-8">
<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>
<h1>{html.escape(title)}</h1>
<p class="note">Privacy–utility trade-off: one federation per epsilon (per site, delta as
configured; "inf" trains the same steps without DP). Utility is judged on real held-out
images the generator never saw; attacks compare training images (members) with that holdout.
Fréchet distance is computed in the project's own classifier features, not Inception-FID.
"Attack caveats" names the attacks that proved nothing: inconclusive (too weak on this data
to find what was planted for them), a population difference (their negative control, real
images of the training population no site trained on, scored about as high as the members),
or above the DP bound (a TPR above what the accountant's epsilon allows any attack: the
members and non-members differ as populations, or the mechanism leaks; the audit decides).
"DP bound on TPR@1%FPR" is that bound for the site with the largest epsilon.
Generated {time.strftime("%Y-%m-%d %H:%M")}.</p>
<h2>Results</h2>{_table(rows)}
<h2>Trade-off</h2>{_image(study.tradeoff_plot, "trade-off plots")}
<h2>Verdicts per threat model</h2>{_verdicts(rows)}
<h2>Samples per epsilon</h2><div class="grid">{samples}</div>
</body></html>
"""
    atomic.write_text(study.report, page)
    return study.report
