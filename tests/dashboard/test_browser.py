"""End to end in headless Chromium: the app served on 127.0.0.1, every page rendered and screenshotted, a photo
uploaded, and the live page fed by Chromium's fake camera (a Y4M made from single_face.mp4) until a predicted
label shows up on the page.

Needs Debian ``chromium`` + ``chromium-driver`` (``make browser``); skipped when they are absent, except in CI
(``CI`` set), where their absence is a failure. Screenshots go to ``$FERLENS_SCREENSHOTS`` or a temp folder.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from dashboard.navigation import PAGES
from tests.harness import browser

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PAGE_TEXT = {
    "upload": "Add photos, a folder or a ZIP",
    "live": "ICE servers:",
    "video": "Add a short clip",
    "evaluation": "Confusion",
    "explorer": "images · page",
    "ablation": "Ablation table from training",
    "model_card": "Limitations",
}


@pytest.fixture(scope="module")
def chromium() -> None:
    if browser.chromium_paths() is None:
        if os.environ.get("CI"):
            pytest.fail("chromium/chromedriver missing in CI: `make browser` installs them")
        pytest.skip("chromium and chromedriver are not installed (make browser)")


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = Path(os.environ.get("FERLENS_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture(scope="module")
def app(chromium, results_pair, shared_datasets: Path, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("app")
    (root / "runs").mkdir()
    shutil.copy(results_pair[0], root / "runs" / "default-test.json")
    env = {"FERLENS_RUNS": str(root / "runs"), "FERLENS_DB": str(root / "v.db"), "FERLENS_DATA": str(shared_datasets)}
    env["FERLENS_ICE_SERVERS"] = "[]"
    with browser.running_app(env=env, log_path=root / "app.log") as url:
        yield url, root


def _body(driver) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.TAG_NAME, "body").text


def _assert_clean(driver) -> None:
    from selenium.webdriver.common.by import By

    assert not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]'), "a traceback is on the page"
    assert "Traceback" not in _body(driver)


def test_every_page_renders(app, shots: Path, samples_dir: Path, tmp_path: Path) -> None:

    url, _ = app
    driver = browser.chrome(tmp_path / "profile")
    try:
        for path in PAGES:
            driver.get(f"{url}/{path}")  # every page has its own deep link, /upload included
            browser.wait_for_text(driver, PAGE_TEXT[path], timeout_s=120)
            browser.wait_idle(driver)
            _assert_clean(driver)
            driver.save_screenshot(str(shots / f"{path}.png"))
            assert (shots / f"{path}.png").stat().st_size > 10_000
        driver.get(f"{url}/")
        browser.wait_for_text(driver, PAGE_TEXT["upload"], timeout_s=120)
        browser.wait_idle(driver)
        upload = browser.wait_for_element(driver, 'input[type="file"]')
        upload.send_keys(str(samples_dir / "multi_face.jpg"))
        browser.wait_for_text(driver, "multi_face.jpg: 5 faces", timeout_s=120)
        browser.wait_idle(driver)
        _assert_clean(driver)
        assert len(re.findall(r"Face #\d", _body(driver))) == 5
        driver.save_screenshot(str(shots / "upload-multi_face.png"))
    finally:
        driver.quit()


def test_live_page_predicts_on_the_fake_camera(app, shots: Path, samples_dir: Path, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    from core.labels import EMOTIONS_8

    url, _ = app
    y4m = browser.write_y4m(samples_dir / "single_face.mp4", tmp_path / "face.y4m")
    driver = browser.chrome(tmp_path / "profile", fake_video=y4m)
    try:
        driver.get(f"{url}/live")
        browser.wait_for_text(driver, PAGE_TEXT["live"], timeout_s=120)
        browser.start_webrtc(driver)
        pattern = re.compile(r"face 1 \(track \d+\): (\w+) \d+%")
        match = browser.wait_for_match(driver, pattern, timeout_s=120)
        assert match.group(1) in EMOTIONS_8
        browser.wait_for_text(driver, "Predictions / s", timeout_s=60)
        _assert_clean(driver)
        driver.save_screenshot(str(shots / "live-streaming.png"))
        assert driver.find_elements(By.TAG_NAME, "iframe")
    finally:
        driver.quit()


def _click_button(driver, label: str, timeout_s: float = 60.0) -> None:
    """Click the button whose text ends with ``label``, once it is drawn (a busy server draws it late)."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def find(d):
        return next((b for b in d.find_elements(By.TAG_NAME, "button") if b.text.strip().endswith(label)), False)

    button = WebDriverWait(driver, timeout_s, 0.25, (StaleElementReferenceException,)).until(
        find, f"no button ending {label!r}"
    )
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", button)
    button.click()


def _small_png(driver, path: Path, width: int = 1000) -> None:
    """A screenshot scaled down to ``width`` px and palette-compressed (docs/screenshots stays small)."""
    from io import BytesIO

    from PIL import Image

    im = Image.open(BytesIO(driver.get_screenshot_as_png())).convert("RGB")
    im = im.resize((width, round(im.height * width / im.width)), Image.Resampling.LANCZOS)
    im.quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


def test_examples_annotated_video_and_model_card_by_deep_link(app, tmp_path: Path) -> None:
    """Real clicks on the example buttons and the MP4 export; screenshots for docs/screenshots/ when asked."""
    url, _ = app
    out = Path(os.environ.get("FERLENS_DOC_SHOTS") or tmp_path)
    driver = browser.chrome(tmp_path / "profile")
    try:
        driver.get(f"{url}/upload")
        browser.wait_for_text(driver, PAGE_TEXT["upload"], timeout_s=120)
        browser.wait_idle(driver)
        _click_button(driver, "Try an example: a group photo")
        browser.wait_for_text(driver, "multi_face.jpg: 5 faces", timeout_s=240)
        browser.wait_idle(driver, timeout_s=120)
        _assert_clean(driver)
        assert re.findall(r"Face #(\d)", _body(driver)) == ["1", "2", "3", "4", "5"]
        _small_png(driver, out / "upload-multi_face.png")

        driver.get(f"{url}/video")
        browser.wait_for_text(driver, PAGE_TEXT["video"], timeout_s=120)
        browser.wait_idle(driver)
        _click_button(driver, "Try an example: a short clip")
        browser.wait_for_text(driver, "single_face.mp4: ", timeout_s=300)
        browser.wait_idle(driver, timeout_s=120)
        _click_button(driver, "Make the annotated video (MP4)")
        browser.wait_for_text(driver, "Annotated video (MP4)", timeout_s=300)
        browser.wait_idle(driver, timeout_s=120)
        _assert_clean(driver)
        _small_png(driver, out / "video.png")

        driver.get(f"{url}/model_card")
        browser.wait_for_text(driver, PAGE_TEXT["model_card"], timeout_s=180)
        browser.wait_idle(driver)
        _assert_clean(driver)
        assert "PrivateTest, hflip TTA" in _body(driver)
        _small_png(driver, out / "model_card.png")
    finally:
        driver.quit()
