"""The Adoption admin page in headless Chromium (Debian's chromium + chromium-driver): the
chart renders from the vendored Chart.js, and no request leaves the machine."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission, User
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from adoption.batch import LG_K, Batch
from adoption.services import adoption_flush
from releases.integrations import buckets
from tests.cdn_support import build, publish

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]  # drives Chromium
SCREENSHOTS = Path(os.environ.get("DATA_DIR", "var/test")) / "screenshots"


def counted_traffic() -> None:
    """A week of hourly polls for two builds, flushed the way web processes flush them."""
    from datasketches import hll_sketch

    batch = Batch()
    now = int(time.time()) // 3600 * 3600
    for hours_ago in range(0, 7 * 24, 3):
        hour = now - hours_ago * 3600
        for build_id, platform, installs in (("b100", "windows", 80), ("b200", "windows", 30)):
            sketch = hll_sketch(LG_K)
            for n in range(installs + hours_ago % 17):
                sketch.update(hash((build_id, n)))
            batch.sketches[(hour, platform, build_id)] = sketch
            batch.add(hour, platform, build_id, "poll")
        batch.add(hour, "windows", "", "full_download", "App Setup 2.0.0 - Build b200-x64.exe")
        batch.add(hour, "mac", "", "link_hit", "dmg")
    adoption_flush(batch=batch)


@pytest.fixture
def browser():
    options = webdriver.ChromeOptions()
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1440,1100",
        # Any host name but loopback resolves to nothing: a CDN request would fail and show.
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    yield driver
    driver.quit()


def test_the_adoption_page_renders_its_chart_offline(live_server, browser, fs_buckets):
    publish(
        buckets.production(role="promoter"),
        builds=[build("b100", "1.0.0"), build("b200", "2.0.0")],
        releases={
            "latestReleaseBuildId": "b100",
            "releaseRedirections": [
                {
                    "rule": "buildByPercentage",
                    "buildId": "b200",
                    "percentage": 25,
                    "schedule": [{"at": "2099-01-01T09:00:00Z", "percentage": 50}],
                }
            ],
        },
    )
    counted_traffic()
    password = uuid.uuid4().hex
    manager = User.objects.create_user("rm", password=password, is_staff=True)
    manager.user_permissions.set(
        Permission.objects.filter(codename__in=["view_adoptioncount", "halt_rollout"])
    )
    browser.get(f"{live_server.url}/admin/login/")
    browser.find_element(By.NAME, "username").send_keys("rm")
    browser.find_element(By.NAME, "password").send_keys(password)
    browser.execute_script("window.__beforeSubmit = true")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    # Logged in only once the answer to the form has replaced the login page (mid-navigation,
    # Chromium may answer with an error instead: ask again).
    WebDriverWait(browser, 10, ignored_exceptions=(WebDriverException,)).until(
        lambda driver: driver.execute_script(
            "return !window.__beforeSubmit && document.readyState === 'complete'"
        )
    )

    browser.get(f"{live_server.url}/admin/adoption/adoptioncount/")

    points = browser.execute_script(
        "return window.adoptionChart && window.adoptionChart.data.datasets"
        ".map(d => d.data.filter(v => v !== null).length)"
    )
    assert points and len(points) == 2 and min(points) >= 50, points
    drawn = browser.execute_script(
        "const c = document.getElementById('adoption-chart');"
        "const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        "let n = 0; for (let i = 3; i < px.length; i += 4) if (px[i]) n++; return n;"
    )
    assert drawn > 5000  # pixels painted on the canvas
    resources = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert resources and all(name.startswith(live_server.url) for name in resources), resources
    rollout = browser.find_element(By.ID, "rollouts").text
    assert "b200" in rollout and "25%" in rollout and "50% at 2099-01-01 09:00 UTC" in rollout
    assert browser.find_element(By.CSS_SELECTOR, "form.halt input[type=submit]")
    assert "dmg" in browser.find_element(By.ID, "links").text
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENSHOTS / "adoption-1440.png"))
