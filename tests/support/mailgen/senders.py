"""Mail no customer wrote: newsletters, service notifications, spam and the mailer daemon.

These are what the filters must catch. Each sender is fixed, with the
subjects and headlines it draws from; ``bulk`` gives their mail the headers
real lists and robots carry.
"""

from __future__ import annotations

from dataclasses import dataclass

from tests.support.mailgen.people import Company, Person


@dataclass(frozen=True)
class Sender:
    """A list, a service or a robot: the mail that the filters must catch."""

    name: str
    email: str
    kind: str
    subjects: tuple[str, ...]
    lines: tuple[str, ...]
    list_id: str = ""


NEWSLETTERS = (
    Sender(
        "SaaS Weekly",
        "newsletter@saasweekly.example",
        "newsletter",
        ("SaaS Weekly #{n}: {headline}", "This week in SaaS: {headline}"),
        (
            "Pricing pages that convert",
            "The state of data contracts",
            "Why your dashboards disagree",
            "Hiring your first RevOps lead",
            "Usage-based pricing, two years on",
            "What boards ask for in a forecast",
        ),
        "SaaS Weekly <weekly.saasweekly.example>",
    ),
    Sender(
        "DataOps Digest",
        "digest@dataopsdigest.example",
        "newsletter",
        ("DataOps Digest: {headline}", "{headline} (and 4 more reads)"),
        (
            "dbt at scale",
            "Testing data pipelines like software",
            "The warehouse bill shock",
            "Lineage you can trust",
            "Streaming versus micro-batch",
        ),
        "DataOps Digest <digest.dataopsdigest.example>",
    ),
    Sender(
        "Globex News",
        "news@globex.example",
        "newsletter",
        ("Globex News: {headline}", "Inside Globex: {headline}"),
        (
            "our new Manchester office",
            "results for the quarter",
            "meet the data team",
            "a greener supply chain",
        ),
        "Globex customer news <customers.globex.example>",
    ),
    Sender(
        "London Data Meetup",
        "events@londondata.example",
        "newsletter",
        ("Upcoming: {headline}", "Tickets now open: {headline}"),
        (
            "Forecasting without tears",
            "Lightning talks night",
            "The modern data stack, revisited",
            "Summer social",
        ),
        "London Data Meetup <members.londondata.example>",
    ),
)
NOTIFIERS = (
    Sender(
        "Zoom",
        "no-reply@zoom.example",
        "notification",
        ("Cloud Recording - {headline} is now available",),
        ("Acme weekly sync", "Pipeline review", "Globex onboarding", "Demo for prospects"),
    ),
    Sender(
        "GitHub",
        "notifications@github.example",
        "notification",
        ("[northwind/insights] Pull request #{n}: {headline}",),
        (
            "Fix forecast rounding",
            "Add Excel export",
            "Bump dependencies",
            "Retry Snowflake timeouts",
        ),
    ),
    Sender(
        "Google Workspace",
        "workspace-noreply@google.example",
        "notification",
        ("Security alert: {headline}", "{headline}"),
        ("new sign-in on Mac", "Your storage is 90% full", "2-Step Verification turned on"),
    ),
    Sender(
        "Expensify",
        "no-reply@expensify.example",
        "notification",
        ("Expense report {headline} approved", "Reminder: submit {headline}"),
        ("April travel", "May client dinners", "Q2 conference"),
    ),
    Sender(
        "HubSpot",
        "noreply@notifications.hubspot.example",
        "notification",
        ("Your weekly sales report", "{headline} opened your email"),
        ("Someone at Acme Corporation", "A contact at Globex", "3 contacts"),
    ),
)
SPAMMERS = (
    Sender(
        "Rewards Centre",
        "claims@prize-centre.example",
        "spam",
        ("You have (1) unclaimed reward 🎁", "Final notice: your parcel is waiting"),
        ("Dear Customer,",),
    ),
    Sender(
        "SEO Experts",
        "rank1@seo-boost.example",
        "spam",
        ("Page 1 of Google in 30 days, guaranteed", "Quick question about northwind.example"),
        ("Hello,",),
    ),
)
DAEMON = Person(
    "Mail Delivery Subsystem",
    "mailer-daemon@googlemail.com",
    "",
    "",
    Company("Google", "googlemail.com"),
)
CALENDAR_SENDER = "Google Calendar <calendar-notification@google.com>"


def sender_person(sender: Sender) -> Person:
    domain = sender.email.split("@", 1)[1]
    return Person(sender.name, sender.email, "", "", Company(sender.name, domain), "list")
