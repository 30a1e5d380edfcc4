"""Text -> index terms: the language-aware analysis behind keyword search, used alike for chunks and queries.

A chunk's language is detected (py3langid, offline, bundled model) and its words are reduced to keys: lower-cased
(``casefold``), stemmed with the language's Snowball stemmer (PyStemmer) where one exists, Arabic normalised (alef
forms, alef maqsura, ta marbuta, tatweel, harakat) and stripped of the article and its clitics before stemming,
and accents folded for Latin and Greek script except in Vietnamese (whose tone marks tell words apart). Words are
runs of letters, marks and digits (the ``regex`` module's ``\\p{L}\\p{M}\\p{N}``: Devanagari and Thai vowel signs
stay inside the word). Identifiers and codes are indexed whole and by their parts: ``ERR_4711`` -> ``err_4711
err 4711``, ``std::vector`` -> ``std_vector std vector``, ``getUserId`` -> ``getuserid get user id``, so a search
for a part finds them and a search for the whole ranks exact matches first. Hyphenated words
(``well-known``) are only their words; a hyphenated code (``ERR-4711``) is an identifier. Apostrophes split words
(``Newcastle'da`` -> ``newcastle da``), hyphenation at a line end is undone (``exam-\\nple`` -> ``example``).

Chinese and Japanese (Han, Hiragana, Katakana) have no spaces and are cut here into overlapping character
bigrams (``黑豹队`` -> ``黑豹 豹队``; a lone character is its own key), the unit a plain BM25 does best with on
Chinese (a dictionary segmenter splits the same word differently in different contexts, and a query's words then
miss the document's); an indexed chunk also gets each character as a key after its other keys, so a one-character
search finds the character anywhere. These keys are spelled in hex (:func:`cjk_key`: ``黑豹`` -> ``U09ED1_08C79``)
because the index's ICU tokenizer would otherwise cut them up again; keys are lower case, so the capital ``U``
cannot collide with a word. Runs of the other scripts without spaces (Thai, Lao, Khmer, Myanmar) and Hangul are
passed through unchanged for the ICU tokenizer to segment with its dictionaries.

The keys, space-separated, are what the store's full-text index reads (:func:`index_keys`). A query is analysed
the same way (:func:`query_keys`), in the language it is most likely written in among the languages of the index.
Highlighting uses the same keys, so a highlighted word is one that matched (:func:`highlight_spans`). Nothing here
imports Qt or LanceDB (numpy only with the language detector).
"""

from __future__ import annotations

import functools
import threading
import unicodedata
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Sequence

import regex

# ISO 639-1 (py3langid's codes) -> Snowball algorithm in PyStemmer
SNOWBALL = {
    "ar": "arabic", "hy": "armenian", "eu": "basque", "ca": "catalan", "cs": "czech", "da": "danish",
    "nl": "dutch", "en": "english", "eo": "esperanto", "et": "estonian", "fi": "finnish", "fr": "french",
    "de": "german", "el": "greek", "hi": "hindi", "hu": "hungarian", "id": "indonesian", "ga": "irish",
    "it": "italian", "lt": "lithuanian", "ne": "nepali", "no": "norwegian", "nb": "norwegian", "nn": "norwegian",
    "fa": "persian", "pl": "polish", "pt": "portuguese", "ro": "romanian", "ru": "russian", "sr": "serbian",
    "es": "spanish", "sv": "swedish", "ta": "tamil", "tr": "turkish", "yi": "yiddish", "ms": "indonesian",
}
# Stemmers whose rules do not depend on accents: words are folded first so that accented and unaccented
# spellings stem alike (others stem first, their suffix rules use the accented letters, then fold).
FOLD_BEFORE_STEMMING = frozenset({"en", "de", "nl", "und"})
UNKNOWN = "und"  # no language detected: words are only lower-cased and folded
ANALYZER_VERSION = 3  # bump when keys change: stored terms are recomputed (Store.upgrade_terms)

