"""The review console in a real browser (Debian's chromium via selenium) at 1440 px.

Each flow asserts what a person sees, and saves a screenshot under
`<DATA_DIR>/screenshots/` (to look at when a page changes).
"""

from __future__ import annotations

import shutil
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from releases.models import AuditEvent, Build, BuildStatus, ReleaseRequest, ReleaseState
from releases.roles import ROLES
from releases.services.api_tokens import token_digest
from releases.services.audit import audit_chain_check, audit_record
from releases.services.rollback import rollback_open
from tests.factories import make_build, make_release
from tests.promotion_support import approve, stage_build

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]  # drives Chromium
WIDTH, HEIGHT = 1440, 1000
PASSWORD = "a-long-test-password"


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver")
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver_path):
        pytest.fail("chromium and chromedriver are needed: run scripts/test-services.sh")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    options.add_argument(f"--window-size={WIDTH},{HEIGHT}")
    driver = webdriver.Chrome(service=webdriver.ChromeService(driver_path), options=options)
    driver.set_window_size(WIDTH, HEIGHT)
    yield driver
    driver.quit()


@pytest.fixture
def site(browser, live_server, fs_buckets, settings):
    """Groups as the migration makes them (a transactional test flushes them), a clean session."""
    from django.apps import apps

    from releases.roles import roles_sync

    roles_sync(apps)
    browser.delete_all_cookies()
    return Site(browser, live_server.url)


class Site:
    def __init__(self, driver, url: str) -> None:
        self.driver, self.url = driver, url

    def get(self, path: str) -> None:
        self.driver.get(self.url + path)

    def login(self, name: str) -> None:
        from selenium.webdriver.common.by import By

        self.driver.delete_all_cookies()
        self.get("/admin/login/?next=/admin/")
        self.driver.find_element(By.ID, "id_username").send_keys(name)
        self.driver.find_element(By.ID, "id_password").send_keys(PASSWORD)
        self.driver.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
        self.wait_for("#user-tools")  # logged in: the page shows who

    def wait_for(self, css: str):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions
        from selenium.webdriver.support.ui import WebDriverWait

        locate = expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css))
        return WebDriverWait(self.driver, 10).until(locate)

    def submit(self, css: str) -> None:
        """Click a button that posts a form, and wait until the answer's page has replaced this
        one (reading before that finds the old page's elements, or stale ones).

        The old page is marked on its `window`; the new document has no mark. Chromium may
        answer a query made mid-navigation with an error rather than a result (a stale node,
        "Node with given id does not belong to the document"): the wait asks again."""
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.support.ui import WebDriverWait

        self.driver.execute_script("window.__beforeSubmit = true")
        self.find(css).click()
        WebDriverWait(self.driver, 10, ignored_exceptions=(WebDriverException,)).until(
            lambda driver: driver.execute_script(
                "return !window.__beforeSubmit && document.readyState === 'complete'"
            )
        )

    def find(self, css: str):
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css)

    def finds(self, css: str):
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def text(self) -> str:
        return self.find("body").text

    def shot(self, name: str) -> Path:
        """The whole page at 1440 px wide."""
        folder = Path(django_settings.DATA_DIR) / "screenshots"
        folder.mkdir(parents=True, exist_ok=True)
        height = self.driver.execute_script("return document.documentElement.scrollHeight")
        self.driver.set_window_size(WIDTH, min(max(height, HEIGHT), 6000))
        path = folder / f"{name}.png"
        self.driver.save_screenshot(str(path))
        self.driver.set_window_size(WIDTH, HEIGHT)
        return path

    def shot_at(self, name: str, *, height: int) -> Path:
        """What a viewport of 1440 x `height` shows (no scrolling)."""
        folder = Path(django_settings.DATA_DIR) / "screenshots"
        folder.mkdir(parents=True, exist_ok=True)
        chrome = self.driver.execute_script("return window.outerHeight - window.innerHeight")
        self.driver.set_window_size(WIDTH, height + chrome)
        path = folder / f"{name}.png"
        self.driver.save_screenshot(str(path))
        self.driver.set_window_size(WIDTH, HEIGHT)
        return path


