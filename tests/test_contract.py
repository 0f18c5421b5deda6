import json
from datetime import UTC, datetime
from typing import Any

import pytest

from oxy.contract import (
    NORMAL,
    QUALITY_CODE,
    ContractError,
    DataMessage,
    Domain,
    Quality,
    Quantity,
    Reading,
    Reference,
    TopicKind,
    decode,
    decode_record,
    encode,
    parse_topic,
    subscription,
    to_canonical,
    topic,
    value_problem,
)


def _msg(**kw: object) -> dict[str, object]:
    base: dict[str, object] = {
        "v": 1,
        "gw": "gw1",
        "seq": 1,
        "sent_at": "2026-11-28T10:00:00.000Z",
        "readings": [
            {"sensor": "T1-dp", "ts": "2026-11-28T09:59:59.123Z", "value": 112.4, "unit": "inH2O"}
        ],
    }
    base.update(kw)
    return base


def test_topic_round_trip() -> None:
    name = topic("BV-CHORAY", "gw1", TopicKind.DATA)
    assert name == "oxy/v1/BV-CHORAY/gw1/data"
    t = parse_topic(name)
    assert (t.site, t.gateway, t.kind) == ("BV-CHORAY", "gw1", TopicKind.DATA)
    assert subscription(TopicKind.DATA, "ing") == "$share/ing/oxy/v1/+/+/data"


@pytest.mark.parametrize(
    "bad", ["oxy/v2/a/b/data", "oxy/v1/a/b/other", "x/v1/a/b/data", "oxy/v1/a/data"]
)
def test_bad_topics_rejected(bad: str) -> None:
    with pytest.raises(ContractError):
        parse_topic(bad)