_NO_SPACE = r"\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}"
_NO_SPACE_RE = regex.compile(rf"[{_NO_SPACE}]")
# Chinese and Japanese: cut into character bigrams here (ー, the prolonged sound mark, is script "Common")
_CJK = r"\p{Han}\p{Hiragana}\p{Katakana}\u30fc"
_CJK_RE = regex.compile(rf"[{_CJK}]")
_CJK_SPLIT_RE = regex.compile(rf"([{_CJK}]+)")
_CJK_KEY_RE = regex.compile(r"U[0-9A-F]{5}(?:_[0-9A-F]{5})?")
_CJK_LINE_BREAK_RE = regex.compile(rf"(?<=[{_CJK}])[^\S\n]*\n\s*(?=[{_CJK}])")  # a line wrapped inside a word
_WORD = r"[\p{L}\p{M}\p{N}]+"
# A token: a word, or words joined without spaces by _ . :: - ' (identifiers, codes, numbers, elisions).
_TOKEN_RE = regex.compile(rf"{_WORD}(?:(?:_+|::|\.|-|['’]){_WORD})*")
_JOINER_RE = regex.compile(r"_+|::|\.|-|['’]")
_HYPHEN_BREAK_RE = regex.compile(r"(?<=\p{Ll})[-\u00ad]\s*\n\s*(?=\p{Ll})")
# camelCase / PascalCase / HTTPServer / letters<->digits boundaries inside one word
_CAMEL_RE = regex.compile(r"\p{Lu}+(?=\p{Lu}\p{Ll})|\p{Lu}?\p{Ll}+|\p{Lu}+|\p{N}+|[\p{L}\p{M}]+")
# letters only Vietnamese uses: a word with one keeps its tone marks even when its chunk's language is unknown
_VIETNAMESE_RE = regex.compile(r"[ăơưđĂƠƯĐ]|[\u1ea0-\u1ef9]")
_FOLD_RE = regex.compile(r"(?<=[\p{Latin}\p{Greek}])\p{Mn}+")
_AR_HARAKAT_RE = regex.compile(r"[\u064b-\u065f\u0670\u0640]")  # tashkeel, superscript alef, tatweel
_AR_MAP = str.maketrans({"أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ى": "ي", "ة": "ه"})
_AR_PREFIXES = ("وال", "بال", "كال", "فال", "لل", "ال")


@dataclass(frozen=True)
class Token:
    """One word of a text with its place: ``start``/``end`` are character offsets into the analysed text."""

    text: str
    start: int
    end: int


def dehyphenate(text: str) -> str:
    """Join words hyphenated at a line end (``retrie-\\nval`` -> ``retrieval``) and Chinese/Japanese text
    wrapped at a line end (no spaces between its words, so a line break inside it is layout); other text
    unchanged."""
    return str(_CJK_LINE_BREAK_RE.sub("", _HYPHEN_BREAK_RE.sub("", text)))


# -- language -------------------------------------------------------------------------------------------------
_langid: Any = None  # py3langid's LanguageIdentifier, loaded on first use
_langid_lock = threading.Lock()


def _identifier() -> Any:
    global _langid
    with _langid_lock:
        if _langid is None:
            from py3langid.langid import MODEL_FILE, LanguageIdentifier

            _langid = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        return _langid


def detect_language(text: str, among: Iterable[str] | None = None) -> str:
    """ISO 639-1 code of ``text``'s language, or ``und``; ``among``: choose only from these (a query is ranked
    against the languages its index holds). The first 2000 characters decide."""
    sample = text[:2000]
    if not regex.search(r"\p{L}", sample):
        return UNKNOWN
    candidates = [lang for lang in (among or ()) if lang != UNKNOWN]
    if among is not None and len(candidates) <= 1:
        return candidates[0] if candidates else UNKNOWN
    ident = _identifier()
    if candidates:
        ranked = ident.rank(sample)
        allowed = set(candidates)
        for lang, _p in ranked:
            if lang in allowed:
                return str(lang)
        return candidates[0]
    lang, prob = ident.classify(sample)
    return str(lang) if prob >= 0.5 or len(sample) > 200 else UNKNOWN


def chunk_language(text: str, file_lang: str) -> str:
    """A chunk's language: its file's, unless the chunk is long and clearly in another language."""
    if len(text) < 200:
        return file_lang
    lang, prob = _identifier().classify(text[:2000])
    return lang if lang != file_lang and prob >= 0.99 else file_lang


# -- words -> keys --------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=64)
def _stemmer(lang: str) -> Any:
    algo = SNOWBALL.get(lang)
    if algo is None:
        return None
    import Stemmer

    return Stemmer.Stemmer(algo, 50_000)