def person(name: str, role: str) -> User:
    user = User.objects.create_user(name, password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return user


def live(build_id: str, version: str):
    build, _ = stage_build(build_id, version)
    approve(build, release_info={"latestReleaseBuildId": build_id})
    call_command("reconcile", stdout=StringIO())
    build.refresh_from_db()
    return build


def in_review(build_id: str, version: str) -> ReleaseRequest:
    build, _ = stage_build(build_id, version)
    return ReleaseRequest.objects.create(
        build=build,
        state=ReleaseState.IN_REVIEW,
        release_info={"latestReleaseBuildId": build_id},
        payload={"buildId": build_id},
    )


def review_page(release: ReleaseRequest) -> str:
    return f"/admin/releases/releaserequest/{release.pk}/change/"


def test_login_and_the_production_now_panel(site):
    live("old1", "1.0.0")
    live("new2", "1.1.0")
    person("ann", "auditors")

    site.login("ann")

    assert "Production now" in site.text()
    site.get("/admin/releases/build/")
    windows = site.find("#production-now tr.served-windows").text
    assert "new2" in windows and "1.1.0" in windows
    assert "new2" in site.find("#production-now").text
    site.shot("builds-production-now")
    site.get("/admin/")
    site.shot("index")


def test_the_review_page_shows_the_diff_and_the_downgrade_warning(site):
    live("new2", "1.1.0")
    stale = in_review("old1", "1.0.2")
    person("ann", "approvers")
    site.login("ann")

    site.get(review_page(stale))

    warning = site.find("#downgrade-warning")
    assert warning.is_displayed() and "windows: 1.1.0 → 1.0.2" in warning.text
    deleted = [e.text for e in site.finds("pre.diff .del")]
    assert any('"latestReleaseBuildId": "new2"' in line for line in deleted)
    site.shot("review-downgrade")


def test_approve_with_a_comment(site):
    live("old1", "1.0.0")
    release = in_review("new2", "1.1.0")
    person("ann", "approvers")
    site.login("ann")
    site.get(review_page(release))

    site.find("#id_approve_comment").send_keys("notarisation checked")
    site.submit("#approve-button")

    assert "approved" in site.find(".messagelist").text
    assert site.find("#review-state").text == "live"
    assert "notarisation checked" in site.find("#reviews").text
    site.shot("review-approved")


def test_reject_with_a_reason_after_a_confirmation(site):
    release = in_review("new2", "1.1.0")
    person("ann", "approvers")
    site.login("ann")
    site.get(review_page(release))

    site.find("#id_reject_comment").send_keys("the icon is wrong")
    site.submit("#reject-button")
    assert "Rejecting ends this review" in site.text()
    site.shot("reject-confirm")
    site.submit("#confirm-reject")

    assert site.find("#review-state").text == "rejected"
    assert "the icon is wrong" in site.find("#reviews").text


def test_a_second_approval_by_the_same_person_is_refused(site, settings):
    settings.REQUIRED_APPROVALS = 2
    release = in_review("new2", "1.1.0")
    person("ann", "approvers")
    site.login("ann")
    site.get(review_page(release))
    site.submit("#approve-button")
    assert site.find("#review-approvals").text == "1 of 2 required"

    assert site.find("#approve-button").get_attribute("disabled")
    assert "ann already approved it" in site.find("#approve-blocker").text
    # A stale tab still offering the button: the server refuses it all the same.
    site.driver.execute_script("document.getElementById('approve-button').disabled = false")
    site.submit("#approve-button")

    refused = site.find(".messagelist").text.lower()  # the admin capitalises messages
    assert "not recorded: ann already approved it" in refused
    assert AuditEvent.objects.filter(kind="review.approved").count() == 1
    site.shot("review-second-approval-refused")


def test_the_requester_of_a_rollback_cannot_approve_it(site):
    old = live("old1", "1.0.0")
    live("new2", "1.1.0")
    person("mona", "release managers")
    rollback = rollback_open(build=old, actor="mona")
    site.login("mona")

    site.get(review_page(rollback))

    assert site.find("#approve-button").get_attribute("disabled")
    assert "two-person rule" in site.find("#approve-blocker").text
    assert "rollback" in site.find("#summary").text and "mona" in site.find("#summary").text
    site.shot("review-requester-blocked")


def test_the_tampered_chain_banner(site):
    person("ann", "auditors")
    first = audit_record(kind="x.first", message="first")
    audit_record(kind="x.second", message="second")
    assert audit_chain_check(actor="test").ok
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE releases_auditevent SET message = 'forged' WHERE sequence = %s",
            [first.sequence],
        )
    site.login("ann")
    site.get("/admin/releases/auditevent/")

    site.submit("#chain-check-button")

    banner = site.wait_for("#chain-broken")  # the check posts, then the list loads again
    assert banner.is_displayed() and f"#{first.sequence}" in banner.text
    site.shot("audit-chain-broken")
    site.get("/admin/")
    assert site.find("#chain-broken").is_displayed()
    site.get(f"/admin/releases/auditevent/{first.pk}/change/")
    assert "breaks the audit chain" in site.find("#row-broken").text
    site.shot("audit-row-broken")