def test_encode_decode_wire_form() -> None:
    msg = DataMessage.model_validate_json(json.dumps(_msg()))
    raw = encode(msg)
    wire = json.loads(raw)
    assert wire["sent_at"] == "2026-11-28T10:00:00.000Z"
    assert wire["readings"][0]["ts"] == "2026-11-28T09:59:59.123Z"
    _, back = decode("oxy/v1/S1/gw1/data", raw)
    assert back == msg


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{not json", "message"),
        (
            b'{"v": 1, "gw": "gw1", "seq": 1, "sent_at": "2026-11-28T10:00:00Z", "readings": '
            b'[{"sensor": "s", "ts": "2026-11-28T10:00:00Z", "value": NaN, "unit": "bar"}]}',
            "finite",
        ),
        (json.dumps(_msg(v=2)).encode(), "v"),
        (
            json.dumps(
                _msg(
                    readings=[
                        {"sensor": "s", "ts": "2026-11-28T10:00:00", "value": 1, "unit": "bar"}
                    ]
                )
            ).encode(),
            "timezone",
        ),
        (
            json.dumps(
                _msg(
                    readings=[
                        {"sensor": "s", "ts": "2026-11-28T10:00:00Z", "value": 1, "unit": "furlong"}
                    ]
                )
            ).encode(),
            "unknown unit",
        ),
        (
            json.dumps(
                _msg(
                    readings=[
                        {"sensor": "s", "ts": "2026-11-28T10:00:00Z", "value": None, "unit": "bar"}
                    ]
                )
            ).encode(),
            "good",
        ),
        (json.dumps(_msg(gw="other")).encode(), "does not match"),
        (
            json.dumps(
                _msg(
                    readings=[
                        {"sensor": "s", "ts": "2026-11-28T10:00:00Z", "value": True, "unit": "bar"}
                    ]
                )
            ).encode(),
            "readings.0.value",
        ),
        (
            json.dumps(
                _msg(readings=[{"sensor": "s", "ts": 1764324000, "value": 1, "unit": "bar"}])
            ).encode(),
            "readings.0.ts",
        ),
        (json.dumps(_msg(seq=True)).encode(), "seq"),
        (json.dumps(_msg(sent_at="9999-12-31T23:00:00-05:00")).encode(), "outside the years"),
        (json.dumps(_msg(readings=[])).encode(), "readings"),
    ],
)
@pytest.mark.parametrize("decoder", [decode, decode_record], ids=["model", "record"])
def test_decode_rejects_with_reason(payload: bytes, reason: str, decoder: Any) -> None:
    with pytest.raises(ContractError) as err:
        decoder("oxy/v1/S1/gw1/data", payload)
    assert reason in err.value.reason


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"v": 0},
        {"seq": -1},
        {"gw": "bad code!"},
        {"extra": 1},
        {"sent_at": "2026-11-28T10:00:00"},
        {"readings": [{"sensor": "s", "ts": "2026-11-28T10:00:00Z", "value": 1, "unit": "bar",
                       "q": "perfect"}]},
        {"readings": [{"sensor": "s", "ts": "2026-11-28T10:00:00Z", "value": 1, "unit": "bar",
                       "more": 1}]},
        {"readings": [{"sensor": "s", "ts": "2026-11-28T10:00:00Z", "value": None, "unit": "bar",
                       "q": "comm_error"}]},
        {"readings": [{"sensor": "s", "ts": "2026-11-28T10:00:00+07:00", "value": "1.5",
                       "unit": "psi", "q": "stale"}]},
        {"readings": [{"sensor": "s", "ts": "2026-11-28T10:00:00Z", "value": 1, "unit": "bar"}]
         * 5001},
        # Strict JSON types (issue 14): no bool as a number, no epoch as a time, no bool seq.
        {"readings": [{"sensor": "s", "ts": "2026-11-28T10:00:00Z", "value": True, "unit": "bar"}]},
        {"readings": [{"sensor": "s", "ts": 1764324000, "value": 1, "unit": "bar"}]},
        {"readings": [{"sensor": "s", "ts": 1764324000.5, "value": 1, "unit": "bar"}]},
        {"seq": True},
        {"seq": 1.0},
        {"sent_at": 1764324000},
        {"readings": [{"sensor": "s", "ts": "2026-11-28T10:00:00Z", "value": 1e400,
                       "unit": "bar"}]},
        {"readings": [{"sensor": "s", "ts": "2026-11-28T10:00:00Z", "value": 1.7e308,
                       "unit": "MPa"}]},
        # Extreme times: year 1 and 9999 with offsets that leave the calendar in UTC.
        {"sent_at": "9999-12-31T23:00:00-05:00"},
        {"sent_at": "0001-01-01T00:00:00+05:00"},
        {"readings": [{"sensor": "s", "ts": "0001-01-01T00:00:00+05:00", "value": 1,
                       "unit": "bar"}]},
        {"readings": [{"sensor": "s", "ts": "9999-12-31T23:00:00-05:00", "value": 1,
                       "unit": "bar"}]},
        {"readings": [{"sensor": "s", "ts": "2026-11-28T10:00:00Z", "value": 12, "unit": "bar"}]},
    ],
)  # fmt: skip
def test_record_decoder_agrees_with_the_models(change: dict[str, Any]) -> None:
    """ingest decodes into dicts (decode_record): it accepts and rejects exactly what the models
    do, and what it accepts carries the same values."""
    payload = json.dumps({**_msg(), **change}).encode()
    try:
        _, model = decode("oxy/v1/S1/gw1/data", payload)
    except ContractError:
        with pytest.raises(ContractError):
            decode_record("oxy/v1/S1/gw1/data", payload)
        return
    _, record = decode_record("oxy/v1/S1/gw1/data", payload)
    assert isinstance(model, DataMessage) and isinstance(record, dict)
    assert (record["gw"], record["seq"], record["sent_at"]) == (model.gw, model.seq, model.sent_at)
    assert [
        (r["sensor"], r["ts"], r["value"], r["unit"], r.get("q", Quality.GOOD))
        for r in record["readings"]
    ] == [(r.sensor, r.ts, r.value, r.unit, r.q) for r in model.readings]


def test_record_decoder_passes_state_and_status_to_the_models() -> None:
    state = b'{"v": 1, "gw": "gw1", "online": true, "bd_seq": 3}'
    assert decode_record("oxy/v1/S1/gw1/state", state) == decode("oxy/v1/S1/gw1/state", state)


def test_bad_value_travels_as_null_with_quality() -> None:
    r = Reading(
        sensor="s", ts=datetime(2026, 1, 1, tzinfo=UTC), value=None, unit="bar", q="comm_error"
    )
    assert json.loads(r.model_dump_json())["value"] is None


def test_units_convert_to_canonical() -> None:
    assert to_canonical(Quantity.DIFF_PRESSURE, 254.0, "mmH2O") == pytest.approx(10.0, rel=1e-3)
    assert to_canonical(Quantity.HEAD_PRESSURE, 250.0, "psi") == pytest.approx(17.237, rel=1e-3)
    assert to_canonical(Quantity.TEMPERATURE, 90.15, "K") == pytest.approx(-183.0)
    with pytest.raises(ContractError):
        to_canonical(Quantity.HEAD_PRESSURE, 1.0, "inH2O")