_stem_locks: dict[str, threading.Lock] = {}


def fold(word: str, lang: str) -> str:
    """Accent folding for Latin and Greek script (not Vietnamese, whose marks are letters of their own)."""
    if lang == "vi" or word.isascii() or _VIETNAMESE_RE.search(word):
        return word
    if lang == "ru" or lang == "uk" or lang == "be":
        word = word.replace("ё", "е")
    folded = _FOLD_RE.sub("", unicodedata.normalize("NFD", word))
    return unicodedata.normalize("NFC", folded)


def normalize_arabic(word: str) -> str:
    word = _AR_HARAKAT_RE.sub("", word).translate(_AR_MAP)
    for p in _AR_PREFIXES:
        if word.startswith(p) and len(word) - len(p) >= 2:
            return word[len(p):]
    return word


def word_keys(words: Sequence[str], lang: str) -> list[str]:
    """Lower-cased words -> their index keys in ``lang`` (stemmed, normalised, folded)."""
    if lang == "ar" or lang == "fa" or lang == "ur":
        words = [normalize_arabic(w) for w in words]
    if lang in FOLD_BEFORE_STEMMING:  # "resume" and "résumé" must reach the same stem
        words = [fold(w, lang) for w in words]
    stemmer = _stemmer(lang)
    if stemmer is not None:
        lock = _stem_locks.setdefault(lang, threading.Lock())
        with lock:  # a PyStemmer object is not thread-safe
            words = stemmer.stemWords(words)
    return [fold(w, lang) for w in words]


def _parts(token: str) -> list[str]:
    """The words inside one token: split at joiners, then at camelCase and letter/digit boundaries."""
    out: list[str] = []
    for piece in _JOINER_RE.split(token):
        if not piece:
            continue
        sub = _CAMEL_RE.findall(piece) if not piece.islower() and not piece.isupper() or _has_digit_mix(piece) else None
        out.extend(sub if sub and len(sub) > 1 else [piece])
    return out


def _has_digit_mix(piece: str) -> bool:
    return any(ch.isdigit() for ch in piece) and not piece.isdigit()


def tokens(text: str) -> Iterator[Token]:
    """Tokens of ``text`` with their offsets (whole tokens: ``ERR_4711`` is one)."""
    for m in _TOKEN_RE.finditer(text):
        yield Token(m.group(), m.start(), m.end())


@functools.lru_cache(maxsize=200_000)
def _token_keys(tok: str, lang: str) -> tuple[str | None, tuple[str, ...]]:
    """(the whole identifier's key or None, the keys of its words) for one token. Cached: a text's words repeat,
    and snippets of every shown passage are highlighted with the same keys."""
    if _NO_SPACE_RE.search(tok):
        return None, (tok.casefold(),)  # left to the index's ICU segmenter
    parts = _parts(tok)
    keys = tuple(word_keys([p.casefold() for p in parts], lang))
    if len(parts) == 1:
        return None, keys
    if "'" in tok or "’" in tok:  # elisions and suffixes (l'homme, Newcastle'da, don't): words only
        return None, keys
    if _is_compound_word(tok):
        return None, keys
    whole = "_".join(fold(p.casefold(), lang) for p in parts)
    return whole, keys


def _is_compound_word(tok: str) -> bool:
    """A hyphenated word of letters (``well-known``, ``heat-transfer``) or of numbers (``1990-2000``): its words,
    not one identifier. A whole key for these lengthened prose documents by a tenth and cost plain BM25 quality
    (Cranfield, CISI); codes that mix letters and digits (``ERR-4711``, ``SHA-256``) keep theirs."""
    if "_" in tok or "::" in tok or "." in tok or "-" not in tok:
        return False
    return not (regex.search(r"\p{L}", tok) and regex.search(r"\p{N}", tok))


def cjk_key(chars: str) -> str:
    """The index key of one or two Chinese/Japanese characters: their code points in hex (``黑豹`` ->
    ``U09ED1_08C79``), which the index's ICU tokenizer keeps whole (it splits Han text it gets as characters at
    its own dictionary's word boundaries)."""
    return "U" + "_".join(f"{ord(c):05X}" for c in chars)


def cjk_chars(key: str) -> str:
    """The characters of a :func:`cjk_key` (``U09ED1_08C79`` -> ``黑豹``)."""
    return "".join(chr(int(h, 16)) for h in key[1:].split("_"))


