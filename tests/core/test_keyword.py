"""Keyword search means what the query says: inflections, typos, phrases, exclusions, identifiers, enough
candidates for filters and -k, and keyword hits that survive the hybrid ranking. Each test is a check a user
would make, run through the real Indexer, Store and Searcher."""

from __future__ import annotations

from pathlib import Path

import pytest

from desktop_search.core import analysis
from desktop_search.core.indexer import Indexer
from desktop_search.core.search import Searcher, make_snippet
from desktop_search.core.store import Store
from tests.conftest import write


def _index(settings, folder: Path, files: dict[str, str], encoder=None) -> Searcher:
    for name, text in files.items():
        write(folder / name, text)
    store = Store(settings.index_dir)
    Indexer(store, settings, encoder).index([folder])
    return Searcher(store, encoder)


def _names(searcher: Searcher, query: str, k: int = 10, mode: str = "keyword") -> list[str]:
    return [Path(h.path).name for h in searcher.search(query, k=k, mode=mode).hits]


FILLER_EN = "This report was written for the annual meeting of the society and describes the results. "


def test_inflected_words_find_each_other(settings, tmp_path):
    s = _index(settings, tmp_path / "d", {
        "run.txt": FILLER_EN + "The athletes were running along the river every morning before work.",
        "other.txt": FILLER_EN + "The committee discussed the budget of the library for next year.",
        "haus.txt": "Die Häuser in der Altstadt wurden im neunzehnten Jahrhundert gebaut und später renoviert.",
        "kitab.txt": "قرأ الطالب الكتاب في المكتبة العامة بعد انتهاء الدروس في المدرسة الثانوية.",
    })
    assert _names(s, "runs") == ["run.txt"]
    assert _names(s, "Haus")[0] == "haus.txt"
    assert _names(s, "كتاب")[0] == "kitab.txt"


def test_a_typo_falls_back_to_the_nearest_word_and_says_so(settings, tmp_path):
    s = _index(settings, tmp_path / "d", {
        "ir.txt": FILLER_EN + "Information retrieval systems rank documents by their relevance to a query.",
        "cook.txt": FILLER_EN + "Slow cooking brings out the flavour of the vegetables.",
    })
    res = s.search("retreival", mode="keyword")
    assert [Path(h.path).name for h in res.hits] == ["ir.txt"]
    assert res.corrected == "retrieval"
    assert "**retrieval**" in res.hits[0].snippet
    exact = s.search("retrieval", mode="keyword")
    assert exact.corrected is None  # a word that matches is never "corrected"


def test_phrases_span_line_breaks_and_match_whole_words_accents_and_punctuation(settings, tmp_path):
    s = _index(settings, tmp_path / "d", {
        "cat.txt": FILLER_EN + "In the corner there was a sleeping\ncat next to the stove.",
        "hyphen.txt": FILLER_EN + "The old dog was sleep-\ning on the porch.",
        "fox.txt": FILLER_EN + "The quick brown fox jumps over the lazy dog.",
        "cv.txt": FILLER_EN + "Please attach your résumé to the application form.",
        "church.txt": FILLER_EN + "Who were the Methodists? A movement within Protestant Christianity.",
    })
    assert _names(s, '"sleeping cat"') == ["cat.txt"]
    assert _names(s, '"dog was sleeping"') == ["hyphen.txt"]
    assert _names(s, '"own fox"') == []  # a substring of "brown fox" is not the phrase
    assert _names(s, '"brown fox"') == ["fox.txt"]
    assert _names(s, '"attach your resume"') == ["cv.txt"]
    assert _names(s, '"the Methodists?"') == ["church.txt"]


def test_exclusion_drops_whole_words_and_their_inflections_not_substrings(settings, tmp_path):
    s = _index(settings, tmp_path / "d", {
        "banana.txt": FILLER_EN + "An apple and a banana for lunch.",
        "bandana.txt": FILLER_EN + "An apple printed on a red bandana.",
        "ban.txt": FILLER_EN + "The city wants to ban apple sales on Sundays.",
        "bans.txt": FILLER_EN + "New bans on apple imports were announced.",
    })
    assert sorted(_names(s, "apple -ban")) == ["banana.txt", "bandana.txt"]


def test_identifiers_are_found_by_their_parts_and_exact_matches_rank_first(settings, tmp_path):
    s = _index(settings, tmp_path / "d", {
        "log.txt": "Startup failed with ERR_4711 after the configuration was loaded.",
        "loose.txt": "The err field was empty and the order number was 4711 for this customer err.",
        "code.txt": "We call getUserId() on the session, then foo.bar() and push into a std::vector of ids.",
        "prose.txt": "A user walked to the bar with a friend and ordered some food.",
    })
    assert "log.txt" in _names(s, "err")
    assert "log.txt" in _names(s, "4711")
    assert _names(s, "ERR_4711")[0] == "log.txt"
    assert _names(s, "std::vector")[0] == "code.txt"
    assert "code.txt" in _names(s, "vector")
    assert _names(s, "getUserId")[0] == "code.txt"
    assert "code.txt" in _names(s, "user")
    assert _names(s, "foo.bar")[0] == "code.txt"