def test_the_audit_list_fits_1440_px_with_rows_of_at_most_two_lines(site):
    live("old1", "1.0.0")
    person("ann", "auditors")
    long = "promotion refused: " + "My App Setup 1.0.0 - Build abcdefghij-x64.exe " * 8
    for number in range(30):
        audit_record(kind="promotion.name_refused", message=f"{number} {long}", actor="beat")
    site.login("ann")

    site.get("/admin/releases/auditevent/")
    site.shot("audit-list")

    overflow = site.driver.execute_script(
        "return [document.documentElement.scrollWidth, window.innerWidth]"
    )
    assert overflow[0] <= overflow[1]
    heights = site.driver.execute_script(
        "return [...document.querySelectorAll('#result_list tbody tr')]"
        ".map(r => r.getBoundingClientRect().height)"
    )
    line = site.driver.execute_script(
        "const td = document.querySelector('#result_list tbody td.field-what');"
        "const s = getComputedStyle(td); const lh = parseFloat(s.lineHeight) || "
        "parseFloat(s.fontSize) * 1.2;"
        "return [lh, parseFloat(s.paddingTop) + parseFloat(s.paddingBottom)]"
    )
    assert len(heights) >= 30
    assert max(heights) <= 2 * line[0] + line[1] + 4, (heights, line)
    assert site.find("#result_list tbody td.field-what").is_displayed()


def busy_console() -> None:
    """A build in every status and a release request in every state, most with the longest
    values the fields allow (64-character build ids, 100-character versions, a long failure),
    beside ordinary ones."""
    failure = "download of My App Setup 2.14.0 - Build x64.exe failed: " + "timed out " * 20
    builds = [
        make_build(
            build_id=f"{number}50210vv2q75v93-{'0f3a9c7e5b1d' * 5}"[:64],
            version=f"2.14.{number}-beta.12+build.20250210.{'7c9e1f2a4b6d' * 6}"[:100],
            status=status,
            failure_reason=failure if status == BuildStatus.FAILED else "",
            live_at=timezone.now() if status == BuildStatus.LIVE else None,
        )
        for number, status in enumerate(BuildStatus.values)
    ]
    builds.append(make_build(build_id="250211kq3m9x2pz", version="2.15.0", status="in_review"))
    for number, state in enumerate(ReleaseState.values):
        kind = ["release", "rollback", "halt"][number % 3]
        make_release(
            builds[number % len(builds)],
            kind=kind,
            state=state,
            requested_by="release-manager-with-a-long-name@example.org"
            if kind != "release"
            else "",
            pr_number=12000 + number if number % 2 else None,
            pr_url=f"https://github.com/acme/releases/pull/{12000 + number}" if number % 2 else "",
            merged_by="a-github-user-with-a-long-login-name" if number % 4 else "ada",
            live_at=timezone.now() if state == ReleaseState.LIVE else None,
        )
    make_release(builds[-1], state=ReleaseState.IN_REVIEW)