def _cjk_run_keys(run: str) -> list[str]:
    """A run of Chinese/Japanese characters -> its overlapping bigrams' keys (one character: its own key)."""
    if len(run) == 1:
        return [cjk_key(run)]
    return [cjk_key(run[i : i + 2]) for i in range(len(run) - 1)]


def _analyse(text: str, lang: str, characters: bool) -> list[str]:
    out: list[str] = []
    chars: list[str] = []  # characters of Chinese/Japanese runs, each a key after the others (index side)
    for tok in tokens(dehyphenate(text)):
        pieces = _CJK_SPLIT_RE.split(tok.text) if _CJK_RE.search(tok.text) else [tok.text]
        for i, piece in enumerate(pieces):
            if i % 2:  # a run of Chinese/Japanese
                out.extend(_cjk_run_keys(piece))
                if characters and len(piece) > 1:
                    chars.extend(cjk_key(ch) for ch in piece)
                continue
            for sub in tokens(piece) if len(pieces) > 1 else [tok]:
                whole, keys = _token_keys(sub.text, lang)
                if whole is not None:
                    out.append(whole)
                out.extend(k for k in keys if len(k) > 1 or k.isdigit() or _NO_SPACE_RE.match(k))
    return out + chars


def analyse(text: str, lang: str) -> list[str]:
    """``text`` -> its keys in order, as a query is analysed (an identifier's whole key comes before its parts;
    Chinese/Japanese runs as bigrams). Single letters (``a``, the ``s`` of ``John's``, Hindi postpositions
    stemmed to one letter) are left out: they match almost everything and only lengthen documents."""
    return _analyse(text, lang, characters=False)


def index_keys(text: str, lang: str) -> list[str]:
    """A chunk's keys: :func:`analyse`'s, then each character of its Chinese/Japanese runs (so that a
    one-character search, ``猫``, finds it inside a word; positions of the other keys stay as in the text)."""
    return _analyse(text, lang, characters=True)


def index_terms(text: str, lang: str | None = None) -> tuple[str, str]:
    """A chunk's text -> (its language, its keys joined by spaces): the two columns the full-text index reads."""
    lang = lang or detect_language(text)
    return lang, " ".join(index_keys(text, lang))


# -- queries --------------------------------------------------------------------------------------------------
def query_keys(text: str, lang: str) -> list[str]:
    """A query's keys (as :func:`analyse`), without duplicates, in order."""
    return list(dict.fromkeys(analyse(text, lang)))


def phrase_words(text: str) -> list[str]:
    """The words of a phrase as compared by :func:`contains_phrase`: lower-cased and accent-folded, not stemmed,
    identifiers split into their parts, line-end hyphenation undone."""
    out: list[str] = []
    for tok in tokens(dehyphenate(text)):
        pieces = _CJK_SPLIT_RE.split(tok.text) if _CJK_RE.search(tok.text) else [tok.text]
        for i, piece in enumerate(pieces):
            if i % 2 or _NO_SPACE_RE.search(piece):
                out.extend(piece.casefold())  # no word boundaries to rely on: compare character by character
            else:
                out.extend(fold(p.casefold(), "und") for sub in tokens(piece) for p in _parts(sub.text))
    return out


def contains_phrase(text: str, phrase: str | Sequence[str]) -> bool:
    """Whether ``text`` has the phrase's words in a row, on word boundaries, whatever the line breaks, hyphenation
    at line ends, punctuation, case or accents between them."""
    want = phrase_words(phrase) if isinstance(phrase, str) else list(phrase)
    if not want:
        return True
    have = phrase_words(text)
    n = len(want)
    first = want[0]
    return any(have[i : i + n] == want for i in range(len(have) - n + 1) if have[i] == first)


def exclusion_keys(word: str, lang: str) -> list[str]:
    """What ``-word`` excludes: the word's key (so its inflections too), or an identifier's whole key. Chinese or
    Japanese text is excluded where it occurs as written: one entry, its keys joined by spaces (a phrase of keys,
    ``KeywordQuery.excluded``)."""
    if _CJK_RE.search(word):
        in_a_row = " ".join(analyse(word, lang))
        return [in_a_row] if in_a_row else []
    toks = list(tokens(word))
    if len(toks) != 1:
        return [k for t in toks for k in _token_keys(t.text, lang)[1]]
    whole, keys = _token_keys(toks[0].text, lang)
    return [whole] if whole is not None else list(keys)