def test_filters_and_grouping_see_every_match_not_a_first_page(settings, tmp_path):
    files = {f"short{i:03d}.txt": "kettle orange tea. stove kettle orange tea." for i in range(150)}
    files["phrase.txt"] = FILLER_EN * 8 + "She put the orange kettle on the table and made tea without a fire."
    s = _index(settings, tmp_path / "d", files)
    assert _names(s, '"orange kettle"') == ["phrase.txt"]
    assert _names(s, "tea -stove") == ["phrase.txt"]


def test_k_files_are_returned_when_k_files_match(settings, tmp_path):
    long_doc = "\n\n".join(["Bees pollinate flowers in the meadow near the village. " * 12] * 60)
    files = {"long.txt": long_doc}
    files.update({f"f{i}.txt": f"Note {i}: bees were seen near the barn this summer." for i in range(5)})
    st = settings.with_(chunk_tokens=64, chunk_overlap_tokens=0)
    for name, text in files.items():
        write(tmp_path / "d" / name, text)
    store = Store(st.index_dir)
    Indexer(store, st, None).index([tmp_path / "d"])
    assert store.count_chunks() > 150  # the long file alone fills the first 100 matches
    hits = Searcher(store, None).search("bees", k=6, mode="keyword").hits
    assert sorted(Path(h.path).name for h in hits) == sorted(files)
    assert len(Searcher(store, None).search("bees", k=3, mode="keyword").hits) == 3


def test_vietnamese_tone_marks_and_turkish_suffixes(settings, tmp_path):
    s = _index(settings, tmp_path / "d", {
        "ma.txt": "Người ta kể rằng có một con ma sống trong ngôi nhà cũ ở cuối làng từ rất lâu.",
        "mother.txt": "Mỗi buổi sáng má tôi đi chợ mua rau và cá cho cả nhà ăn trong ngày hôm đó.",
        "tr.txt": "Takım geçen sezon Newcastle'da oynadı ve ligde üçüncü sırada bitirdi.",
    })
    assert _names(s, "má")[0] == "mother.txt"
    assert _names(s, "Newcastle") == ["tr.txt"]


def test_snippets_mark_whole_matching_words_not_stop_words():
    text = "The start of the art exhibition: running artists and the art of running."
    snip = make_snippet(text, ["art", "the", "runs"], lang="en")
    assert "**art**" in snip and "**start**" not in snip and "st**art**" not in snip
    assert "**running**" in snip
    assert "**The**" not in snip and "**the**" not in snip
    assert analysis.highlight_spans("ERR_4711 and err", ["4711"], "en") == [(4, 8)]


def test_language_analysis_keys():
    assert analysis.analyse("Newcastle'da", "tr")[0] == "newcastle"
    assert analysis.analyse("Tôi yêu Việt Nam", "vi") == ["tôi", "yêu", "việt", "nam"]
    assert analysis.analyse("والكتاب", "ar") == analysis.analyse("كتاب", "ar")
    assert analysis.analyse("ERR_4711", "en") == ["err_4711", "err", "4711"]
    assert analysis.analyse("getUserId", "en") == ["get_user_id", "get", "user", "id"]
    assert analysis.detect_language("Die Häuser in der Altstadt wurden im neunzehnten Jahrhundert gebaut.") == "de"
    assert analysis.edit_distance("retreival", "retrieval") == 1


@pytest.mark.slow
def test_hybrid_phrases_filter_semantic_candidates_and_keep_keyword_hits(settings, tmp_path, tiny_encoder):
    files = {f"n{i:02d}.txt": f"Notes {i} about gardening, soil, compost and watering plants in summer." for i in range(30)}
    files["trace.txt"] = "Tracing JIT compilers record trace trees of hot loops and compile them to machine code."
    files["trees.txt"] = "Oak trees and pine trees grow in the forest; a trace of rain fell."
    s = _index(settings, tmp_path / "d", files, encoder=tiny_encoder)
    hybrid = _names(s, '"trace trees"', mode="hybrid")
    assert hybrid == ["trace.txt"] == _names(s, '"trace trees"')
    assert "trees.txt" not in _names(s, "trees -trace", k=40, mode="hybrid")
    # a rare exact term: whatever the (random) model thinks, the keyword match stays in the final top 3
    assert "trace.txt" in _names(s, "JIT compilers", k=3, mode="hybrid")


def test_an_index_from_before_keyword_analysis_still_answers_and_is_upgraded_in_place(settings, tmp_path):
    import pyarrow as pa
    from lancedb.index import FTS

    s = _index(settings, tmp_path / "d", {"run.txt": FILLER_EN + "The athletes were running along the river."})
    store = s.store
    old = pa.Table.from_pylist(
        [{k: v for k, v in r.items() if k not in ("lang", "terms")} for r in store.all_chunks()])
    store._tables._db.drop_table("chunks")  # the chunks table as an older version wrote it: no lang/terms
    store._tables.chunks = store._tables._db.create_table("chunks", old)
    store.chunks.create_index("text", config=FTS(with_position=True, base_tokenizer="icu"), replace=True)
    store._write_meta({k: v for k, v in store.meta.items() if k != "analyzer"})
    reopened = Store(settings.index_dir)
    assert not reopened.has_terms
    assert [Path(h.path).name for h in Searcher(reopened).search("running", mode="keyword").hits] == ["run.txt"]
    Indexer(reopened, settings, None).index([tmp_path / "d"])  # the next writer re-analyses every chunk
    assert reopened.has_terms and reopened.has_fts_index()
    assert [Path(h.path).name for h in Searcher(reopened).search("runs", mode="keyword").hits] == ["run.txt"]


