"""turret.demo.phrasing: messages composed from the topic templates, deterministic for a seed."""

from __future__ import annotations

import random

from turret.demo.dataset import TOPICS
from turret.demo.phrasing import FOREIGN_TEMPLATES, SLOTS, TEMPLATES, ack, prompt


def test_every_topic_has_templates_whose_slots_exist():
    assert set(TEMPLATES) == set(TOPICS)
    for topic, templates in TEMPLATES.items():
        for template in templates:
            names = [part.split("}")[0] for part in template.split("{")[1:]]
            assert all(n in SLOTS or n == "platform_name" for n in names), (topic, template)


def test_same_seed_same_messages_and_no_slot_left_unfilled():
    def sample(seed):
        rng = random.Random(seed)
        return [prompt(rng, topic, "en", "ios", follow_up=i % 2 == 0) for i, topic in enumerate(TOPICS * 5)]

    first = sample(11)
    assert first == sample(11) and first != sample(12)
    assert all(language == "en" and text and "{" not in text for text, language in first)


def test_foreign_users_write_their_language_where_templates_exist_and_acknowledge_in_it():
    rng = random.Random(3)
    topic = next(iter(FOREIGN_TEMPLATES["de"]))
    languages = {prompt(rng, topic, "de", "web", follow_up=False)[1] for _ in range(50)}
    assert languages == {"de", "en"}  # mostly German, English now and then
    acks = {ack(rng, "fr")[1] for _ in range(50)}
    assert acks == {"fr", "en"}