def is_unsegmented(key: str) -> bool:
    """A key of Chinese/Japanese characters or of Thai-like text left for the index to segment (no typo
    tolerance there)."""
    return bool(_NO_SPACE_RE.search(key) or _CJK_KEY_RE.fullmatch(key))


def is_cjk_key(key: str) -> bool:
    """A key of one or two Chinese/Japanese characters (:func:`cjk_key`)."""
    return bool(_CJK_KEY_RE.fullmatch(key))


def phrase_filter_keys(keys: Sequence[str]) -> list[str]:
    """Keys every chunk that holds a phrase with these keys has: a phrase with Chinese/Japanese in it is matched
    against the text (:func:`contains_phrase`, which reads across punctuation and line breaks, where the text's
    bigrams stop), so the index narrows by its characters, which every such chunk has as keys."""
    out: list[str] = []
    for key in keys:
        if is_cjk_key(key):
            out.extend(cjk_key(ch) for ch in cjk_chars(key))
        else:
            out.append(key)
    return list(dict.fromkeys(out))


def word_for_key(key: str, texts: Iterable[str], lang: str) -> str | None:
    """The first word in ``texts`` whose key is ``key``, lower-cased (what a correction shows the user)."""
    for text in texts:
        for tok in tokens(text):
            whole, keys = _token_keys(tok.text, lang)
            if whole == key:
                return tok.text.casefold()
            if len(keys) == 1 and keys[0] == key:
                return tok.text.casefold()
    return None


# -- typo tolerance -------------------------------------------------------------------------------------------
def fuzziness_for(word: str) -> int:
    """Edit distance allowed for a query key with no matches: none up to 3 characters, 1 up to 5, else 2 (keys
    are stems: ``retreival`` is ``retreiv``, two edits from ``retriev``)."""
    n = len(word)
    return 0 if n <= 3 else 1 if n <= 5 else 2


def edit_distance(a: str, b: str, limit: int = 3) -> int:
    """Levenshtein distance with adjacent transpositions (``retreival`` -> ``retrieval`` is 1), capped at
    ``limit + 1``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] | None = None
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
            if prev2 is not None and i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[-1]


# -- highlighting ---------------------------------------------------------------------------------------------
# Words too common to be worth lighting up in a snippet; they still count for ranking.
STOP_WORDS = frozenset(
    """a an and are as at be by for from has have in is it its of on or that the this to was were will with
    der die das und ist im in den dem des ein eine zu mit von auf für le la les de des du et un une en est au
    el los las y que del por con para il lo gli e di da che al o em os as um uma do dos""".split()
)


# Function words per language, left out of prose queries (a typed question or a pasted passage, see
# ``query.is_prose``; ``Searcher.analyse_query``): English and German are Snowball's stop lists (German with the
# question words and the passive auxiliary added), Hindi its common postpositions, auxiliaries and question words;
# the short Romance lists are the highlighting ones. Short keyword queries keep every word ("the who").
QUERY_STOP_WORDS = {
    "en": """i me my myself we our ours ourselves you your yours yourself yourselves he him his himself she her hers
        herself it its itself they them their theirs themselves what which who whom this that these those am is are
        was were be been being have has had having do does did doing would should could ought a an the and but if or
        because as until while of at by for with about against between into through during before after above below
        to from up down in out on off over under again further then once here there when where why how all any both
        each few more most other some such no nor not only own same so than too very""",
    "de": """aber alle allem allen aller alles als also am an ander andere anderem anderen anderer anderes anderm
        andern anders auch auf aus bei bin bis bist da damit dann der den des dem die das dass daß derselbe
        derselben denselben desselben demselben dieselbe dieselben dasselbe dazu dein deine deinem deinen deiner
        deines denn derer dessen dich dir du dies diese diesem diesen dieser dieses doch dort durch ein eine einem
        einen einer eines einig einige einigem einigen einiger einiges einmal er ihn ihm es etwas euer eure eurem
        euren eurer eures für gegen gewesen hab habe haben hat hatte hatten hier hin hinter ich mich mir ihr ihre
        ihrem ihren ihrer ihres euch im in indem ins ist jede jedem jeden jeder jedes jene jenem jenen jener jenes
        jetzt kann kein keine keinem keinen keiner keines können könnte machen man manche manchem manchen mancher
        manches mein meine meinem meinen meiner meines mit muss musste nach nicht nichts noch nun nur ob oder ohne
        sehr sein seine seinem seinen seiner seines selbst sich sie ihnen sind so solche solchem solchen solcher
        solches soll sollte sondern sonst über um und uns unsere unserem unseren unser unseres unter viel vom von
        vor während war waren warst was weg weil weiter welche welchem welchen welcher welches wenn werde werden
        wie wieder will wir wird wirst wo wollen wollte würde würden zu zum zur zwar zwischen wer wann warum wurde
        wurden""",
    "fr": "le la les de des du et un une en est au",
    "es": "el la los las y que de del por con para en un una es",
    "it": "il lo la le gli e di da che al un una in",
    "pt": "o os a as um uma do dos da em e que de",
    "hi": """का के की को में से पर है हैं था थे थी और या एक यह वह ये वे ने भी तो ही हो होता होती होते हुआ हुए हुई किया
        किए गया गई गए कर करने करता करते किस किसने किसको किसके किसकी किसका कौन क्या कब कहाँ कहां कैसे क्यों जो जिस
        जिसे जिसने तक लिए द्वारा इस उस इसके उसके उनके इसकी उसकी अपने कितने कितना कितनी""",
}


# Question words of languages written without spaces: cut out of a prose query's runs before the index segments
# them (they are rare in documents, so left in they favour the few passages that happen to ask something).
QUERY_STOP_RUNS = {
    "zh": ("为什么", "什么", "哪些", "哪里", "哪儿", "哪个", "哪种", "哪位", "多少", "怎么", "怎样", "如何", "谁", "吗", "呢"),
}


def strip_stop_runs(text: str, lang: str) -> str:
    """``text`` with ``lang``'s question words (:data:`QUERY_STOP_RUNS`) replaced by spaces."""
    for word in QUERY_STOP_RUNS.get(lang, ()):
        text = text.replace(word, " ")
    return text


