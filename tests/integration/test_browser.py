"""In headless Chromium (tests/support/browser.py): the API docs page renders every operation from
files this app serves, and the pages behind mail links work as a person uses them (issue 16 items
8 and 9). No request may leave for another host: the browser cannot resolve any, and the
performance log shows what was asked for."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from reckai.bootstrap import Container, bootstrap_in_memory
from reckai.entrypoints.http.app import create_app
from tests.support.browser import chromium, foreign_requests, requested_urls, serve
from tests.support.identity import bearer, login, onboard, relax_auth_limits
from tests.support.identity_flow import NEW_PASSWORD, token_from_mail
from tests.support.jobs import run_queued_jobs

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as driver:
        yield driver


@pytest.fixture
def served() -> Iterator[tuple[Container, str]]:
    container = bootstrap_in_memory()
    with serve(create_app(container)) as base_url:
        yield container, base_url


def _wait(driver: Any, seconds: float = 30) -> WebDriverWait:  # type: ignore[type-arg]
    return WebDriverWait(driver, seconds)


def test_the_docs_page_renders_every_operation_from_this_server_only(browser: Any,
                                                                     served: tuple[Container, str]) -> None:
    _, base_url = served
    schema = httpx.get(f"{base_url}/schema/openapi.json").json()
    operations = sum(1 for item in schema["paths"].values() for method in item if method in
                     ("get", "post", "put", "patch", "delete"))
    requested_urls(browser)  # forget what earlier tests asked for
    browser.get(f"{base_url}/docs")
    _wait(browser).until(lambda driver: len(driver.find_elements(By.CSS_SELECTOR, ".opblock")) >= operations)
    rendered = browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")
    paths = {element.get_attribute("data-path") for element in rendered}
    assert "/api/auth/login" in paths and "/api/exceptions/{exception_id}/comments" in paths
    assert browser.find_element(By.CSS_SELECTOR, ".info .title").text.startswith("ReckAI API")
    urls = requested_urls(browser)
    assert f"{base_url}/docs/static/swagger-ui-bundle.js" in urls
    assert f"{base_url}/schema/openapi.json" in urls
    assert foreign_requests(urls, base_url) == []
    # The browser's own favicon.ico probe (the app has no icon) is the only tolerated 404.
    errors = [entry for entry in browser.get_log("browser")
              if entry["level"] == "SEVERE" and "/favicon.ico" not in entry["message"]]
    assert errors == [], errors


def _fill_and_submit(browser: Any, password: str, confirmation: str | None = None) -> None:
    browser.find_element(By.ID, "password").send_keys(password)
    browser.find_element(By.ID, "password_confirmation").send_keys(password if confirmation is None else confirmation)
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()


def _mail_link(container: Container, address: str, path: str) -> str:
    sent = container.mailer.sent  # type: ignore[attr-defined]
    body = str([mail for mail in sent if mail.to.lower() == address.lower()][-1].text_body)
    return f"{path}?token={token_from_mail(body)}"


def _signs_in(base_url: str, org_code: str, email: str, password: str) -> bool:
    answer = httpx.post(f"{base_url}/api/auth/login",
                        json={"organization_code": org_code, "email": email, "password": password})
    return answer.status_code == 200 and answer.json()["data"]["status"] == "authenticated"


def test_an_invited_user_sets_a_password_in_the_browser_and_signs_in_with_it(
        browser: Any, served: tuple[Container, str]) -> None:
    container, base_url = served
    with httpx.Client(base_url=base_url) as client:
        _, admin = onboard(client, container=container)
        admin_token = login(client, admin.org_code, admin.email, admin.password)
        email = "ines.invited@example.com"
        created = client.post("/api/users", json={"email": email, "name": "Ines Invited", "role": "analyst"},
                              headers=bearer(admin_token))
        assert client.post(f"/api/users/{created.json()['data']['id']}/invite",
                           headers=bearer(admin_token)).status_code == 200
        relax_auth_limits(client)
    requested_urls(browser)
    browser.get(base_url + _mail_link(container, email, "/accept-invitation"))
    rules = browser.find_element(By.ID, "password-rules").text
    assert "At least one digit." in rules
    _fill_and_submit(browser, "weak")
    alert = _wait(browser).until(lambda driver: driver.find_element(By.ID, "errors"))
    assert "The password must contain a digit." in alert.text
    _fill_and_submit(browser, NEW_PASSWORD)
    done = _wait(browser).until(lambda driver: driver.find_element(By.ID, "done"))
    assert "You can now sign in" in done.text
    assert foreign_requests(requested_urls(browser), base_url) == []
    assert _signs_in(base_url, admin.org_code, email, NEW_PASSWORD)


def test_a_user_resets_a_forgotten_password_in_the_browser(browser: Any, served: tuple[Container, str]) -> None:
    container, base_url = served
    with httpx.Client(base_url=base_url) as client:
        _, admin = onboard(client, container=container)
        assert client.post("/api/auth/password/reset",
                           json={"organization_code": admin.org_code, "email": admin.email}).status_code == 202
        run_queued_jobs(container)
        relax_auth_limits(client)
    browser.get(base_url + _mail_link(container, admin.email, "/reset-password"))
    _fill_and_submit(browser, NEW_PASSWORD, confirmation="something else")
    alert = _wait(browser).until(lambda driver: driver.find_element(By.ID, "errors"))
    assert "The two passwords are not the same." in alert.text
    _fill_and_submit(browser, NEW_PASSWORD)
    _wait(browser).until(lambda driver: driver.find_element(By.ID, "done"))
    assert _signs_in(base_url, admin.org_code, admin.email, NEW_PASSWORD)
    assert not _signs_in(base_url, admin.org_code, admin.email, admin.password)


def test_a_signed_up_admin_verifies_the_address_in_the_browser_and_may_then_invite(
        browser: Any, served: tuple[Container, str]) -> None:
    container, base_url = served
    with httpx.Client(base_url=base_url) as client:
        _, admin = onboard(client, verify_email=False)
        admin_token = login(client, admin.org_code, admin.email, admin.password)
        refused = client.post("/api/users", json={"email": "vic.later@example.com", "name": "Vic Later",
                                                  "role": "analyst"}, headers=bearer(admin_token))
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "EMAIL_NOT_VERIFIED"
        run_queued_jobs(container)
        requested_urls(browser)
        browser.get(base_url + _mail_link(container, admin.email, "/verify-email"))
        assert client.get("/api/auth/me", headers=bearer(admin_token)).json()["data"]["email_verified"] is False
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        done = _wait(browser).until(lambda driver: driver.find_element(By.ID, "done"))
        assert "Your e-mail address is confirmed" in done.text
        assert foreign_requests(requested_urls(browser), base_url) == []
        assert client.get("/api/auth/me", headers=bearer(admin_token)).json()["data"]["email_verified"] is True
        created = client.post("/api/users", json={"email": "vic.later@example.com", "name": "Vic Later",
                                                  "role": "analyst"}, headers=bearer(admin_token))
        assert created.status_code == 201, created.text
        assert client.post(f"/api/users/{created.json()['data']['id']}/invite",
                           headers=bearer(admin_token)).status_code == 200
        relax_auth_limits(client)
