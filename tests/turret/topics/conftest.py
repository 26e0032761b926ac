"""Fixtures of the topic-engine tests: ten intents written by hand, embedded once per session with the real
model, and a warehouse filled the way the embed step leaves it."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

# Ten intents x ten phrasings; each phrasing appears twice (plain and with a greeting) -> 200 texts.
INTENTS: dict[str, list[str]] = {
    "reset_password": [
        "How do I reset my password?", "I forgot my password and cannot log in",
        "Password reset link is not arriving", "Can you help me change my password",
        "I need a new password for my account", "The reset password email never came",
        "How can I recover a lost password", "My password stopped working, how to reset it",
        "Where is the option to reset the password", "Locked out, forgot the password",
    ],
    "refund": [
        "I want a refund for my order", "How do I get my money back?",
        "Please refund the last purchase", "Can I return this item for a refund",
        "The refund has not reached my card yet", "How long does a refund take",
        "I was charged but want my money returned", "Request a refund for a damaged product",
        "Refund status of my returned order", "I would like to be reimbursed for this order",
    ],
    "shipping_time": [
        "When will my package arrive?", "How long does shipping take",
        "My delivery is late, where is it", "Track my parcel please",
        "What is the estimated delivery date", "The shipment has not arrived yet",
        "How many days until my order is delivered", "Is my package still in transit",
        "Where is my order right now", "Delivery tracking shows no update",
    ],
    "weather": [
        "What's the weather like tomorrow?", "Will it rain this afternoon",
        "Is it going to be sunny this weekend", "Temperature forecast for Paris",
        "Do I need an umbrella today", "How cold will it be tonight",
        "Weather forecast for next week", "Is there a storm coming",
        "Will it snow in Berlin on Friday", "How hot is it outside right now",
    ],
    "recipe": [
        "Give me a recipe for pancakes", "How do I cook spaghetti carbonara",
        "What can I bake with apples and flour", "Easy dinner recipe with chicken",
        "How long should I boil an egg", "Vegetarian lasagna recipe please",
        "How to make a chocolate cake from scratch", "Quick soup recipe for a cold day",
        "What spices go into a curry", "Steps to make homemade bread",
    ],
    "python_error": [
        "Python says IndexError list index out of range", "How to fix a KeyError in my python dict",
        "TypeError: 'NoneType' object is not subscriptable", "My python script throws ModuleNotFoundError",
        "Why does python raise ValueError when converting a string to int",
        "AttributeError object has no attribute in python", "Python ImportError after installing a package",
        "How do I debug a python traceback", "ZeroDivisionError in my python code",
        "Python indentation error unexpected indent",
    ],
    "translate": [
        "Translate 'good morning' into Spanish", "How do you say thank you in Japanese",
        "What is the French word for apple", "Translate this sentence to German please",
        "How do I say where is the station in Italian", "Portuguese translation of I love you",
        "Translate hello how are you into Korean", "What does 'danke schön' mean in English",
        "Translate the menu from Chinese to English", "How to say good night in Russian",
    ],
    "workout": [
        "Best exercises to build chest muscles", "Give me a 20 minute home workout",
        "How many push ups should I do a day", "Leg day routine for beginners",
        "How to lose belly fat with exercise", "Good stretching routine after running",
        "Weekly gym plan for strength training", "How often should I do cardio",
        "Beginner workout plan without equipment", "Exercises to strengthen my back",
    ],
    "cancel_subscription": [
        "How do I cancel my subscription?", "Stop my monthly membership please",
        "I want to end my plan and stop being billed", "Cancel the premium subscription",
        "How to unsubscribe from the paid plan", "Please terminate my membership",
        "I no longer want to pay for this subscription", "Turn off automatic renewal of my plan",
        "Close my subscription before the next billing date", "How can I stop the recurring payment",
    ],
    "movie_recommendation": [
        "Recommend a good horror movie", "What film should I watch tonight",
        "Suggest a comedy movie for the family", "Best science fiction films of all time",
        "Any good movies like Inception", "Recommend a romantic movie to watch",
        "Which animated film is good for kids", "Top thriller movies on streaming now",
        "A classic movie everyone should see", "Suggest a documentary film to watch",
    ],
}
GREETING = "Hey there, "


def intent_texts() -> tuple[list[str], list[str]]:
    """(texts, gold intents): 200 texts, in a fixed order."""
    texts, gold = [], []
    for intent, phrasings in INTENTS.items():
        for p in phrasings:
            for variant in (p, GREETING + p[0].lower() + p[1:]):
                texts.append(variant)
                gold.append(intent)
    return texts, gold


@pytest.fixture(scope="session")
def embedder():
    from turret.embed import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder("all-MiniLM-L6-v2", num_threads=1)


@pytest.fixture(scope="session")
def intent_data(embedder):
    """(texts, gold, vectors) of the 200 intent texts, embedded once per session."""
    texts, gold = intent_texts()
    return texts, gold, embedder.encode(texts)


def _text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _add_texts(con, project_id: str, field: str, event_ids, texts, vectors, model="all-MiniLM-L6-v2") -> None:
    """Rows in pipeline.event_texts and pipeline.embeddings, as the embed step leaves them."""
    import pandas as pd
    from turret.embed import ensure_embeddings_table

    ensure_embeddings_table(con, vectors.shape[1])
    frame = pd.DataFrame({"event_id": list(event_ids), "text": list(texts),
                          "text_hash": [_text_hash(t) for t in texts], "vector": list(np.asarray(vectors))})
    con.register("_test_texts", frame)
    try:
        con.execute("insert into pipeline.event_texts "
                    "select ?, event_id, ?, text_hash, text from _test_texts",
                    [project_id, field]).fetchall()
        con.execute(f"insert into pipeline.embeddings select ?, text_hash, vector::float[{vectors.shape[1]}] "
                    "from _test_texts on conflict do nothing", [model]).fetchall()
    finally:
        con.unregister("_test_texts")


@pytest.fixture
def warehouse(settings):
    """An empty warehouse in this test's TURRET_HOME."""
    from turret.warehouse import connect

    con = connect(settings)
    yield con
    con.close()


@pytest.fixture(scope="session")
def add_texts():
    """``add_texts(con, project_id, field, event_ids, texts, vectors)``: texts with their vectors."""
    return _add_texts


@pytest.fixture(scope="session")
def text_hash():
    return _text_hash


@pytest.fixture(scope="session")
def intents():
    return INTENTS
