"""Every page over the fixture marts, with the numbers worked out by hand in tests/fixtures/warehouse.py:
acme has 15 prompt events in 7 sessions of 4 users; 8 of them are on the paid tier; topic 0 "Password reset"
has 5 events; transitions 0→1 x2, 0→2 x1, 1→2 x2, -1→0 x1."""

from __future__ import annotations

import re

import pytest

from tests.fixtures import warehouse as fx


def text(answer) -> str:
    return re.sub(r"\s+", " ", answer.get_data(as_text=True))


def kpi(page: str, name: str) -> str:
    return re.search(rf'id="kpi-{name}">([^<]+)<', page).group(1)


def test_overview_counts_and_filters(signed_in):
    page = text(signed_in.get("/"))
    assert (kpi(page, "events"), kpi(page, "sessions"), kpi(page, "users")) == ("15", "7", "4")
    assert "Password reset" in page and 'id="activity-json"' in page
    paid = text(signed_in.get("/?enum.tier=paid"))
    assert (kpi(paid, "events"), kpi(paid, "sessions"), kpi(paid, "users")) == ("8", "4", "3")
    by_name = text(signed_in.get("/?project=acme&field=prompt&event=user_message"))
    assert kpi(by_name, "events") == "15"
    nothing = text(signed_in.get(f"/?start={fx.NOW.date().replace(year=2030)}"))
    assert kpi(nothing, "events") == "0" and "No events match these filters" in nothing


def test_another_project_and_field(signed_in):
    page = text(signed_in.get(f"/?project={fx.TRIALCO}"))
    assert kpi(page, "events") == "2"
    assert '<option selected>query</option>' in page


def test_topics_table(signed_in):
    page = text(signed_in.get("/topics"))
    row = r'<a href="/topics/-?\d+[^"]*">([^<]+)</a></td> <td>[^<]*</td> <td class="num events">(\d+)<'
    rows = dict(re.findall(row, page))
    assert rows["Password reset"] == "5"
    assert sum(int(n) for n in rows.values()) == 15
    assert page.count('<svg class="spark"') == len(rows)


def test_topic_page(signed_in):
    page = text(signed_in.get("/topics/0"))
    assert 'id="topic-label">Password reset<' in page
    assert 'id="topic-events">5<' in page
    assert "How do I reset my password?" in page  # examples
    assert re.search(r'id="go-to">.*Pricing plans</a></td><td class="num">2<', page)
    assert re.search(r'id="come-from">.*Unclustered</a></td><td class="num">1<', page)
    assert re.search(r"<td>tier</td><td>free</td><td class=\"num\">4<", page)  # 4 of the 5 are free
    assert re.search(r"<td>latency_ms</td><td class=\"num\">5<", page)


def test_journeys_sankey_and_tables(signed_in):
    page = text(signed_in.get("/journeys"))
    assert 'id="sankey-json"' in page and "→ Pricing plans" in page
    flows = re.findall(r"<tr><td>([^<]+)</td><td>([^<]+)</td><td class=\"num\">(\d+)</td>", page)
    assert ("Password reset", "Pricing plans", "2") in flows
    assert ("Pricing plans", "Billing questions", "2") in flows
    assert "Password reset &gt; Pricing plans" in page  # a top path
    only_from = text(signed_in.get("/journeys?from=1"))
    flows = re.findall(r"<tr><td>([^<]+)</td><td>([^<]+)</td><td class=\"num\">(\d+)</td>", only_from)
    assert flows and all(f == "Pricing plans" for f, _, _ in flows)
    users = signed_in.get("/journeys?scope=user")
    assert users.status_code == 200


def test_topic_map(signed_in):
    page = text(signed_in.get("/map"))
    assert 'id="map-json"' in page
    for label in ("Password reset", "Pricing plans", "Billing questions"):
        assert label in page