def overflow(site) -> dict:
    """How far the page, and the admin's scrolling box around the list, reach past their width."""
    return site.driver.execute_script(
        "const page = document.documentElement, box = document.querySelector('.results');"
        "return {page: page.scrollWidth - page.clientWidth,"
        " list: box.scrollWidth - box.clientWidth}"
    )


def test_the_build_and_release_lists_fit_1440_px(site):
    """A release manager's lists (the widest: a checkbox on each row) show every column at
    1440 px with no sideways scrolling; a cut build id is whole in its title."""
    busy_console()
    person("mona", "release managers")
    site.login("mona")
    longest = Build.objects.order_by("-pk").values_list("build_id", flat=True)[0]
    lists = {
        "build": ["build_ref", "version_label", "status_label", "platform_list", "pr_link"],
        "releaserequest": ["release_ref", "build_ref", "state", "people", "pr_link"],
    }

    for model, columns in lists.items():
        site.get(f"/admin/releases/{model}/")
        site.shot(f"{model}-list")

        assert overflow(site) == {"page": 0, "list": 0}, model
        for column in [*columns, "created", "live"]:
            assert site.find(f"#result_list th.column-{column}").is_displayed(), column
        cut = site.find(f"#result_list tbody .field-build_ref [title='{longest}']")
        assert cut.is_displayed() and cut.text.rstrip("…") in longest


def test_every_role_sees_the_pages_it_may_use(site):
    """The README's role table, as a person in each group meets it."""
    release = in_review("new2", "1.1.0")
    for role in ROLES:
        person(role.replace(" ", "-"), role)
    for role, perms in ROLES.items():
        site.login(role.replace(" ", "-"))
        site.get(review_page(release))
        can_approve = "approve_release" in perms
        assert bool(site.find("#approve-button").get_attribute("disabled")) is not can_approve
        site.get("/admin/releases/build/")
        assert bool(site.finds("#reconcile-button")) is ("reconcile_production" in perms)
    site.shot("builds-release-manager")


def test_my_api_token_created_shown_once_then_rotated(site):
    """An auditor makes their own API token from the user tools, copies the key, rotates it."""
    from rest_framework.authtoken.models import Token

    person("ann", "auditors")
    site.login("ann")
    site.find("#my-api-token-link").click()
    site.wait_for("#create-button")
    assert "You have no API token." in site.text()
    site.shot_at("my-api-token-before", height=900)

    site.submit("#create-button")
    key = site.find("#new-key").text
    assert token_digest(key) == Token.objects.get(user__username="ann").key
    assert "it is not shown again" in site.text()
    site.shot_at("my-api-token-created", height=900)

    site.get("/admin/my-api-token/")
    assert key not in site.driver.page_source and site.finds("#token-created")
    site.submit("#rotate-button")
    rotated = site.find("#new-key").text
    assert rotated != key and Token.objects.get().key == token_digest(rotated)
    assert "the old key no longer works" in site.text()


def test_a_token_a_superuser_makes_for_someone_is_shown_once_on_its_own_page(site):
    from rest_framework.authtoken.models import Token
    from selenium.webdriver.support.ui import Select

    User.objects.create_superuser("root", password=PASSWORD)
    reader = person("rita", "auditors")
    site.login("root")
    site.get("/admin/releases/apitoken/add/")
    Select(site.wait_for("#id_user")).select_by_value(str(reader.pk))
    site.submit("input[name=_save]")
    key = site.find("#new-key").text
    assert token_digest(key) == Token.objects.get(user=reader).key
    assert "it is not shown again" in site.text()
    site.shot_at("api-token-made-by-superuser", height=900)
    site.find("a.button").click()  # back to the list: the key is nowhere
    site.wait_for("#result_list")
    assert key not in site.driver.page_source