@functools.lru_cache(maxsize=64)
def stop_keys(lang: str) -> frozenset[str]:
    """The index keys of ``lang``'s query stop words (empty for a language without a list)."""
    return frozenset(analyse(QUERY_STOP_WORDS.get(lang, ""), lang))


def highlight_spans(text: str, query: str | Sequence[str], lang: str) -> list[tuple[int, int]]:
    """Character spans of the whole words of ``text`` that match the query's words (same keys: stems, folded
    accents, identifier parts), stop words left out; CJK/Thai query runs match as substrings. Sorted, disjoint."""
    words = query if not isinstance(query, str) else [t.text for t in tokens(query)]
    wanted: set[str] = set()
    runs: list[str] = []
    for w in words:
        if _NO_SPACE_RE.search(w):
            runs.append(w.casefold())
            continue
        if w.casefold() in STOP_WORDS:
            continue
        whole, keys = _token_keys(w, lang)
        if whole is not None:
            wanted.add(whole)
        wanted.update(k for k, p in zip(keys, _parts(w)) if p.casefold() not in STOP_WORDS)
    spans: list[tuple[int, int]] = []
    for tok in tokens(text):
        if _NO_SPACE_RE.search(tok.text):
            low = tok.text.casefold()
            for run in runs:
                i = low.find(run)
                while i >= 0:
                    spans.append((tok.start + i, tok.start + i + len(run)))
                    i = low.find(run, i + len(run))
            continue
        whole, keys = _token_keys(tok.text, lang)
        if whole is not None and whole in wanted:
            spans.append((tok.start, tok.end))
            continue
        if len(keys) == 1:
            if keys[0] in wanted:
                spans.append((tok.start, tok.end))
            continue
        # an identifier: light up only its matching parts
        pos = tok.start
        for part, key in zip(_parts(tok.text), keys):
            i = text.find(part, pos, tok.end)
            if i < 0:
                continue
            if key in wanted:
                spans.append((i, i + len(part)))
            pos = i + len(part)
    spans.sort()
    merged: list[tuple[int, int]] = []
    for a, b in spans:
        if merged and a < merged[-1][1]:
            continue
        merged.append((a, b))
    return merged