def test_metadata_page_lists_fields_by_type(signed_in):
    page = text(signed_in.get("/settings/metadata"))
    for field, type_ in (("prompt", "text"), ("tier", "enum"), ("latency_ms", "number")):
        assert re.search(rf'data-field="{field}"> <td>{field}</td> <td class="type">{type_}', page), field


@pytest.mark.parametrize(("path", "status", "message"), [
    ("/?start=yesterday", 400, "start: 'yesterday' is not a date"),
    ("/?start=2025-06-10&end=2025-06-01", 400, "is before start"),
    ("/?project=nosuch", 404, "no project 'nosuch'"),
    ("/?field=nosuch", 404, "no text field 'nosuch'"),
    ("/topics/42", 404, "no topic 42"),
    ("/journeys?scope=galaxy", 400, "scope: use session or user"),
    ("/journeys?from=abc", 400, "from: 'abc' is not a topic id"),
])
def test_bad_filters_are_clear_json_errors(signed_in, path, status, message):
    answer = signed_in.get(path, headers={"Accept": "application/json"})
    assert answer.status_code == status
    assert message in answer.get_json()["message"]
    html = signed_in.get(path)
    assert html.status_code == status and "Traceback" not in html.get_data(as_text=True)


def test_plotly_is_served_locally(signed_in, client):
    page = text(signed_in.get("/"))
    assert '<script src="/vendor/plotly.min.js">' in page and "cdn" not in page.lower()
    js = client.get("/vendor/plotly.min.js")
    assert js.status_code == 200 and b"plotly" in js.get_data()[:2000].lower()


def test_journeys_follow_the_event_filters(signed_in):
    """Paid sessions: s2 1→2, s3 0→1→2 (s6 has one step, s7 repeats 2): the flows count only those."""
    page = text(signed_in.get("/journeys?enum.tier=paid"))
    flows = re.findall(r"<tr><td>([^<]+)</td><td>([^<]+)</td><td class=\"num\">(\d+)</td>", page)
    assert sorted(flows) == [("Password reset", "Pricing plans", "1"),
                             ("Pricing plans", "Billing questions", "2")]
    assert "the event filters do not apply to them" in page


# Conversions (tests/fixtures/warehouse.py, ACME_OUTCOMES): topic 0 "Password reset" 5 messages, 1 click,
# 2 conversions, 49.00 revenue, 40 s to convert; topic 1 "Pricing plans" 4 messages, 1 view, 1 click, 1 add
# to cart, 1 purchase, 99.00; "Billing questions" none. On the paid tier: topic 1 has 3 messages and the
# purchase.


def conversion_cells(page: str) -> dict[str, tuple[str, ...]]:
    """Topic label -> (CTR, conversions, conversion rate, revenue) as the Topics table shows them."""
    row = (r'">([^<]+)</a></td>(?:(?!</tr>).)*?<td class="num ctr">([^<]+)</td> '
           r'<td class="num conversions">([^<]+)</td> <td class="num conversion-rate">([^<]+)</td> '
           r'<td class="num revenue">([^<]+)</td>')
    return {label: tuple(cells) for label, *cells in re.findall(row, page)}


def test_topics_table_shows_conversions_over_the_filters(signed_in):
    page = text(signed_in.get("/topics"))
    assert '<th class="num">Conversions</th>' in page and '<th class="num">Revenue</th>' in page
    cells = conversion_cells(page)
    assert cells["Password reset"] == ("20.0%", "2", "40.0%", "49.00")
    assert cells["Pricing plans"] == ("25.0%", "1", "25.0%", "99.00")
    assert cells["Billing questions"] == ("0.0%", "0", "0.0%", "0.00")
    paid = conversion_cells(text(signed_in.get("/topics?enum.tier=paid")))  # the segments mart
    assert paid["Pricing plans"] == ("33.3%", "1", "33.3%", "99.00")
    assert paid["Password reset"] == ("0.0%", "0", "0.0%", "0.00")
    day = fx.NOW.date().isoformat()
    assert conversion_cells(text(signed_in.get(f"/topics?start={day}&end={day}"))) == cells
    # Every message of the field is a user_message: that event filter keeps them all.
    assert conversion_cells(text(signed_in.get("/topics?event=user_message"))) == cells


