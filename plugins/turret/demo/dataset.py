"""The demo data set: a week of prompts sent to the AI support assistant of a SaaS product ("Flowdesk").

Everything is generated here from templates, deterministically for a seed; no shared data files. The
shape is what Turret is built to find:

- ~150 repeat users, each with a few multi-turn sessions days apart, spread over the 7 days before ``now``;
- 14 topics, each with many paraphrases composed from templates (openers, slot fillers, context, closers,
  casing and typos) so two texts are rarely identical; a few users write in Spanish, German or French;
- topic shifts inside a session follow a Markov chain with a few strong planted transitions
  (``PLANTED_TRANSITIONS``) that an end-to-end test can check the journeys recover;
- acknowledgement turns ("thanks!", "ok that worked") sprinkled in, marked ``is_ack``;
- users who ask about onboarding come back in a later session with integration problems.

``DemoEvent.to_payload()`` is what is posted to ``/track/batch``; the gold ``topic`` and ``is_ack`` stay
out of it and are only for tests.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Mapping

# A fixed "now" so that generate() with no arguments is reproducible; the runner passes the real day.
DEFAULT_NOW = datetime(2026, 1, 15, 0, 0, tzinfo=UTC)
WINDOW_DAYS = 7
EVENT_NAME = "user_prompt"

PLATFORMS = ("web", "ios", "android", "slack")
PLATFORM_WEIGHTS = (0.5, 0.2, 0.15, 0.15)
PLAN_TIERS = ("free", "starter", "pro", "business", "enterprise")
PLAN_WEIGHTS = (0.35, 0.25, 0.2, 0.15, 0.05)
LANGUAGES = ("en", "es", "de", "fr")
# Share of users who write in each non-English language (when the topic has templates in it).
LANGUAGE_USER_SHARE = {"es": 0.05, "de": 0.04, "fr": 0.04}

TOPICS: tuple[str, ...] = (
    "password_reset",
    "billing_invoices",
    "pricing_plans",
    "upgrade_downgrade",
    "integrations",
    "api_keys_rate_limits",
    "bug_reports",
    "data_export",
    "sso_saml",
    "account_deletion_gdpr",
    "onboarding",
    "mobile_app",
    "notifications",
    "team_invites",
)

# The strong transitions planted in the chain: P(next topic = target | current topic = source).
PLANTED_TRANSITIONS: Mapping[tuple[str, str], float] = {
    ("pricing_plans", "upgrade_downgrade"): 0.6,
    ("password_reset", "sso_saml"): 0.5,
    ("integrations", "bug_reports"): 0.5,
    ("onboarding", "team_invites"): 0.45,
}
# A user who asked about onboarding opens a later session about integrations with this probability.
ONBOARDING_RETURN_TO_INTEGRATIONS = 0.7
# Staying on the same topic (a follow-up question) when no planted transition applies.
SELF_TRANSITION = 0.2

# Topic popularity for the first turn of a session (the remaining topics share what is left equally).
START_WEIGHTS = {
    "password_reset": 3.0,
    "pricing_plans": 3.0,
    "integrations": 3.0,
    "onboarding": 2.5,
    "billing_invoices": 2.0,
    "bug_reports": 1.5,
    "api_keys_rate_limits": 1.5,
}

SLOTS: dict[str, tuple[str, ...]] = {
    "integration": ("Slack", "Salesforce", "Zapier", "HubSpot", "Jira", "Google Sheets", "Microsoft Teams",
                    "Zendesk", "Intercom", "Notion", "GitHub", "Asana"),
    "plan": ("Free", "Starter", "Pro", "Business", "Enterprise"),
    "paid_plan": ("Starter", "Pro", "Business", "Enterprise"),
    "idp": ("Okta", "Azure AD", "Entra ID", "Google Workspace", "OneLogin", "JumpCloud", "Ping Identity"),
    "format": ("CSV", "JSON", "Excel", "XLSX", "Parquet", "PDF"),
    "error": ("a 500 error", "a blank white screen", "a timeout", "\"something went wrong\"",
              "error code E1042", "a 403 forbidden", "an infinite spinner", "a 502 bad gateway"),
    "page": ("dashboard", "reports page", "board view", "settings page", "editor", "calendar view",
             "search results", "analytics tab"),
    "period": ("last month", "March", "Q3", "this year", "the last 90 days", "2025", "October"),
    "teammate": ("my coworker", "a new hire", "our contractor", "5 people from marketing", "my manager",
                 "the whole sales team", "an external client", "two engineers"),
    "channel": ("email", "push", "Slack", "SMS", "in-app", "desktop"),
    "phone": ("iPhone", "iPhone 15", "Pixel 8", "Galaxy S23", "iPad", "Android phone", "OnePlus"),
    "n": ("3", "5", "10", "12", "20", "50", "100"),
    "when": ("since yesterday", "since the last update", "this morning", "for a week now", "since Monday",
             "all day", "after I changed my email"),
    "limit": ("100 requests per minute", "the rate limit", "1000 calls an hour", "our API quota",
              "the burst limit"),
}

# English templates per topic; {slot} fields come from SLOTS.
TEMPLATES: dict[str, tuple[str, ...]] = {
    "password_reset": (
        "how do I reset my password",
        "I forgot my password and can't log in",
        "the password reset email never arrives",
        "reset password link says it expired",
        "can't sign in, it keeps saying wrong password {when}",
        "how can I change my password",
        "I'm locked out of my account after too many login attempts",
        "where is the forgot password button",
        "my password reset link doesn't work",
        "I need to reset the password for {teammate}",
        "password reset email goes to spam, how do I fix that",
        "is there a way to reset my password from the {phone} app",
        "I changed my email and now password reset fails",
        "login keeps rejecting my new password",
    ),
    "billing_invoices": (
        "where can I download my invoices",
        "I was charged twice {period}",
        "can I get an invoice for {period}",
        "how do I update my credit card",
        "need a VAT invoice with our company details",
        "why is my bill higher than expected {period}",
        "can you send receipts to our finance team email",
        "my card was declined but I was still charged",
        "how do I change the billing address on invoices",
        "can we pay by bank transfer instead of card",
        "I need a refund for the duplicate charge",
        "where do I see my payment history",
        "invoice is missing our tax ID",
    ),
    "pricing_plans": (
        "how much does the {paid_plan} plan cost",
        "what's the difference between {paid_plan} and {plan}",
        "do you have a discount for nonprofits",
        "is there annual pricing",
        "what does the {plan} plan include",
        "how many seats come with {paid_plan}",
        "compare pricing plans for a team of {n}",
        "is there a free trial of {paid_plan}",
        "do you offer student or startup pricing",
        "what are the limits on the free plan",
        "how is pricing calculated per user or per workspace",
        "is {paid_plan} billed monthly or yearly",
        "which plan do I need for SSO",
    ),
    "upgrade_downgrade": (
        "how do I upgrade to {paid_plan}",
        "I want to upgrade my plan",
        "can I downgrade from {paid_plan} to {plan}",
        "what happens to my data if I downgrade",
        "upgrade my workspace to {paid_plan} please",
        "will I be charged prorated if I upgrade mid-month",
        "how do I switch from monthly to annual billing",
        "can I cancel my subscription and go back to free",
        "upgrade button is greyed out",
        "how do I add more seats to my plan",
        "change my plan to {paid_plan} starting next month",
        "is it possible to upgrade just for one month",
    ),
    "integrations": (
        "how do I connect {integration}",
        "set up the {integration} integration",
        "does Flowdesk integrate with {integration}",
        "how do I sync tasks to {integration}",
        "can I send updates to a {integration} channel",
        "{integration} integration asks for permissions I don't have",
        "how do I connect {integration} to my workspace",
        "is there a {integration} app",
        "can I trigger a {integration} action when a task is done",
        "where do I find the integrations page",
        "how do I map fields between Flowdesk and {integration}",
        "can I use webhooks instead of the {integration} integration",
        "disconnect {integration} from my account",
    ),
    "api_keys_rate_limits": (
        "where do I create an API key",
        "my API key stopped working",
        "I keep hitting {limit}",
        "how do I rotate my API key",
        "what is the rate limit on the API",
        "getting 429 too many requests from the API",
        "can I raise {limit} for our account",
        "API returns 401 unauthorized with a new key",
        "how do I scope an API token to one project",
        "is there a sandbox API key for testing",
        "revoke an API key that leaked",
        "does {limit} apply per key or per workspace",
    ),
    "bug_reports": (
        "I get {error} when I open the {page}",
        "the {page} is broken {when}",
        "{page} shows {error}",
        "sync with {integration} fails with {error}",
        "app crashes when I save",
        "found a bug: the {page} won't load",
        "tasks disappear after refresh",
        "I see {error} every time I try to upload a file",
        "the {integration} sync stopped working {when}",
        "duplicate items showing up after the {integration} sync",
        "the {page} is really slow and then shows {error}",
        "buttons on the {page} don't respond",
    ),
    "data_export": (
        "how do I export my data to {format}",
        "can I export all projects as {format}",
        "export {period} reports to {format}",
        "is there a bulk export",
        "how do I download a backup of my workspace",
        "export is stuck at 0%",
        "can I schedule a weekly export to {format}",
        "the {format} export is missing some columns",
        "how do I export comments and attachments",
        "export data via the API",
        "where does the export file go after it finishes",
    ),
    "sso_saml": (
        "how do I set up SSO with {idp}",
        "configure SAML for our workspace",
        "SAML login fails with an invalid assertion error",
        "can we enforce SSO for all users",
        "where do I find the SAML metadata URL",
        "SSO with {idp} keeps redirecting in a loop",
        "do you support SCIM provisioning from {idp}",
        "how do users log in after we turn on SSO",
        "single sign-on isn't working for new employees",
        "can I use {idp} as identity provider",
        "what is the ACS URL for SAML",
        "turn on SSO but keep password login for admins",
    ),
    "account_deletion_gdpr": (
        "how do I delete my account",
        "please delete all my personal data",
        "I want to close my account permanently",
        "GDPR data access request for my account",
        "how long do you keep data after account deletion",
        "can I delete the workspace and everything in it",
        "remove my data under GDPR",
        "where is your data processing agreement",
        "I need a copy of all data you hold about me",
        "delete account button doesn't do anything",
        "is my data stored in the EU",
        "right to be forgotten request",
    ),
    "onboarding": (
        "how do I get started",
        "I just signed up, what should I do first",
        "how do I create my first project",
        "is there a getting started guide",
        "how do I set up my workspace",
        "any tutorial for new users",
        "how do I import my tasks from a spreadsheet",
        "what's the best way to organize projects when starting out",
        "walk me through the setup",
        "new here, how does Flowdesk work",
        "how do I create a board for my team",
        "where do I start with templates",
    ),
    "mobile_app": (
        "the {phone} app keeps crashing",
        "mobile app won't sync with desktop",
        "can't log in on the {phone} app",
        "is there an Android app",
        "app on my {phone} is stuck on the loading screen",
        "offline mode on mobile doesn't save my changes",
        "the iOS app is very slow {when}",
        "how do I enable dark mode on the mobile app",
        "push notifications don't show on my {phone}",
        "mobile app logs me out every day",
        "can't upload photos from the {phone} app",
    ),
    "notifications": (
        "how do I turn off {channel} notifications",
        "I get too many notifications",
        "not receiving {channel} notifications {when}",
        "can I get a daily digest instead of every update",
        "how do I mute notifications for one project",
        "notification emails go to spam",
        "set up {channel} alerts when a task is overdue",
        "how do I change my notification settings",
        "can I snooze notifications on weekends",
        "I'm getting notified about projects I left",
        "stop sending me {channel} reminders",
    ),
    "team_invites": (
        "how do I invite {teammate}",
        "invite link isn't working for {teammate}",
        "how do I add team members",
        "invitation email never arrived",
        "can I invite people outside my company domain",
        "how do I remove someone from my team",
        "how do I make {teammate} an admin",
        "invite {n} people at once",
        "my invite expired, can you resend it",
        "set permissions for guests I invite",
        "how many people can I invite on the {plan} plan",
        "{teammate} accepted the invite but can't see the project",
    ),
}

# A few topics also have Spanish, German and French templates; users who write in them fall back to
# English for the other topics (as real multilingual users do with product vocabulary).
FOREIGN_TEMPLATES: dict[str, dict[str, tuple[str, ...]]] = {
    "es": {
        "password_reset": ("¿cómo restablezco mi contraseña?", "olvidé mi contraseña y no puedo entrar",
                           "el correo para cambiar la contraseña no llega"),
        "billing_invoices": ("¿dónde descargo mis facturas?", "me cobraron dos veces este mes",
                             "necesito una factura con los datos de mi empresa"),
        "pricing_plans": ("¿cuánto cuesta el plan {paid_plan}?", "¿hay precio anual?",
                          "¿qué incluye el plan {plan}?"),
        "integrations": ("¿cómo conecto {integration}?",
                         "no puedo configurar la integración con {integration}"),
        "bug_reports": ("la página de informes muestra un error 500", "la aplicación se cierra al guardar",
                        "la sincronización con {integration} falla desde ayer"),
        "data_export": ("¿cómo exporto mis datos a {format}?", "la exportación se queda en 0%"),
    },
    "de": {
        "password_reset": ("wie setze ich mein Passwort zurück?", "ich habe mein Passwort vergessen",
                           "die E-Mail zum Zurücksetzen kommt nicht an"),
        "billing_invoices": ("wo finde ich meine Rechnungen?", "ich wurde diesen Monat doppelt belastet",
                             "brauche eine Rechnung mit USt-IdNr"),
        "pricing_plans": ("was kostet der {paid_plan} Tarif?", "gibt es einen Jahrespreis?"),
        "integrations": ("wie verbinde ich {integration}?",
                         "die {integration} Integration funktioniert nicht"),
        "sso_saml": ("wie richte ich SSO mit {idp} ein?", "SAML Anmeldung schlägt fehl"),
        "account_deletion_gdpr": ("wie lösche ich mein Konto?", "bitte löschen Sie alle meine Daten (DSGVO)"),
    },
    "fr": {
        "password_reset": ("comment réinitialiser mon mot de passe ?", "j'ai oublié mon mot de passe"),
        "pricing_plans": ("combien coûte le forfait {paid_plan} ?", "y a-t-il un tarif annuel ?"),
        "upgrade_downgrade": ("comment passer au forfait {paid_plan} ?", "je veux changer d'abonnement"),
        "integrations": ("comment connecter {integration} ?", "l'intégration {integration} ne marche pas"),
        "onboarding": ("comment bien démarrer ?", "comment créer mon premier projet ?"),
        "notifications": ("comment désactiver les notifications {channel} ?",
                          "je reçois trop de notifications"),
    },
}

OPENERS: tuple[str, ...] = (
    "", "", "", "", "hi, ", "hey ", "hello! ", "Quick question: ", "hi there. ", "Hey team, ", "so ",
    "um ", "Good morning, ", "I need help: ", "can you help? ", "question - ", "Hi Flowdesk bot, ",
    "ok so ", "help! ", "hey, ",
)
FOLLOW_UP_OPENERS: tuple[str, ...] = (
    "also, ", "and ", "one more thing: ", "still stuck: ", "ok but ", "follow up: ", "that didn't help, ",
    "", "", "hmm ", "what about this: ", "another question, ",
)
CONTEXTS: tuple[str, ...] = (
    " I tried the docs but couldn't find it.", " My manager asked me to sort this out today.",
    " We're on the {plan} plan.", " This is blocking my whole team.", " I'm on {platform_name}.",
    " I've tried twice already.", " Not sure if this is the right place to ask.",
    " We just moved over from another tool.", " It worked fine last week.", " Our workspace has {n} users.",
)
CLOSERS: tuple[str, ...] = (
    "", "", "", "?", "?", "??", " thanks", " please", " asap", " thx", " - it's urgent",
    ". Thanks in advance!",
    " pls", " :)", "...", "!",
)
ACKS: tuple[str, ...] = (
    "thanks!", "ok that worked", "thank you", "perfect, thanks", "got it", "great, that fixed it",
    "awesome thx", "ok thanks", "that helped, thanks a lot", "cool", "ok", "makes sense, thank you",
    "thanks, all good now", "ty", "nice, it works now", "ok will try that", "appreciate it",
    "thanks for the quick answer", "alright, that did it", "got it, thanks!",
)
FOREIGN_ACKS: dict[str, tuple[str, ...]] = {
    "es": ("¡gracias!", "listo, funcionó", "perfecto, gracias"),
    "de": ("danke!", "ok, hat funktioniert", "super, danke"),
    "fr": ("merci !", "ok ça marche", "parfait, merci"),
}
MOBILE_DEVICES = {
    "ios": ("iPhone", "iPhone 15", "iPad"),
    "android": ("Pixel 8", "Galaxy S23", "Android phone"),
}
PLATFORM_NAMES = {"web": "the web app", "ios": "iOS", "android": "Android", "slack": "the Slack app"}
_SLOT = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class DemoEvent:
    """One posted event plus the gold answers (``topic``, ``is_ack``) that are never posted."""

    name: str
    session_id: str
    user_id: str
    timestamp: str
    event_id: str
    metadata: dict[str, Any]
    topic: str | None = field(default=None, compare=False)
    is_ack: bool = field(default=False, compare=False)

    def to_payload(self) -> dict[str, Any]:
        """The body of this event in ``POST /track/batch``; gold labels stay out."""
        return {
            "name": self.name,
            "session_id": self.session_id,
            "user_id": self.user_id,
            "timestamp": self.timestamp,
            "event_id": self.event_id,
            "metadata": dict(self.metadata),
        }


@dataclass
class _User:
    user_id: str
    platform: str
    plan_tier: str
    language: str
    n_sessions: int
    asked_onboarding: bool = False


def generate(
    seed: int = 7,
    n_sessions: int = 450,
    *,
    n_users: int = 150,
    now: datetime | None = None,
    ack_rate: float = 0.12,
    foreign_languages: bool = True,
) -> list[DemoEvent]:
    """Generate the demo events, sorted by timestamp; the same arguments always give the same events.

    ``now`` is the end of the 7-day window (default ``DEFAULT_NOW``); event ids, session ids and user ids
    depend only on ``seed`` and ``n_sessions``, so re-posting after a change of ``now`` is deduplicated.
    """
    if n_sessions < 1:
        raise ValueError("n_sessions must be at least 1")
    if n_users < 1:
        raise ValueError("n_users must be at least 1")
    if not 0.0 <= ack_rate < 1.0:
        raise ValueError("ack_rate must be in [0, 1)")
    now = (now or DEFAULT_NOW).astimezone(UTC)
    rng = random.Random(f"turret-demo:{seed}")
    n_users = min(n_users, n_sessions)
    users = _make_users(rng, n_users, n_sessions, foreign_languages)
    window_start = now - timedelta(days=WINDOW_DAYS)

    events: list[DemoEvent] = []
    session_no = 0
    for user in users:
        for start in _session_starts(rng, user.n_sessions, window_start, now):
            session_id = f"demo-s{seed}-{session_no:05d}"
            events.extend(_session(rng, seed, n_sessions, session_id, session_no, user, start, now, ack_rate))
            session_no += 1
    events.sort(key=lambda e: (e.timestamp, e.event_id))
    return events


def topic_sequences(events: list[DemoEvent], *, include_acks: bool = False) -> dict[str, list[str]]:
    """Gold topic sequence of each session in time order (acks left out unless asked), for tests."""
    sessions: dict[str, list[tuple[str, str]]] = {}
    for e in events:
        if e.is_ack and not include_acks:
            continue
        sessions.setdefault(e.session_id, []).append((e.timestamp, "ack" if e.is_ack else str(e.topic)))
    return {sid: [t for _, t in sorted(seq)] for sid, seq in sessions.items()}


def transition_probabilities(events: list[DemoEvent]) -> dict[tuple[str, str], float]:
    """Observed P(next topic | topic) over consecutive non-ack turns in the same session (self-loops kept)."""
    counts: dict[tuple[str, str], int] = {}
    totals: dict[str, int] = {}
    for seq in topic_sequences(events).values():
        for a, b in zip(seq, seq[1:]):
            counts[(a, b)] = counts.get((a, b), 0) + 1
            totals[a] = totals.get(a, 0) + 1
    return {(a, b): n / totals[a] for (a, b), n in counts.items()}


# --- users and sessions --------------------------------------------------------------------------------


def _make_users(rng: random.Random, n_users: int, n_sessions: int, foreign: bool) -> list[_User]:
    # Every user gets one session, the rest go to users at random with a heavy-ish tail (some users come
    # back often), capped so sessions of one user stay days apart within the week.
    per_user = [1] * n_users
    weights = [rng.paretovariate(2.0) for _ in range(n_users)]
    for _ in range(n_sessions - n_users):
        while True:
            i = rng.choices(range(n_users), weights=weights)[0]
            if per_user[i] < 6 or all(p >= 6 for p in per_user):
                per_user[i] += 1
                break
    users = []
    for i in range(n_users):
        language = "en"
        if foreign:
            r = rng.random()
            for lang, share in LANGUAGE_USER_SHARE.items():
                if r < share:
                    language = lang
                    break
                r -= share
        users.append(
            _User(
                user_id=f"demo-user-{i:04d}",
                platform=rng.choices(PLATFORMS, weights=PLATFORM_WEIGHTS)[0],
                plan_tier=rng.choices(PLAN_TIERS, weights=PLAN_WEIGHTS)[0],
                language=language,
                n_sessions=per_user[i],
            )
        )
    return users


def _session_starts(rng: random.Random, k: int, window_start: datetime, now: datetime) -> list[datetime]:
    # Split the window into k equal slots and start one session in each: a user's sessions are then
    # about 7/k days apart, never overlapping, and all end before ``now`` (the last hour is kept free).
    span = (now - window_start).total_seconds() - 3600
    slot = span / k
    starts = []
    for j in range(k):
        offset = j * slot + rng.uniform(0.05, 0.85) * slot
        starts.append(window_start + timedelta(seconds=offset))
    return starts


def _next_topic(rng: random.Random, current: str) -> str:
    for (source, target), p in PLANTED_TRANSITIONS.items():
        if source == current:
            r = rng.random()
            if r < p:
                return target
            if r < p + SELF_TRANSITION / 2:
                return current
            return rng.choice([t for t in TOPICS if t not in (current, target)])
    if rng.random() < SELF_TRANSITION:
        return current
    return _start_topic(rng, exclude=current)


def _start_topic(rng: random.Random, exclude: str | None = None) -> str:
    candidates = [t for t in TOPICS if t != exclude]
    return rng.choices(candidates, weights=[START_WEIGHTS.get(t, 1.0) for t in candidates])[0]


def _session(
    rng: random.Random,
    seed: int,
    n_sessions: int,
    session_id: str,
    session_no: int,
    user: _User,
    start: datetime,
    now: datetime,
    ack_rate: float,
) -> list[DemoEvent]:
    if user.asked_onboarding and rng.random() < ONBOARDING_RETURN_TO_INTEGRATIONS:
        topic = "integrations"
        user.asked_onboarding = False
    else:
        topic = _start_topic(rng)
    # 3 to 12 topic turns, mean about 6.5: most conversations are short, a few go on.
    n_turns = min(12, 3 + _poisson(rng, 3.5))
    platform = user.platform if rng.random() < 0.85 else rng.choice(PLATFORMS)
    at = start
    turns: list[tuple[str | None, tuple[str, str], datetime]] = []
    previous = None
    for i in range(n_turns):
        text = _prompt(rng, topic, user, platform, follow_up=(topic == previous))
        turns.append((topic, text, at))
        if topic == "onboarding":
            user.asked_onboarding = True
        at += timedelta(seconds=rng.uniform(20, 240))
        if i < n_turns - 1 and rng.random() < ack_rate:
            turns.append((None, _ack(rng, user), at))
            at += timedelta(seconds=rng.uniform(10, 90))
        previous = topic
        topic = _next_topic(rng, topic)
    if rng.random() < ack_rate * 3:
        turns.append((None, _ack(rng, user), at))

    events = []
    for turn, (topic_of_turn, (text, language), when) in enumerate(turns):
        when = min(when, now - timedelta(seconds=1))
        digest = hashlib.sha256(f"turret-demo:{seed}:{n_sessions}:{session_no}:{turn}".encode()).hexdigest()
        is_ack = topic_of_turn is None
        events.append(
            DemoEvent(
                name=EVENT_NAME,
                session_id=session_id,
                user_id=user.user_id,
                timestamp=when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z",
                event_id="evt_" + digest[:32],
                metadata={
                    "prompt": text,
                    "platform": platform,
                    "language": language,
                    "plan_tier": user.plan_tier,
                    # Assistant latency: log-normal around ~1.2 s, longer answers for longer prompts.
                    "response_ms": int(rng.lognormvariate(math.log(900 + 4 * len(text)), 0.45)),
                },
                topic=topic_of_turn,
                is_ack=is_ack,
            )
        )
    return events


def _poisson(rng: random.Random, lam: float) -> int:
    # Knuth's method; lam is small.
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


# --- texts ---------------------------------------------------------------------------------------------


def _fill(rng: random.Random, template: str, user: _User, platform: str) -> str:
    def slot(m: re.Match[str]) -> str:
        name = m.group(1)
        if name == "platform_name":
            return PLATFORM_NAMES[platform]
        if name == "phone" and platform in ("ios", "android"):
            # Mobile users name their own device.
            return rng.choice(MOBILE_DEVICES[platform])
        return rng.choice(SLOTS[name])

    return _SLOT.sub(slot, template)


def _prompt(
    rng: random.Random, topic: str, user: _User, platform: str, *, follow_up: bool
) -> tuple[str, str]:
    """A paraphrase of ``topic`` and its language."""
    foreign = FOREIGN_TEMPLATES.get(user.language, {}).get(topic)
    # Users who write in another language fall back to English for topics without templates in it, and
    # now and then anyway (product vocabulary is English).
    if foreign and rng.random() < 0.85:
        core = _fill(rng, rng.choice(foreign), user, platform)
        return _noise(rng, core, typo_rate=0.1), user.language
    core = _fill(rng, rng.choice(TEMPLATES[topic]), user, platform)
    opener = rng.choice(FOLLOW_UP_OPENERS if follow_up else OPENERS)
    closer = rng.choice(CLOSERS)
    text = opener + core + closer
    # Long prompts carry a context sentence before or after the question.
    if rng.random() < 0.3:
        context = _fill(rng, rng.choice(CONTEXTS), user, platform).strip()
        if rng.random() < 0.4:
            text = f"{context} {text}"
        else:
            text = f"{text} {context}" if text[-1] in "?!.)" else f"{text}. {context}"
    if rng.random() < 0.08:
        # A terse form: just the key words.
        words = [w for w in core.split() if len(w) > 3]
        text = " ".join(words[: rng.randint(2, 4)]) + rng.choice(("?", "", " help"))
    return _noise(rng, text, typo_rate=0.25), "en"


def _ack(rng: random.Random, user: _User) -> tuple[str, str]:
    """An acknowledgement turn and its language."""
    if user.language != "en" and rng.random() < 0.7:
        return _noise(rng, rng.choice(FOREIGN_ACKS[user.language]), typo_rate=0.0), user.language
    text = rng.choice(ACKS)
    if rng.random() < 0.3:
        suffixes = (" 🙏", " :)", "!!", " 👍", ", bye")
        if text.startswith("thank"):
            suffixes += (" again", " so much")
        text = text.rstrip("!") + rng.choice(suffixes)
    return _noise(rng, text, typo_rate=0.1), "en"


def _noise(rng: random.Random, text: str, *, typo_rate: float) -> str:
    # Casing: most people type normally, some all lowercase, a few shout.
    r = rng.random()
    if r < 0.55:
        text = text[:1].upper() + text[1:]
    elif r < 0.9:
        text = text.lower()
    elif r < 0.93:
        text = text.upper()
    if rng.random() < typo_rate:
        text = _typo(rng, text)
    return re.sub(r"\s+", " ", text).strip()


def _typo(rng: random.Random, text: str) -> str:
    words = text.split(" ")
    candidates = [i for i, w in enumerate(words) if len(w) > 3 and w.isalpha()]
    if not candidates:
        return text
    i = rng.choice(candidates)
    w = words[i]
    j = rng.randrange(1, len(w) - 1)
    kind = rng.random()
    if kind < 0.4:  # swap two letters
        w = w[: j - 1] + w[j] + w[j - 1] + w[j + 1 :]
    elif kind < 0.7:  # drop a letter
        w = w[:j] + w[j + 1 :]
    else:  # double a letter
        w = w[:j] + w[j] + w[j:]
    words[i] = w
    return " ".join(words)