# The longest values each list meets in practice, at or near their fields' limits: an SSO user
# name that is a whole e-mail address, 64-character build ids, electron-builder file names with
# the product and the full version in them, sha512 digests, signed download URLs, errors that
# quote a URL or a response body.
LONG_USER = "maximilian.alexander.vonhohenzollern.sigmaringen@releaseengineering.acmecorp.com"
LONG_ERROR = (
    "HTTPSConnectionPool(host='hooks.slack.com', port=443): Max retries exceeded with url: "
    "/services/T0123ABCD/B0456EFGH/" + "x7Kq2Lm9Np4Rs8Tv" * 6 + " (Caused by "
    "ConnectTimeoutError(<urllib3.connection.HTTPSConnection object at 0x7f3a9c7e5b10>, "
    "'Connection to hooks.slack.com timed out. (connect timeout=30)'))"
)
SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
LONG_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0 " + "ExtensionBridge/4.2.1-enterprise " * 4
)[:255]


def every_list_filled() -> None:
    """Worst-case rows in every list of the admin: the build and release lists' own
    (`busy_console`) and every other model's, with the longest values their fields take."""
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog
    from rest_framework.authtoken.models import Token

    from releases.models import (
        Approval,
        BuildFile,
        CdnPurge,
        DeliveryStatus,
        Notification,
        RolloutHalt,
        Verification,
        WebhookDelivery,
    )

    busy_console()
    build = Build.objects.order_by("-pk")[1]  # a 64-character id and a 100-character version
    release = make_release(build, state=ReleaseState.IN_REVIEW, requested_by=LONG_USER)
    product = "Acme Collaboration Suite Enterprise Edition"
    names = [
        f"{product} Setup {build.version} - Build {build.build_id}-x64.exe",
        f"acme-collaboration-suite-enterprise-edition-{build.version}-universal.dmg.blockmap",
        "latest-mac.yml",
        f"{product}-{build.version}-arm64.AppImage",
    ]
    for number, verification in enumerate(Verification.values):
        BuildFile.objects.create(
            build=build,
            name=names[number][:255],
            size=4_294_967_296 - number,
            sha256=SHA256,
            sha512="cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
            "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e",
            source_url=f"https://download.todesktop.com/240808w4a9kky77/{names[0][:200]}"
            f"?Expires=1767225600&Signature={'Kq2Lm9Np4Rs8Tv7x' * 20}",
            verification=verification,
            verification_detail=LONG_ERROR,
        )
    reviewer = User.objects.create_user(
        LONG_USER, email=LONG_USER, first_name="Maximilian Alexander Friedrich",
        last_name="von Hohenzollern-Sigmaringen", password=PASSWORD, is_staff=True,
    )  # fmt: skip
    Approval.objects.create(release=release, user=reviewer, approved=False, comment=LONG_ERROR)
    Approval.objects.create(release=release, user=person("ada", "approvers"), approved=True)
    for number, event in enumerate(["pull_request_review_comment", "release", "x" * 64]):
        WebhookDelivery.objects.create(
            source=WebhookDelivery.Source.GITHUB if number != 1 else "todesktop",
            delivery_key=f"{number}{SHA256 * 2}"[:128],
            event=event,
            body=b"{}",
        )  # fmt: skip
    for number, status in enumerate(DeliveryStatus.values):
        event = audit_record(
            kind="promotion.desired_state_invalid",
            message=LONG_ERROR,
            build=build,
            release=release,
            actor=LONG_USER,
            url=f"https://github.com/acme/releases/pull/{1000 + number}",
        )
        for channel in Notification.Channel.values:
            Notification.objects.create(
                event=event, kind="github.pr_merged_unreviewed"[:64], channel=channel,
                status=status, attempts=5, response_status=503, last_error=LONG_ERROR,
                recipients=[LONG_USER],
            )  # fmt: skip
        CdnPurge.objects.create(
            backend="cloudfront",
            urls={"https://downloads.example-corporation.com": [names[0]] * 40},
            reason=f"withdrawn by {LONG_USER}: {LONG_ERROR}"[:500],
            actor=LONG_USER,
            status=status,
            attempts=5,
            last_error=LONG_ERROR,
        )
        RolloutHalt.objects.create(
            build_id=build.build_id,
            actor=LONG_USER,
            reason=f"crash reports from {LONG_USER}: {LONG_ERROR}",
            release=release if number else None,
            review_error="" if number else LONG_ERROR,
            settled_at=timezone.now() if number == 1 else None,
        )
    Token.objects.create(user=reviewer)
    Group.objects.create(name=f"contractors of {LONG_USER}"[:150])
    for number in range(3):
        seen = {"user_agent": LONG_UA, "ip_address": f"2001:db8:85a3:8d3:1319:8a2e:370:734{number}",
                "username": LONG_USER, "http_accept": "text/html," * 100,
                "path_info": "/admin/login/"}  # fmt: skip
        AccessAttempt.objects.create(
            **seen, get_data="next=/admin/", post_data=f"username={LONG_USER}",
            failures_since_start=5 + number,
        )  # fmt: skip
        AccessLog.objects.create(**seen, session_hash="a" * 64)
        AccessFailureLog.objects.create(**seen, locked_out=bool(number))


