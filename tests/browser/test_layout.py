"""The layout at a phone's width and a laptop's: the menu folds and opens without
JavaScript, the skip link and keyboard focus show, wide tables keep their first column."""

import re

import pytest
from playwright.sync_api import expect

from leadrecord.roles import Role

from ..factories import TEST_PASSWORD, UserFactory

PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1366, "height": 768}


def _signed_in(browser, live_server, *, viewport, javascript: bool = True):
    # The manager has the longest menu.
    manager = UserFactory(username="morgan-layout", role=Role.MANAGER)
    context = browser.new_context(
        base_url=live_server.url, viewport=viewport, java_script_enabled=javascript
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto("/login/")
    page.get_by_label("Username").fill(manager.username)
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/$"))
    return context, page


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("javascript", [True, False])
def test_on_a_phone_the_menu_folds_and_opens_without_javascript(browser, live_server, javascript):
    context, page = _signed_in(browser, live_server, viewport=PHONE, javascript=javascript)
    menu = page.get_by_role("navigation", name="Main")
    expect(menu.get_by_role("link", name="Contacts")).to_be_hidden()
    expect(page.get_by_role("button", name="Log out")).to_be_hidden()
    page.locator("label.menu-button").click()
    expect(menu.get_by_role("link", name="Contacts")).to_be_visible()
    log_out = page.get_by_role("button", name="Log out")
    expect(log_out).to_be_visible()
    box = log_out.bounding_box()
    assert box is not None and box["x"] + box["width"] <= PHONE["width"]
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    menu.locator("summary", has_text="More").click()
    menu.get_by_role("link", name="Rules").click()
    expect(page).to_have_url(re.compile(r"/rules/$"))
    context.close()


@pytest.mark.django_db(transaction=True)
def test_on_a_laptop_the_whole_menu_is_one_row_beside_the_brand(browser, live_server):
    context, page = _signed_in(browser, live_server, viewport=LAPTOP)
    expect(page.locator("label.menu-button")).to_be_hidden()
    tops = page.evaluate(
        "[...document.querySelectorAll("
        "'.site-bar .brand, .site-menu a, .site-menu button, .site-menu summary')]"
        ".filter(el => el.checkVisibility())"  # what "More" holds shows when opened
        ".map(el => Math.round(el.getBoundingClientRect().top + el.offsetHeight / 2))"
    )
    assert max(tops) - min(tops) <= 12, tops  # one line, give or take a badge
    assert page.evaluate("document.documentElement.scrollWidth") <= LAPTOP["width"]
    # The pages opened now and then are one click away, under "More", and fit the screen too.
    menu = page.get_by_role("navigation", name="Main")
    expect(menu.get_by_role("link", name="Rules")).to_be_hidden()
    menu.locator("summary", has_text="More").click()
    expect(menu.get_by_role("link", name="Rules")).to_be_visible()
    expect(menu.get_by_role("link", name="Webhooks")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= LAPTOP["width"]
    context.close()


@pytest.mark.django_db(transaction=True)
def test_the_skip_link_comes_first_and_focus_is_visible(browser, live_server):
    context, page = _signed_in(browser, live_server, viewport=PHONE)
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    box = skip.bounding_box()
    assert box is not None and box["y"] >= 0  # shown when focused
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("", "none")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"#main$"))
    # The next stop is the menu's control, outlined too.
    page.goto("/")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "menu-toggle"
    outline = page.evaluate(
        "getComputedStyle(document.querySelector('label.menu-button')).outlineStyle"
    )
    assert outline not in ("", "none")
    context.close()


@pytest.mark.django_db(transaction=True)
def test_a_wide_table_scrolls_in_its_box_with_the_first_column_kept(browser, live_server):
    context, page = _signed_in(browser, live_server, viewport=PHONE)
    page.goto("/rules/")
    box = page.locator(".table-scroll").first
    assert box.evaluate("el => el.scrollWidth > el.clientWidth")
    first = box.locator("th").first
    assert first.evaluate("el => getComputedStyle(el).position") == "sticky"
    before = first.bounding_box()
    box.evaluate("el => { el.scrollLeft = 200; }")
    after = first.bounding_box()
    assert before is not None and after is not None and abs(before["x"] - after["x"]) < 1
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    context.close()


@pytest.mark.django_db(transaction=True)
def test_long_disclosed_values_wrap_between_words(browser, live_server):
    from contacts.services import disclosure_record
    from leadrecord.ledger import Actor

    from ..factories import contact_make

    person = contact_make(email="ada@acme.example", first_name="Ada")
    words = "machine learning platform evaluation " * 6
    disclosure_record(
        contact=person,
        key="pain_point",
        value=words.strip(),
        audience="all",
        purpose="qualification",
        source="form",
        actor=Actor.system("test"),
    )
    context, page = _signed_in(browser, live_server, viewport=PHONE)
    page.goto(f"/contacts/{person.pk}/")
    cell = page.locator(".disclosure-value", has_text="machine learning").first
    style = cell.evaluate(
        "el => [getComputedStyle(el).overflowWrap, getComputedStyle(el).wordBreak]"
    )
    assert style == ["break-word", "normal"]
    # Each rendered line starts at a word: no line begins inside "learning".
    starts = cell.evaluate(
        """el => {
            const text = el.firstChild, range = document.createRange(), tops = new Map();
            for (let i = 0; i < text.length; i++) {
                range.setStart(text, i); range.setEnd(text, i + 1);
                const top = Math.round(range.getBoundingClientRect().top);
                if (!tops.has(top)) tops.set(top, i);
            }
            return [...tops.values()];
        }"""
    )
    value = words.strip()
    assert len(starts) > 1
    assert all(index == 0 or value[index - 1] == " " for index in starts), starts
    context.close()
