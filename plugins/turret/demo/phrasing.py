"""How the demo's users write: the text material (templates per topic, in English and a few in Spanish,
German and French; openers, context sentences, closers, acknowledgements) and the functions that compose a
message from it, with casing and typos. ``turret.demo.dataset`` decides who says what and when.

Deterministic for a ``random.Random``: the same calls in the same order give the same texts.
"""

from __future__ import annotations

import random
import re

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


def _fill(rng: random.Random, template: str, platform: str) -> str:
    def slot(m: re.Match[str]) -> str:
        name = m.group(1)
        if name == "platform_name":
            return PLATFORM_NAMES[platform]
        if name == "phone" and platform in ("ios", "android"):
            # Mobile users name their own device.
            return rng.choice(MOBILE_DEVICES[platform])
        return rng.choice(SLOTS[name])

    return _SLOT.sub(slot, template)


def prompt(
    rng: random.Random, topic: str, language: str, platform: str, *, follow_up: bool
) -> tuple[str, str]:
    """A paraphrase of ``topic`` by a user who writes in ``language``, and the language it came out in."""
    foreign = FOREIGN_TEMPLATES.get(language, {}).get(topic)
    # Users who write in another language fall back to English for topics without templates in it, and
    # now and then anyway (product vocabulary is English).
    if foreign and rng.random() < 0.85:
        core = _fill(rng, rng.choice(foreign), platform)
        return _noise(rng, core, typo_rate=0.1), language
    core = _fill(rng, rng.choice(TEMPLATES[topic]), platform)
    opener = rng.choice(FOLLOW_UP_OPENERS if follow_up else OPENERS)
    closer = rng.choice(CLOSERS)
    text = opener + core + closer
    # Long prompts carry a context sentence before or after the question.
    if rng.random() < 0.3:
        context = _fill(rng, rng.choice(CONTEXTS), platform).strip()
        if rng.random() < 0.4:
            text = f"{context} {text}"
        else:
            text = f"{text} {context}" if text[-1] in "?!.)" else f"{text}. {context}"
    if rng.random() < 0.08:
        # A terse form: just the key words.
        words = [w for w in core.split() if len(w) > 3]
        text = " ".join(words[: rng.randint(2, 4)]) + rng.choice(("?", "", " help"))
    return _noise(rng, text, typo_rate=0.25), "en"


def ack(rng: random.Random, language: str) -> tuple[str, str]:
    """An acknowledgement turn by a user who writes in ``language``, and the language it came out in."""
    if language != "en" and rng.random() < 0.7:
        return _noise(rng, rng.choice(FOREIGN_ACKS[language]), typo_rate=0.0), language
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
