"""Class lists and text templates as people type them, for any text Hypothesis draws: what is
written as a CSV line is read back as the same names; a template is accepted exactly when it
holds one ``{}`` and no other brace, and then puts the name there."""

import csv
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.config import InvalidValue
from common.schema import EncoderConfig
from data.annotations import OTHER
from pipeline.localize import UsageError, class_list, parse_class_text, same_name

SETTINGS = settings(max_examples=150, deadline=None)
NAME = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp"), blacklist_characters="\r\n\x85"),
               min_size=1, max_size=20).map(str.strip).filter(bool)


def written(names) -> str:
    """How a spreadsheet or csv.writer writes the names on one line (quoting where needed)."""
    line = io.StringIO()
    csv.writer(line, lineterminator="").writerow(names)
    return line.getvalue()


@SETTINGS
@given(st.lists(NAME, min_size=1, max_size=6))
def test_a_csv_line_of_names_reads_back_as_those_names(names):
    assert parse_class_text(written(names)) == names


@SETTINGS
@given(st.lists(st.lists(NAME, min_size=1, max_size=3), min_size=1, max_size=4))
def test_lines_and_commas_both_separate_names(lines):
    text = "\n".join(written(line) + ("," if i % 2 else "") for i, line in enumerate(lines))  # trailing commas too
    assert parse_class_text(text) == [name for line in lines for name in line]


@SETTINGS
@given(st.lists(NAME, min_size=1, max_size=6))
def test_a_class_list_is_refused_exactly_when_two_names_are_one_or_other_is_named(names):
    folded = [same_name(name) for name in names]
    bad = len(set(folded)) < len(folded) or OTHER in folded
    if bad:
        with pytest.raises(UsageError):
            class_list(names)
    else:
        assert class_list(names) == names


BRACES = st.text(st.sampled_from("ab {}x"), max_size=12)


@SETTINGS
@given(BRACES)
def test_a_template_is_accepted_exactly_when_it_holds_one_pair_of_braces_and_nothing_else(template):
    good = template.count("{}") == 1 and template.replace("{}", "").count("{") == 0 \
        and template.replace("{}", "").count("}") == 0
    if good:
        config = EncoderConfig(text_template=template)
        assert config.template("audio").format("dog") == template.replace("{}", "dog")
    else:
        with pytest.raises(InvalidValue, match="must hold exactly one") as refused:
            EncoderConfig(text_template=template)
        assert refused.value.key == "text_template"
