"""The review loop end to end in headless Chromium: a real click on a confusion-matrix cell lands in the explorer
on that cell's images; three verdicts in a row without retyping the name; a reload restores them and the view.

Needs Debian ``chromium`` + ``chromium-driver`` (skipped without, failed in CI). The results come from the shipped
default model on 200 FER2013 PrivateTest rows. Screenshots go to ``$FERLENS_SCREENSHOTS`` or a temp folder.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from dashboard.verdicts import VERDICTS, VerdictStore
from tests.harness import browser

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WAIT_S = 600.0
"""Upper bound of each wait (a loaded 2-core machine renders slowly); never a timing assertion."""


@pytest.fixture(scope="module")
def app(shared_datasets: Path, tmp_path_factory: pytest.TempPathFactory):
    from training.evaluate import main

    if browser.chromium_paths() is None:
        if os.environ.get("CI"):
            pytest.fail("chromium/chromedriver missing in CI: `make browser` installs them")
        pytest.skip("chromium and chromedriver are not installed (make browser)")
    root = tmp_path_factory.mktemp("review")
    out = root / "runs" / "eval" / "default-test-200.json"
    argv = ["--model", "default", "--weights", "default", "--data", "fer2013", "--split", "test", "--limit", "200",
            "--bootstrap", "50", "--root", str(shared_datasets), "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    env = {"FERLENS_RUNS": str(root / "runs"), "FERLENS_DB": str(root / "v.db"), "FERLENS_DATA": str(shared_datasets)}
    with browser.running_app(env=env, timeout_s=WAIT_S, log_path=root / "app.log") as url:
        yield url, json.loads(out.read_text()), root / "v.db"


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = Path(os.environ.get("FERLENS_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    out.mkdir(parents=True, exist_ok=True)
    return out


def _body(driver) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.TAG_NAME, "body").text


def _clean(driver) -> None:
    from selenium.webdriver.common.by import By

    assert not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]'), "a traceback is on the page"
    assert "Traceback" not in _body(driver)


def _button(driver, label: str, within: str = "body", timeout_s: float = 60.0):
    """The button whose text starts with ``label``, once it is drawn (a busy server draws it late)."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def find(d):
        buttons = d.find_elements(By.CSS_SELECTOR, f"{within} button")
        return next((b for b in buttons if b.text.strip().startswith(label)), False)

    return WebDriverWait(driver, timeout_s, 0.25, (StaleElementReferenceException,)).until(
        find, f"no button {label!r} in {within}"
    )


def _gallery_ids(driver) -> list[int]:
    return [int(m) for m in re.findall(r"^#(\d+) \w+→\w+ \d+%", _body(driver), flags=re.M)]


def test_click_a_cell_review_three_images_and_reload(app, shots: Path, tmp_path: Path) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    url, d, db = app
    names, counts = d["class_names"], d["confusion"]["counts"]
    c = len(names)
    true, pred = max(((i, j) for i in range(c) for j in range(c) if i != j), key=lambda ij: counts[ij[0]][ij[1]])
    n = counts[true][pred]
    assert n >= 4, "the test needs a confusion cell with at least 4 images"
    driver = browser.chrome(tmp_path / "profile", size=(1400, 1000))
    try:
        driver.get(f"{url}/evaluation")
        browser.wait_for_text(driver, "Colour by row rate", timeout_s=WAIT_S)
        browser.wait_idle(driver, timeout_s=WAIT_S)
        browser.wait_for_element(driver, ".js-plotly-plot .scatterlayer path.point", timeout_s=WAIT_S)
        plot = next(
            p
            for p in driver.find_elements(By.CSS_SELECTOR, ".js-plotly-plot")
            if "click a cell" in p.get_attribute("textContent")
        )
        points = plot.find_elements(By.CSS_SELECTOR, ".scatterlayer .trace .points path.point")
        assert len(points) == c * c
        cell = points[true * c + pred]  # points are drawn row by row, true-major
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", cell)
        ActionChains(driver).move_to_element(cell).pause(0.3).click().perform()  # a user's click, not a script's

        browser.wait_for_text(driver, f"{n} images · page", timeout_s=WAIT_S)
        browser.wait_idle(driver, timeout_s=WAIT_S)
        _clean(driver)
        assert f"true={names[true]}" in driver.current_url and f"pred={names[pred]}" in driver.current_url
        shown = re.findall(r"^#\d+ (\w+)→(\w+) \d+%", _body(driver), flags=re.M)
        assert shown and set(shown) == {(names[true], names[pred])}

        _button(driver, "Open").click()
        browser.wait_for_text(driver, f"1 of {n} in this filter", timeout_s=WAIT_S)
        name = browser.wait_for_element(driver, '[role="dialog"] input[aria-label="Reviewer"]', WAIT_S)
        name.send_keys("ana", Keys.TAB)
        reviewed = []
        for k in range(3):  # three verdicts in a row; the name is typed once
            browser.wait_idle(driver, timeout_s=WAIT_S)
            item = int(re.search(r"[?&]item=(\d+)", driver.current_url).group(1))
            reviewed.append(item)
            _button(driver, VERDICTS[k], within='[role="dialog"]').click()
            browser.wait_for_text(driver, f"{k + 2} of {n} in this filter", timeout_s=WAIT_S)
            browser.wait_idle(driver, timeout_s=WAIT_S)
            field = browser.wait_for_element(driver, '[role="dialog"] input[aria-label="Reviewer"]', WAIT_S)
            assert field.get_attribute("value") == "ana"
        _clean(driver)
        stored = VerdictStore(db).all()
        assert [(v.item_id, v.verdict, v.reviewer) for v in stored] == [
            (i, VERDICTS[k], "ana") for k, i in enumerate(reviewed)
        ]
        driver.save_screenshot(str(shots / "explorer-votes.png"))
        before = driver.current_url

        driver.refresh()  # the view comes back from the URL: cell, open image, reviewer, and the saved verdicts
        browser.wait_for_text(driver, f"4 of {n} in this filter", timeout_s=WAIT_S)
        browser.wait_idle(driver, timeout_s=WAIT_S)
        _clean(driver)
        assert driver.current_url == before
        field = browser.wait_for_element(driver, '[role="dialog"] input[aria-label="Reviewer"]', WAIT_S)
        assert field.get_attribute("value") == "ana"
        body = _body(driver)
        for k, i in enumerate(reviewed):
            assert re.search(rf"^#{i} {names[true]}→{names[pred]} \d+% · {VERDICTS[k]}", body, flags=re.M)

        driver.get(f"{url}/explorer?disputed=1&errors=0")
        browser.wait_for_text(driver, "images · page", timeout_s=WAIT_S)
        browser.wait_idle(driver, timeout_s=WAIT_S)
        _clean(driver)
        ids = _gallery_ids(driver)
        assert ids and all("· disputed" in line for line in _body(driver).splitlines() if re.match(r"^#\d+ ", line))
        driver.save_screenshot(str(shots / "explorer-disputed.png"))
    finally:
        driver.quit()
