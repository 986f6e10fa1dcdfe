"""The one bounded memo (observability.memo): lookups are a dict's, the bound holds."""

from __future__ import annotations

from observability.lines import textline
from observability.masking.redaction import get_redactor
from observability.memo import Memo


def test_a_full_memo_starts_again_from_its_fixed_entries():
    memo: Memo[str | None, str] = Memo(3, {None: "-"})
    for n in range(10):
        assert memo.keep(f"k{n}", f"v{n}") == f"v{n}"
        assert len(memo) <= 3 and memo[None] == "-"
    assert memo.get("k9") == "v9" and memo.get("k0") is None
    memo.keep("k9", "again")  # a key already held: no reset
    assert memo.get("k8") == "v8" and memo["k9"] == "again"
    memo.reset()
    assert memo == {None: "-"}


def test_the_hot_paths_memos_stay_bounded_under_a_flood_of_new_texts():
    redactor = get_redactor()
    for n in range(textline._MEMO_SIZE + 50):
        text = f"agent {n}"  # quoted: goes through the rendered-texts memo
        assert textline.render_value(text) == f'"{text}"'
        redactor.text(f"note {n}")
    assert len(textline._rendered_texts) <= textline._MEMO_SIZE
    assert textline._rendered_texts[None] == textline.ABSENT
    assert len(redactor._memo) <= redactor._memo.limit