def test_a_question_or_a_pasted_passage_is_text_not_query_syntax(settings, tmp_path):
    s = _index(settings, tmp_path / "d", {
        "tesla.txt": FILLER_EN + "The unit of magnetic flux density was named the tesla in honour of Nikola Tesla.",
        "coil.txt": FILLER_EN + "A resonant transformer coil produces high voltage at low current.",
    })
    # A question that quotes a name asks about it: the quotes are punctuation, not an exact-phrase filter ...
    assert _names(s, 'Which unit was named "the tesla unit"?')[0] == "tesla.txt"
    assert _names(s, '"the tesla unit"') == []  # ... while a typed phrase still has to be there as written
    passage = ("Notes on the unit of magnetic flux density, a well known unit of the SI system -tesla- named after "
               "the inventor of the coil")
    assert _names(s, passage)[0] == "tesla.txt"  # a pasted passage's hyphens exclude nothing


def test_function_words_of_a_question_do_not_outrank_its_words(settings, tmp_path):
    s = _index(settings, tmp_path / "d", {
        "chatter.txt": FILLER_EN + "What is it? What it is is what it was, and that is what it is.",
        "bees.txt": FILLER_EN + "Honey bees pollinate the apple orchards every spring.",
        "zh_panda.txt": "大熊猫主要生活在中国四川的山区，它们每天花很多时间吃竹子，也偶尔吃一些小动物。",
        "zh_chat.txt": "你在说什么？什么都没有。为什么你问我什么？我不知道什么是什么。",
    })
    assert _names(s, "What is it that bees pollinate?")[0] == "bees.txt"
    assert _names(s, "what it is")[0] == "chatter.txt"  # a short keyword query keeps every word ("the who")
    assert _names(s, "大熊猫吃什么？")[0] == "zh_panda.txt"  # Chinese question words are left out too


def test_hyphenated_words_are_their_words_and_hyphenated_codes_stay_whole():
    assert analysis.analyse("well-known heat-transfer 1990-2000", "en") == [
        "well", "known", "heat", "transfer", "1990", "2000"]
    assert analysis.analyse("ERR-4711", "en") == ["err_4711", "err", "4711"]


def test_chinese_and_japanese_words_are_found_wherever_they_stand_in_the_text(settings, tmp_path):
    s = _index(settings, tmp_path / "d", {
        "panda.txt": "大熊猫主要生活在中国四川的山区，它们每天花很多时间吃竹子。",
        "wrapped.txt": "这份报告讨论了长江流域的生态保护，\n以及野生动物的栖息地大熊\n猫和金丝猴的数量变化。",
        "tea.txt": "中国的茶文化历史悠久，绿茶和红茶都很受欢迎。",
        "tokyo.txt": "東京都の図書館は午前九時から開いています。",
    })
    # a word inside a longer word (a dictionary segmenter keeps 大熊猫 whole, so 熊猫 and 猫 matched nothing)
    assert set(_names(s, "熊猫")) == {"panda.txt", "wrapped.txt"}
    assert set(_names(s, "猫")) == {"panda.txt", "wrapped.txt"}
    assert _names(s, "京都") == ["tokyo.txt"]
    # a word wrapped at a line end, as a word and as a quoted phrase
    assert _names(s, "金丝猴")[0] == "wrapped.txt"
    assert set(_names(s, '"大熊猫"')) == {"panda.txt", "wrapped.txt"}
    assert _names(s, '"熊猫吃"') == []
    # exclusion of a word inside a longer one, and a phrase with punctuation between its characters in the text
    assert _names(s, "中国 -熊猫") == ["tea.txt"]
    assert _names(s, '"山区它们"') == ["panda.txt"]
    res = s.search("熊猫", mode="keyword")
    assert "**熊猫**" in next(h.snippet for h in res.hits if h.path.endswith("panda.txt"))


def test_a_chinese_question_finds_the_passage_with_its_words_however_a_dictionary_would_cut_them(settings, tmp_path):
    """Chinese text is cut into character pairs alike in passages and questions: a dictionary segmenter cut this
    question's 有体罚 so that its 体罚 matched nothing, and the question found only the passage about engines."""
    s = _index(settings, tmp_path / "d", {
        "rule.txt": "过去，体罚（打学生的手心）在学校里很常见，现在许多国家已经禁止体罚。",
        "engine.txt": "蒸汽发动机不再广泛用于商业用途，只有少数地方的公司仍在使用。",
    })
    assert set(_names(s, "在哪些地方不再有体罚？")) == {"rule.txt", "engine.txt"}
