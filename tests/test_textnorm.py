import pytest

from adrecall.textnorm import check_texts, model_text, normalize_text


def test_drops_urls_symbols_and_collapses_space() -> None:
    text = "Sale!!  50% off → https://shop.example.com/x?y=1 at www.shop.cn   now"
    assert normalize_text(text) == "Sale 50 off at now"


def test_url_stops_where_chinese_starts() -> None:
    assert normalize_text("详情见www.tule.cn限时特价") == "详情见 限时特价"
    assert normalize_text("官网：https://a.cn/x?q=1。立即预订") == "官网 立即预订"


def test_keeps_cjk_hashtags_mentions_and_brackets() -> None:
    assert normalize_text("【限时】#旅游# @携程  特价，机票！") == "限时 #旅游# @携程 特价 机票"
    assert normalize_text("[new] ads") == "[new] ads"


def test_check_texts_accepts_a_single_string() -> None:
    assert check_texts("one") == ["one"]


@pytest.mark.parametrize(
    ("texts", "error", "message"),
    [
        (["ok", None], ValueError, "row 1 is None"),
        (["ok", "fine", "  "], ValueError, "row 2 is empty"),
        ([3], TypeError, "row 0 is a int"),
        (42, TypeError, "expected a string or a list"),
        ({"q1": "shoes"}, TypeError, "got dict; pass a list with one text string per row"),
        ({"shoes", "car"}, TypeError, "got set"),
        (b"shoes", TypeError, "got bytes"),
    ],
)
def test_check_texts_names_the_bad_row(texts: object, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        check_texts(texts)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  cheap flights!!  ", "cheap flights"),
        ("Привет, мир", "Привет, мир"),  # a script outside the kept set: the raw text, stripped
        (" 🔥🔥 ", "🔥🔥"),
        ("www.example.com/sale", "www.example.com/sale"),
    ],
)
def test_model_text_falls_back_to_the_raw_text_when_normalisation_empties_it(raw: str, expected: str) -> None:
    assert model_text(raw) == expected
    assert model_text(raw, normalize=False) == raw.strip()