def test_reference_conditions_match_domain_figures() -> None:
    # shared DOMAIN.md: 1.429 kg/m3 at 0 °C; 1 kg LOX = 0.700 m3; 1 L LOX ≈ 799 L gas at 0 °C.
    # Real gas (second virial coefficient), not the ideal 1.4277: every Nm3 was 0.1 % high.
    assert NORMAL.gas_density == pytest.approx(1.429, abs=0.0003)
    assert Reference(20.0).gas_density == pytest.approx(1.331, abs=0.0005)
    assert NORMAL.kg_to_m3(1.0) == pytest.approx(0.700, abs=0.001)
    assert NORMAL.liquid_m3_to_gas_m3(1.0) == pytest.approx(799, abs=1)
    assert Reference(temp_c=15).kg_to_m3(1.0) == pytest.approx(0.739, abs=0.001)
    assert Reference(temp_c=20).liquid_m3_to_gas_m3(1.0) == pytest.approx(858, abs=1)


def test_strict_types_accept_integers_as_numbers() -> None:
    payload = json.dumps(_msg(readings=[{"sensor": "s", "ts": "2026-11-28T10:00:00+07:00",
                                         "value": 12, "unit": "bar"}])).encode()  # fmt: skip
    for decoder in (decode, decode_record):
        _, msg = decoder("oxy/v1/S1/gw1/data", payload)
        assert msg is not None


@pytest.mark.parametrize(
    ("ts", "problem"),
    [
        ("0001-01-01T00:00:00+05:00", "before 2020-01-01"),
        ("9999-12-31T23:00:00-05:00", "in the future"),
        ("1970-01-01T00:00:00Z", "before 2020-01-01"),
        ("2019-12-31T23:59:59.999Z", "before 2020-01-01"),
        ("2026-11-28T10:05:01Z", "in the future"),
        ("2020-01-01T00:00:00Z", None),
        ("2026-11-28T10:05:00Z", None),
        ("2026-11-28T17:04:00+07:00", None),
    ],
)
def test_time_domain_never_overflows(ts: str, problem: str | None) -> None:
    _, msg = decode_record(
        "oxy/v1/S1/gw1/data",
        json.dumps(_msg(readings=[{"sensor": "s", "ts": ts, "value": 1, "unit": "bar"}])).encode(),
    )
    assert isinstance(msg, dict)
    now = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
    got = Domain().ts_problem(msg["readings"][0]["ts"], now)
    assert (got is None) if problem is None else (got is not None and problem in got)


@pytest.mark.parametrize(
    ("value", "unit", "problem"),
    [
        (1.7e308, "MPa", "not finite"),
        (-1.7e308, "kPa_dp", "not finite"),
        (1e300, "bar", "beyond"),
        (-1e13, "kg", "beyond"),
        (112.4, "inH2O", None),
        (-500.0, "inH2O", None),  # the contract's domain; the sensor's own range is the registry's
    ],
)
def test_value_domain_after_conversion(value: float, unit: str, problem: str | None) -> None:
    quantity = {"MPa": Quantity.HEAD_PRESSURE, "bar": Quantity.HEAD_PRESSURE,
                "kPa_dp": Quantity.DIFF_PRESSURE, "inH2O": Quantity.DIFF_PRESSURE,
                "kg": Quantity.CONTENTS}[unit]  # fmt: skip
    got = value_problem(to_canonical(quantity, value, unit))
    assert (got is None) if problem is None else (got is not None and problem in got)
    assert value_problem(float("nan")) is not None


def test_quality_codes_live_in_the_contract() -> None:
    assert QUALITY_CODE == {Quality.GOOD: 0, Quality.STALE: 1, Quality.OUT_OF_RANGE: 2,
                            Quality.COMM_ERROR: 3}  # fmt: skip


def test_a_year_before_1000_is_written_with_four_digits_so_only_that_reading_is_refused() -> None:
    """strftime's %Y gives "1" for year 1 (glibc): a gateway whose clock said year 1 published
    "1-01-01T…", which is no RFC 3339 time, so ingest refused the whole message and its good
    readings went to the dead letters with it (found by the chaos suite's in-batch hostile
    readings). Four digits: the message decodes, and the domain check refuses that reading
    alone (ingest.resolve)."""
    from oxy.contract import decode_record, encode_data, format_ts

    year1 = datetime(1, 1, 1, 0, 0, 5, tzinfo=UTC)
    assert format_ts(year1) == "0001-01-01T00:00:05.000Z"
    assert format_ts(datetime(999, 12, 31, 23, 59, 59, 123000, tzinfo=UTC)) == (
        "0999-12-31T23:59:59.123Z"
    )
    good = Reading(sensor="C1-dp", ts=datetime(2026, 3, 1, tzinfo=UTC), value=1.0, unit="inH2O")
    bad = Reading(sensor="C1-dp", ts=year1, value=1.0, unit="inH2O")
    payload, n = encode_data("gw-1", 7, datetime(2026, 3, 1, tzinfo=UTC), [good, bad])
    assert n == 2
    _, record = decode_record("oxy/v1/S1/gw-1/data", payload)
    assert isinstance(record, dict)
    assert [r["ts"] for r in record["readings"]] == [good.ts, year1]
