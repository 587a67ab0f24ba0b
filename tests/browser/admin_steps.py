"""Steps a person takes in the admin, in the browser."""

import re

from playwright.sync_api import expect


def log_in(page, username, password, then="/admin/"):
    """Logs in through the admin's login form and lands on ``then``."""
    page.goto(f"/admin/login/?next={then}")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(re.escape(then) + "$"))


def run_action(page, changelist, row, description):
    """Ticks the row holding the text ``row`` in a changelist and runs the action."""
    page.goto(changelist)
    page.locator("#result_list tbody tr", has_text=row).get_by_role("checkbox").check()
    page.get_by_label("Action:").select_option(label=description)
    page.get_by_role("button", name="Run").click()
