"""The nested models a catalog repeats (reference topics and departments, a course's image and
instructors) are made once per value and shared (`sources._catalog`): the same values and
fields set as making each, and values that are not text validated, and refused, as before."""

from __future__ import annotations

import pickle

import pytest
from pydantic import ValidationError

from learnflow.models import Department, Image, Instructor, Topic
from sources._catalog import department, image, instructor, instructor_named, topic


@pytest.mark.parametrize(
    ("shared", "made"),
    [
        (lambda: topic("Mathematics"), lambda: Topic(name="Mathematics")),
        (lambda: department("6", "EECS"), lambda: Department(department_id="6", name="EECS")),
        (lambda: image("https://x/i.png", None), lambda: Image(url="https://x/i.png", description=None)),
        (lambda: image("https://x/i.png", "alt"), lambda: Image(url="https://x/i.png", description="alt")),
        (
            lambda: instructor("Ada Lovelace", "Ada", None),
            lambda: Instructor(full_name="Ada Lovelace", first_name="Ada", last_name=None),
        ),
        (lambda: instructor_named("Ada"), lambda: Instructor(full_name="Ada")),
    ],
)  # fmt: skip
def test_a_shared_model_is_the_model_made_with_those_values(shared, made):
    first, expected = shared(), made()
    assert shared() is first  # made once
    assert first == expected
    assert first.model_fields_set == expected.model_fields_set
    assert pickle.dumps(first) == pickle.dumps(expected)


@pytest.mark.parametrize(
    ("shared", "made"),
    [
        (lambda: image(7, None), lambda: Image(url=7, description=None)),
        (lambda: image("u", {"text": "x"}), lambda: Image(url="u", description={"text": "x"})),
        (lambda: image(["u"], None), lambda: Image(url=["u"], description=None)),
        (lambda: instructor_named(None), lambda: Instructor(full_name=None)),
        (lambda: instructor_named({"n": 1}), lambda: Instructor(full_name={"n": 1})),
    ],
)
def test_values_that_are_not_text_are_refused_as_before(shared, made):
    with pytest.raises(ValidationError) as got:
        shared()
    with pytest.raises(ValidationError) as want:
        made()
    assert str(got.value) == str(want.value)