def every_list() -> list[str]:
    """Every list the admin registers, as `app/model`: a list added later is tested too. The
    Adoption page is one page of charts and tables, not a list."""
    from django.contrib import admin

    from adoption.models import AdoptionCount

    return sorted(
        f"{model._meta.app_label}/{model._meta.model_name}"
        for model in admin.site._registry
        if model is not AdoptionCount
    )


def cut_without_title(site) -> list[str]:
    """Headers that spill out of their column, and cells whose text is cut (by their box, or
    by an ellipsis) with nowhere to read it whole: no title on, around or in the cut part."""
    return site.driver.execute_script(
        """
        const cut = [];
        const say = (cell, why) => cut.push(`${why} ${cell.className}: ${cell.innerText}`);
        for (const th of document.querySelectorAll('#result_list thead th'))
          if (th.scrollWidth > th.clientWidth + 1) say(th, 'header');
        const whole = el => el.closest('[title]') || el.querySelector('[title]');
        for (const cell of document.querySelectorAll('#result_list tbody > tr > *')) {
          for (const el of [cell, ...cell.querySelectorAll('*')]) {
            const s = getComputedStyle(el);
            const hides = s.overflowX !== 'visible' || s.overflowY !== 'visible';
            const over = el.scrollWidth > el.clientWidth + 1
              || el.scrollHeight > el.clientHeight + 1;
            if (s.display !== 'inline' && hides && over && !whole(el)) say(cell, 'cut');
          }
          if (cell.innerText.includes('…') && !whole(cell)) say(cell, 'shortened');
        }
        return [...new Set(cut)];
        """
    )


@pytest.mark.parametrize("model", every_list())
def test_every_list_fits_1440_px(site, model):
    """Each list, filled with its longest values, shows every column at 1440 px beside the
    navigation and the filters with no sideways scrolling, and whatever it cuts short reads
    whole on hover (and on the row's page)."""
    every_list_filled()
    User.objects.create_superuser("root", password=PASSWORD)  # sees every list and action
    site.login("root")

    site.get(f"/admin/{model}/")
    site.wait_for("#result_list tbody tr")
    site.shot(f"list-{model.replace('/', '-')}")

    assert overflow(site) == {"page": 0, "list": 0}
    cut = cut_without_title(site)
    assert not cut, "\n".join(cut)
