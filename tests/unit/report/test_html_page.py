import base64
import datetime as dt
import re

import pandas as pd

from lens.report.html_page import HtmlPage

PNG = b"\x89PNG\r\n\x1a\nnot really an image"


def test_a_page_holds_its_sections_in_order_with_a_navigation_bar():
    page = HtmlPage("Report <1>")
    page.intro.append("model: runs/a&b")
    page.section("first", "First").text("hello")
    page.section("second", "Second")
    html = page.render(generated=dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.timezone.utc))
    assert html.startswith("<!DOCTYPE html>")
    assert "<title>Report &lt;1&gt;</title>" in html and "model: runs/a&amp;b" in html
    assert "generated 2026-01-02 03:04 UTC" in html
    assert re.findall(r'<section id="(\w+)">', html) == ["first", "second"]
    assert '<a href="#first">First</a>' in html


def test_images_are_embedded_and_text_is_escaped():
    page = HtmlPage("t")
    page.section("s", "S").image(PNG, 'a "plot"').text("<script>alert(1)</script>", note=True)
    html = page.render()
    data = re.search(r'src="data:image/png;base64,([^"]+)"', html).group(1)
    assert base64.b64decode(data) == PNG
    assert 'alt="a &quot;plot&quot;"' in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "http" not in html  # nothing to fetch: the page works offline


def test_tables_show_their_first_rows_and_say_how_many_there_are():
    frame = pd.DataFrame({"segment": range(5), "name": ["<b>", "x", "y", "z", "w"]})
    page = HtmlPage("t")
    page.section("s", "S").table(frame, max_rows=3)
    html = page.render()
    assert html.count("<tr") == 4  # header + 3 rows
    assert "&lt;b&gt;" in html and "first 3 of 5 rows" in html
