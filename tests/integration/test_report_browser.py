"""`lens report` opened in a real headless browser (Debian's chromium): the page renders every
section, every embedded plot decodes, no script error, and the screenshot shows the plots.

Needs the Debian package `chromium` (`make setup` installs it); skipped when it is absent.
"""

import io
import re
import shutil
import subprocess

import numpy as np
import pytest

from lens.cli.main import main
from lens.report import REPORT_FILE, SECTIONS
from tests.unit.segments.conftest import tiny_world, train_tiny_run

CHROMIUM = shutil.which("chromium")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is absent: `apt-get install -y chromium` (make setup does)"
)

# Appended to a copy of the page: records script errors and how many images decoded, where
# --dump-dom shows them (the report itself has no script).
PROBE = """<script>
window.addEventListener("error", e => {
  document.body.dataset.errors = (document.body.dataset.errors || "") + e.message + ";";
});
window.addEventListener("load", () => {
  const images = [...document.images];
  document.body.dataset.images = images.length;
  document.body.dataset.decoded = images.filter(i => i.complete && i.naturalWidth > 0).length;
});
</script>"""


def chromium(*args: str) -> subprocess.CompletedProcess:
    # --no-sandbox: the tests may run as root (CI containers), where the sandbox refuses to start.
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", *args]
    return subprocess.run(command, capture_output=True, text=True, check=True)


@pytest.fixture(scope="module")
def report(tmp_path_factory, monkeypatch_module):
    root = tmp_path_factory.mktemp("report")
    world = tiny_world(root / "world")
    run = train_tiny_run(world, root / "run")
    # A tiny world has few customers per segment and few sessions per customer: let every
    # segment, and every customer with 3 sessions, be scored.
    monkeypatch_module.setenv("LENS_ANOMALY_MIN_HISTORY", "3")
    monkeypatch_module.setenv("LENS_ANOMALY_NOVELTY_WINDOW", "2")
    monkeypatch_module.setenv("LENS_ANOMALY_ESTABLISHED", "1")
    out = root / "out"
    code = main(
        [
            "report",
            "--model",
            str(run),
            "--data",
            str(world["transactions"]),
            "--resupply",
            str(world["resupplies"]),
            "--out",
            str(out),
        ]
    )
    assert code == 0
    return out


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_the_page_renders_every_section_and_every_plot(report, tmp_path):
    page = tmp_path / "probed.html"
    page.write_text((report / REPORT_FILE).read_text().replace("</body>", PROBE + "\n</body>"))
    dom = chromium("--dump-dom", page.as_uri()).stdout
    body = re.search(r"<body([^>]*)>", dom).group(1)
    assert "data-errors" not in body, body
    images = int(re.search(r'data-images="(\d+)"', body).group(1))
    assert images >= 4  # two projections, the profiles, the anomaly scores (+ demand chart)
    assert re.search(r'data-decoded="(\d+)"', body).group(1) == str(images)
    for section in SECTIONS:
        match = re.search(rf'<section id="{section}">\s*<h2>([^<]+)</h2>(.*?)</section>', dom, re.S)
        assert match and match.group(2).strip(), f"section {section} is missing or empty"


def test_the_screenshot_shows_the_plots(report, tmp_path):
    import matplotlib.image

    shot = tmp_path / "report.png"
    chromium(f"--screenshot={shot}", "--window-size=1280,2400", (report / REPORT_FILE).as_uri())
    pixels = matplotlib.image.imread(io.BytesIO(shot.read_bytes()), format="png")[
        ..., :3
    ]  # [H, W, 3]
    assert pixels.shape[:2] == (2400, 1280)
    not_white = (pixels.min(axis=2) < 0.9).mean()
    # Coloured pixels below the header (whose blue section links end near y = 250 at this
    # width): scatter points and bars; tables and text are grey or black.
    coloured = ((pixels[300:].max(axis=2) - pixels[300:].min(axis=2)) > 0.25).sum()
    assert not_white > 0.02, "the page looks blank"
    assert coloured > 500, "no coloured plot marks on the screenshot"
    assert np.unique(pixels.reshape(-1, 3), axis=0).shape[0] > 100  # more than text on white
