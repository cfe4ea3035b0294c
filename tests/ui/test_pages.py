"""Each page of the Streamlit UI, run by AppTest against the real service."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from tests.factories import make_invoice
from tests.ui.conftest import PageOpener, forwarding, open_page, unique_id, wait_until_stored

pytestmark = pytest.mark.integration

#: Wrong on every count the model knows: total far above amount + tax, a tax rate that is
#: no standard rate, an amount just below the 5,000 approval limit.
SUSPICIOUS = {"amount": 4990.0, "tax": 123.45, "total": 7400.0}


def _all_text(at: object) -> str:
    """Every markdown, caption, alert and metric on the page, as one string."""
    parts: list[str] = []
    for kind in ("markdown", "caption", "error", "warning", "info", "success", "title"):
        parts.extend(str(e.value) for e in getattr(at, kind))
    parts.extend(f"{m.label}: {m.value}" for m in at.metric)  # type: ignore[attr-defined]
    return "\n".join(parts)


def _metric(at: object, label: str) -> str:
    values = [m.value for m in at.metric if m.label == label]  # type: ignore[attr-defined]
    assert values, f"no metric {label!r} on the page"
    return str(values[0])


def test_live_page_shows_kpis_of_the_summary_and_the_scored_invoice(
    ui_page: PageOpener, client: httpx.Client
) -> None:
    invoice_id = unique_id("ui-live")
    scored = client.post("/predict_invoice_fraud", json=make_invoice(invoice_id=invoice_id))
    assert scored.status_code == 200, scored.text
    wait_until_stored(client, invoice_id)

    at = ui_page("live")

    summary = client.post("/prediction_summary", json={"window_minutes": 60}).json()
    card = client.post("/model_card", json={}).json()
    assert _metric(at, "Invoices scored") == f"{summary['scored']:,}"
    assert _metric(at, "Flagged") == f"{summary['flagged']:,}"
    assert _metric(at, "Fraud rate") == f"{summary['fraud_rate']:.2%}"
    assert f"`{card['model_tag']}`" in [m.value for m in at.markdown]
    table = at.dataframe[0].value
    assert invoice_id in set(table["invoice_id"])
    assert not at.error


def test_live_table_marks_a_flagged_invoice_as_flagged(
    ui_page: PageOpener, client: httpx.Client
) -> None:
    invoice_id = unique_id("ui-flag")
    answer = client.post(
        "/predict_invoice_fraud", json=make_invoice(invoice_id=invoice_id, **SUSPICIOUS)
    )
    assert answer.json()["prediction"] == 1
    wait_until_stored(client, invoice_id)

    table = ui_page("live").dataframe[0].value

    row = table[table["invoice_id"] == invoice_id]
    assert row["flagged"].tolist() == [True]


def test_score_form_shows_probability_reasons_and_weekday_warning(
    ui_page: PageOpener, client: httpx.Client
) -> None:
    at = ui_page("score")
    at.number_input(key="amount").set_value(SUSPICIOUS["amount"])
    at.number_input(key="tax").set_value(SUSPICIOUS["tax"])
    at.number_input(key="total").set_value(SUSPICIOUS["total"])
    at.date_input(key="date").set_value(dt.date(2024, 5, 15))  # a Wednesday
    at.selectbox(key="weekday").set_value("Monday")
    at.button[0].click()
    at.run()

    assert not at.exception
    expected = client.post(
        "/predict_invoice_fraud",
        json=make_invoice(**SUSPICIOUS, invoice_weekday=0, explain=True),
    ).json()
    assert _metric(at, "Fraud probability") == f"{expected['fraud_probability']:.4f}"
    assert _metric(at, "Decision") == "FLAGGED"
    warnings = [w.value for w in at.warning]
    assert any("Wednesday" in w for w in warnings), warnings
    text = _all_text(at)
    assert expected["reasons"], "the service gave no reasons"
    top = max(expected["reasons"], key=lambda r: abs(r["contribution"]))
    assert top["text"] in text


def test_batch_upload_scores_good_rows_and_names_the_bad_ones(
    ui_page: PageOpener,
) -> None:
    good_id = unique_id("ui-batch")
    csv = (
        "invoice_id,amount,tax,total,invoice_year,invoice_month,invoice_day,label\n"
        f"{good_id},1000.0,180.0,1180.0,2024,5,15,0\n"
        "bad-amount,-5,0,-5,2024,5,15,0\n"
        "bad-text,100,abc,118,2024,5,15,0\n"
        "bad-date,100,18,118,2023,2,30,1\n"
        f"{good_id}-b,{SUSPICIOUS['amount']},{SUSPICIOUS['tax']},{SUSPICIOUS['total']},2024,5,18,1\n"
    )
    at = ui_page("batch")
    at.file_uploader[0].set_value(("invoices.csv", csv.encode(), "text/csv"))
    at.run()
    # Found before anything is sent: row 3's tax is text.
    assert any("Row 3" in e.value and "tax" in e.value for e in at.error), at.error
    assert any("label" in i.value for i in at.info)  # the extra column is ignored, and said so

    at.button(key="score").click()
    at.run()

    assert not at.exception
    errors = "\n".join(e.value for e in at.error)
    assert "Row 2 (line 3), amount" in errors
    assert "Row 4 (line 5), invoice_day" in errors
    results = at.dataframe[0].value
    assert results["row"].tolist() == [1, 5]
    assert results["invoice_id"].tolist() == [good_id, f"{good_id}-b"]
    assert results["flagged"].tolist() == [False, True]
    assert _metric(at, "Not scored") == "3"
    assert at.get("download_button")


def test_review_records_a_verdict_that_the_service_returns(
    ui_page: PageOpener, client: httpx.Client
) -> None:
    invoice_id = unique_id("ui-review")
    answer = client.post(
        "/predict_invoice_fraud", json=make_invoice(invoice_id=invoice_id, **SUSPICIOUS)
    ).json()
    assert answer["prediction"] == 1
    prediction_id = answer["prediction_id"]
    wait_until_stored(client, invoice_id)

    at = ui_page("review")
    at.selectbox(key="prediction_id").set_value(prediction_id).run()
    assert invoice_id in at.selectbox(key="prediction_id").format_func(prediction_id)
    explanation = client.post("/explain_invoice", json=make_invoice(**SUSPICIOUS)).json()
    assert explanation["reasons"][0]["text"] in _all_text(at)

    at.radio(key="verdict").set_value("Confirmed fraud")
    at.text_area(key="comment").set_value("supplier confirmed: never issued")
    at.button[0].click()  # the form's submit button
    at.run()

    assert not at.exception
    assert any("Recorded **fraud**" in s.value for s in at.success)
    stored = client.post("/recent_predictions", json={"limit": 1000, "only_flagged": True}).json()
    mine = [p for p in stored["predictions"] if p["prediction_id"] == prediction_id]
    assert len(mine) == 1
    assert mine[0]["verdict"] == "fraud"
    assert mine[0]["verdict_comment"] == "supplier confirmed: never issued"


def test_model_page_shows_the_threshold_and_features(
    ui_page: PageOpener, client: httpx.Client
) -> None:
    card = client.post("/model_card", json={}).json()

    at = ui_page("model")

    assert _metric(at, "Threshold") == f"{card['threshold']:.4f}"
    assert _metric(at, "Training rows") == f"{card['train_rows']:,}"
    features = at.dataframe[-1].value["feature"].tolist()
    assert features == card["feature_names"]


@pytest.mark.parametrize("page", ["live", "score", "batch", "review", "model"])
def test_every_page_says_plainly_when_the_api_is_down(
    page: str, down_page: tuple[PageOpener, str]
) -> None:
    opener, url = down_page
    at = opener(page)
    if page == "score":  # the form only calls the API when submitted
        at.button[0].click()
        at.run()
    elif page == "batch":
        at.file_uploader[0].set_value(
            ("a.csv", b"amount,tax,total,invoice_date\n100,18,118,2024-05-15\n", "text/csv")
        )
        at.run()
        at.button(key="score").click()
        at.run()

    assert not at.exception, [e.value for e in at.exception]
    messages = [e.value for e in at.error]
    assert any("not reachable" in m and url in m for m in messages), messages


def test_a_page_works_again_once_the_api_is_back(
    down_page: tuple[PageOpener, str], server_url: str
) -> None:
    _, url = down_page
    at = open_page("model")
    assert any(url in e.value for e in at.error)

    # The API comes up at the same URL (a forwarder to the real service on that port).
    with forwarding(url, server_url):
        at.run()

    assert not at.error, [e.value for e in at.error]
    assert _metric(at, "Threshold")
