from playwright.sync_api import expect

from leadrecord.roles import Role

from ..factories import TEST_PASSWORD, UserFactory


def _log_in(page, username: str, password: str) -> None:
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def test_a_manager_logs_in_sees_their_navigation_and_logs_out(page):
    UserFactory(username="morgan", role=Role.MANAGER)
    _log_in(page, "morgan", TEST_PASSWORD)

    expect(page.get_by_role("heading", name="Welcome, morgan")).to_be_visible()
    nav = page.locator("header nav")
    expect(nav.get_by_role("link", name="Record", exact=True)).to_be_visible()
    expect(nav.get_by_text("Manager")).to_be_visible()

    nav.get_by_role("link", name="Record", exact=True).click()
    expect(page.get_by_role("heading", name="The record")).to_be_visible()

    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    page.goto("/")
    expect(page).to_have_url(f"{page.url.split('/login')[0]}/login/?next=/")


def test_a_marketer_has_no_record_link_and_a_wrong_password_is_refused(page):
    UserFactory(username="maria", role=Role.MARKETER)
    _log_in(page, "maria", "wrong-password")
    expect(page.get_by_role("alert")).to_contain_text("correct username and password")

    _log_in(page, "maria", TEST_PASSWORD)
    expect(page.get_by_role("heading", name="Welcome, maria")).to_be_visible()
    expect(page.locator("header nav").get_by_role("link", name="Record", exact=True)).to_have_count(
        0
    )