def test_conversions_are_not_made_up_for_filters_the_marts_cannot_split(signed_in):
    page = text(signed_in.get("/topics?enum.tier=paid&enum.tier_language=en"))
    assert 'id="conversions-note">Conversions are split by one enum field at a time' in page


def test_no_conversion_columns_for_a_project_without_outcome_events(signed_in):
    page = text(signed_in.get(f"/topics?project={fx.TRIALCO}"))
    assert "Shipping times" in page and "Conversions" not in page and "Revenue" not in page
    overview = text(signed_in.get(f"/?project={fx.TRIALCO}"))
    assert 'id="kpi-conversions"' not in overview
    assert 'id="conversions"' not in text(signed_in.get(f"/topics/0?project={fx.TRIALCO}"))


def test_overview_conversions_and_revenue(signed_in):
    page = text(signed_in.get("/"))
    assert (kpi(page, "conversions"), kpi(page, "revenue")) == ("3", "148.00")
    paid = text(signed_in.get("/?enum.tier=paid"))
    assert (kpi(paid, "conversions"), kpi(paid, "revenue")) == ("1", "99.00")
    later = text(signed_in.get(f"/?start={fx.NOW.date().replace(year=2030)}"))
    assert (kpi(later, "conversions"), kpi(later, "revenue")) == ("0", "0.00")


def conv(page: str, name: str) -> str:
    return re.search(rf'id="conv-{name}">([^<]+)<', page).group(1)


def test_topic_conversions_panel(signed_in):
    page = text(signed_in.get("/topics/0"))
    assert 'id="conversions"' in page and 'id="conversions-json"' in page
    got = {name: conv(page, name) for name in ("messages", "views", "clicks", "ctr", "add-to-carts",
                                                "purchases", "conversions", "revenue", "median")}
    assert got == {"messages": "5", "views": "0", "clicks": "1", "ctr": "20.0%", "add-to-carts": "0",
                   "purchases": "1", "conversions": "2", "revenue": "49.00", "median": "40 s"}
    pricing = text(signed_in.get("/topics/1"))
    assert [conv(pricing, n) for n in ("views", "add-to-carts", "purchases", "revenue")] == [
        "1", "1", "1", "99.00"]
    billing = text(signed_in.get("/topics/2"))
    assert (conv(billing, "conversions"), conv(billing, "median")) == ("0", "—")


def test_conversational_topics_follow_the_pipeline_and_stay_off_the_overview(tmp_path):
    """A topic the pipeline marked conversational (dim_topics.is_conversational, what `turret topics` hides
    too) is listed apart on Topics and left out of the Overview's top and new topics."""
    import duckdb
    from turret.publish import publish
    from turret.settings import Settings
    from turret.ui import create_app

    from tests.turret.ui.conftest import PASSWORD, sign_in

    settings = Settings(home=tmp_path / "home", ui_password=PASSWORD)
    fx.built_warehouse(settings.warehouse)
    con = duckdb.connect(str(settings.warehouse))
    try:
        con.execute("update marts.dim_topics set is_conversational = (topic_id = 2) where project_id = ?",
                    [fx.ACME])
        publish(settings, con)
    finally:
        con.close()
    app = create_app(settings, {"TESTING": True})
    try:
        client = app.test_client()
        assert sign_in(client).status_code == 302
        topics = text(client.get("/topics"))
        subjects, chat = topics.split("Conversational topics", 1)
        assert "Password reset" in subjects and "Billing questions" not in subjects
        assert "Billing questions" in chat and "Password reset" not in chat
        overview = text(client.get("/"))
        assert "Password reset" in overview and "Billing questions" not in overview
    finally:
        app.extensions["turret_marts"].close()
        app.extensions["turret_control_plane"].dispose()
