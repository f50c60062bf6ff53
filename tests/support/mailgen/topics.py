"""What a conversation is about, as slots of alternative sentences for each side.

A thread keeps one topic and each message picks one sentence per slot, so
replies stay on subject and stay reproducible. Seeded draws index into these
tuples: editing them changes the committed demo data.
"""

from __future__ import annotations

from dataclasses import dataclass

from tests.support.mailgen.people import HANNAH, MARCUS, TOM


@dataclass(frozen=True)
class Topic:
    """A kind of conversation: from each slot one alternative is picked ("" skips the slot)."""

    key: str
    starter: str
    subjects: tuple[str, ...]
    opening: tuple[tuple[str, ...], ...]
    customer: tuple[tuple[str, ...], ...] = ()
    staff: tuple[tuple[str, ...], ...] = ()
    attachment: str = ""
    copied: str = ""
    weight: int = 1


TOPICS = (
    Topic(
        "renewal",
        "staff",
        ("{company} renewal", "Renewal quote for {company}", "Your Northwind renewal"),
        (
            (
                "Your Northwind Insights subscription is up for renewal on {date}, so I wanted "
                "to get ahead of it.",
                "It's nearly time for {company}'s annual renewal ({date}), and I'd like to make "
                "it painless this year.",
                "I'm getting in touch about your Northwind Insights plan, which renews on {date}.",
            ),
            (
                "I've attached a quote for {seats} seats at your current rate, {amount} a year.",
                "The attached quote keeps your pricing for {seats} seats ({amount} a year) and "
                "adds Forecast Studio free for the first quarter.",
                "Attached is the renewal quote: {seats} seats, {amount} a year, same terms as "
                "last year.",
            ),
            (
                "Could we find 30 minutes next week to walk through it? {day} afternoon works "
                "for me.",
                "Happy to go through it with your team. Would {day} at {time} suit?",
                "Let me know if anything needs to change before it goes to procurement.",
            ),
        ),
        (
            (
                "Thanks, this looks about right.",
                "Thanks for sending this over.",
                "Sorry for the slow reply, it's been a busy week.",
            ),
            (
                "Before we sign, could you check whether the {seats} seats cover our "
                "contractors? There are about ten of them.",
                "Procurement will ask for a multi-year option. Could you quote two and three "
                "years as well?",
                "We're reviewing budgets this month, so I need a few days before I can confirm.",
                "{day} at {time} works. Please send an invite to the team.",
                "Finance has approved it. I'll have the PO to you by {day}.",
            ),
            ("", "", "Speak soon."),
        ),
        (
            ("Thanks.", "Of course.", "Good question.", "Great news, thank you!"),
            (
                "Contractors count as seats, but I can add ten read-only seats at 40% off.",
                "I'll send a revised quote with two- and three-year terms by {day}.",
                "No rush: your current term runs until {date}, so there's time.",
                "Invite sent for {day} at {time}.",
                "Once the PO arrives, {colleague} will issue the invoice the same day.",
            ),
            ("", "Let me know if anything else comes up.", "Have a good weekend."),
        ),
        attachment="quote",
        copied=TOM,
        weight=3,
    ),
    Topic(
        "enquiry",
        "customer",
        (
            "Pricing for {seats} users",
            "Enquiry about Northwind Insights",
            "Quote request",
            "Question about your Growth plan",
        ),
        (
            (
                "We're looking for something to replace our spreadsheet reporting, and Northwind "
                "came up a few times.",
                "A colleague recommended Northwind Insights for pipeline reporting.",
                "I saw your talk at the London Data Summit and wanted to follow up.",
            ),
            (
                "Could you share pricing for roughly {seats} users?",
                "Do you offer a trial, and how does pricing work for {seats} users?",
                "What would {seats} seats cost per year, and is there a discount for annual "
                "payment?",
            ),
            (
                "We use Snowflake and HubSpot today, if that matters.",
                "Ideally we'd have something running before the end of {month}.",
                "",
            ),
        ),
        (
            ("That's within budget.", "Thanks, that's helpful.", "Thanks for the quick reply."),
            (
                "Can you confirm the Snowflake connector is included?",
                "{day} works for the demo. Who else should join from our side?",
                "Could you send a sample contract so legal can start reviewing?",
                "We'd need SSO. Is that on the Growth plan or only Enterprise?",
            ),
        ),
        (
            ("Thanks for getting in touch!", "Thanks for your note.", "Great to hear from you."),
            (
                "For {seats} users you'd be on our Growth plan, which comes to about {amount} a "
                "year.",
                "SSO is included on every plan, and so is the Snowflake connector.",
                "I've asked {colleague} to send over our standard contract today.",
                "A trial is no problem: I can set up a 30-day workspace this week.",
            ),
            (
                "Would a 30-minute demo on {day} at {time} work?",
                "I'll bring {colleague}, our solutions engineer, to the call.",
                "",
            ),
        ),
        attachment="",
        copied=MARCUS,
        weight=3,
    ),
    Topic(
        "support",
        "customer",
        (
            "Dashboard not refreshing",
            "Sync errors since {weekday}",
            "Ticket {ticket}",
            "Numbers don't match between dashboard and export",
            "Snowflake connector timeouts",
        ),
        (
            (
                "Since {weekday} morning our revenue dashboard has stopped refreshing.",
                "The pipeline report shows different totals from our CRM export.",
                "We're seeing timeouts on the Snowflake sync roughly once an hour.",
            ),
            (
                "The last successful refresh was at {time}.",
                "I've attached a screenshot of the error.",
                "Nothing changed on our side as far as I know.",
            ),
            (
                "Could someone take a look? The board pack goes out on {day}.",
                "Any help appreciated.",
                "",
            ),
        ),
        (
            (
                "That was it, thanks!",
                "Still seeing it this morning, unfortunately.",
                "Confirmed, the dashboard refreshed overnight.",
            ),
            (
                "Appreciate the quick turnaround.",
                "Could we get a short write-up for our IT team?",
                "I'll keep an eye on it over the next few days.",
                "",
            ),
        ),
        (
            (
                "Thanks for flagging this, and sorry for the trouble.",
                "Thanks for your patience.",
                "Quick update on this one.",
            ),
            (
                "I've opened ticket {ticket} and {colleague} is looking at it now.",
                "This looks like the credential rotation on your warehouse; could you check "
                "whether the service account password changed last week?",
                "We found the cause: a schema change in the source table. A fix is rolling out "
                "today.",
                "The export counts deleted deals and the dashboard doesn't; I've sent the "
                "query that reconciles the two.",
            ),
            ("I'll update you by end of day.", "Let me know if it happens again.", ""),
        ),
        attachment="screenshot",
        copied=MARCUS,
        weight=3,
    ),
    Topic(
        "invoice",
        "customer",
        (
            "Invoice {invoice}",
            "PO number for invoice {invoice}",
            "Payment for {invoice}",
            "Billing contact change",
        ),
        (
            (
                "Our accounts team can't process invoice {invoice} without our PO number.",
                "Could you resend invoice {invoice}? It went to an old address.",
                "We've changed our billing contact; please send future invoices to accounts "
                "payable.",
            ),
            ("The PO is {po}.", "I've attached the purchase order.", ""),
            ("Thanks in advance.", "Many thanks.", ""),
        ),
        (
            ("Received, thank you.", "Thanks, that's sorted now."),
            (
                "Payment should go out in the next run on {day}.",
                "",
                "We pay on 30-day terms, so expect it by {date}.",
            ),
        ),
        (
            ("Thanks for letting me know.", "No problem at all."),
            (
                "I've reissued {invoice} with {po} on it; you'll find it attached.",
                "{colleague} in finance has updated the billing contact.",
                "Payment received, thank you, your account is all up to date.",
            ),
            ("", "Let me know if you need anything else for your records."),
        ),
        attachment="po",
        copied=HANNAH,
        weight=2,
    ),
    Topic(
        "onboarding",
        "staff",
        (
            "Welcome to Northwind: onboarding plan",
            "Kick-off call next week",
            "Getting {company} set up",
        ),
        (
            (
                "Welcome aboard! I'm your customer success manager and I'll be with you through "
                "onboarding.",
                "Thanks again for choosing Northwind. Here's how the first month usually goes.",
            ),
            (
                "Week one is connecting your warehouse, week two the first dashboards, and by "
                "week four your team runs the weekly review from Northwind.",
                "I've attached the onboarding plan. The first step is a kick-off call with "
                "whoever owns your data warehouse.",
            ),
            (
                "Does {day} at {time} work for the kick-off?",
                "Could you let me know who should be invited?",
            ),
        ),
        (
            ("Looking forward to it.", "Great, thanks."),
            (
                "{day} works. I'll bring our data engineer.",
                "Can we push the kick-off a week? Half the team is away.",
                "Our warehouse admin is copied in.",
            ),
        ),
        (
            ("Perfect.", "No problem.", "Thanks for confirming."),
            (
                "Invite sent for {day} at {time}.",
                "I've created your workspace; you should have an invitation in your inbox.",
                "Moved to the following {day}, same time.",
            ),
        ),
        attachment="plan",
        copied=MARCUS,
        weight=2,
    ),
    Topic(
        "meeting",
        "staff",
        (
            "Catch-up next week?",
            "Quarterly business review",
            "Agenda for {day}",
            "Following up from our call",
        ),
        (
            (
                "It's been a while since we last caught up.",
                "Thanks for your time on the call earlier.",
                "Ahead of our quarterly review, here's what I'd like to cover.",
            ),
            (
                "Usage is up 30% since {month} and I'd love to hear what's driving it.",
                "As promised, here are the notes: forecasts move to weekly, and the finance "
                "team gets read access.",
                "Agenda: adoption, the roadmap for next quarter, and your renewal timeline.",
            ),
            ("Would {day} at {time} work?", "Let me know what else you'd like to add.", ""),
        ),
        (
            ("Thanks.", "Sounds good."),
            (
                "{day} works for me.",
                "Could we do {time} instead?",
                "Please add the API rate limits to the agenda.",
            ),
        ),
        (
            ("Great.", "Thanks for coming back to me."),
            ("Invite on its way.", "Added to the agenda.", "See you then."),
        ),
        weight=3,
    ),
    Topic(
        "feature",
        "customer",
        (
            "Feature request: export to Excel",
            "Can we get SSO with Okta?",
            "Scheduling reports to Slack",
            "API access for our data team",
        ),
        (
            (
                "Our finance team keeps asking for an Excel export of the forecast view.",
                "We're rolling out Okta across the company and would like Northwind on it.",
                "Is there a way to send the weekly report to a Slack channel?",
            ),
            (
                "Is this on the roadmap?",
                "Is it something you could do this quarter?",
                "Happy to talk it through with your product team.",
            ),
        ),
        (
            ("Thanks for checking.", "Good to know."),
            ("That would work for us.", "Any idea on timing?", ""),
        ),
        (
            ("Thanks for the suggestion.", "Good news on this one."),
            (
                "Excel export ships in the next release, in about three weeks.",
                "Okta SSO is already supported; {colleague} will send you the setup guide.",
                "I've logged it with product and will let you know when it's scheduled.",
            ),
        ),
        copied=MARCUS,
    ),
    Topic(
        "contract",
        "staff",
        (
            "Order form for signature",
            "MSA redlines",
            "DPA for {company}",
            "Contract for {seats} seats",
        ),
        (
            (
                "Please find the order form attached for {seats} seats.",
                "Our legal team has been through your redlines.",
                "Here is our data processing agreement, as requested.",
            ),
            (
                "Everything is accepted except the liability cap, where we've proposed twelve "
                "months of fees.",
                "It's ready to sign; you'll get it by e-signature shortly.",
                "Let me know if your legal team has questions.",
            ),
        ),
        (
            ("Thanks.", "Received."),
            (
                "Legal is fine with twelve months. I'll sign today.",
                "We need the DPA to reference our sub-processor list.",
                "Signed and returned.",
            ),
        ),
        (
            ("Thank you!", "Thanks for turning this round so fast."),
            (
                "Countersigned copy attached.",
                "I've updated the DPA; new version attached.",
                "Welcome aboard, officially!",
            ),
        ),
        attachment="contract",
        copied=TOM,
    ),
    Topic(
        "intro",
        "staff",
        (
            "Introduction: Northwind Analytics",
            "Following up from the London Data Summit",
            "Quick question about reporting at {company}",
        ),
        (
            (
                "We met briefly at the London Data Summit last week.",
                "I noticed {company} is hiring data engineers and thought this might be timely.",
                "A mutual contact suggested I get in touch.",
            ),
            (
                "Northwind gives revenue teams one trusted forecast, straight from the warehouse.",
                "Teams like yours usually save a day a week on reporting with Northwind.",
            ),
            ("Would you be open to a 20-minute call on {day}?", "Worth a quick chat?"),
        ),
        (
            ("Thanks for reaching out.", "Thanks for the note."),
            (
                "Not right now, but try me again next quarter.",
                "{day} works. Send an invite.",
                "Could you send over a case study first?",
            ),
        ),
        (
            ("Thanks.", "Understood."),
            (
                "Will do. I'll check back in {month}.",
                "Invite sent.",
                "Case study attached: a retailer about your size.",
            ),
        ),
        weight=2,
    ),
)
TOPIC_BY_KEY = {t.key: t for t in TOPICS}

INTERNAL_TOPICS = (
    Topic(
        "approval",
        "staff",
        ("{company}: discount approval", "Approval needed: {company} multi-year deal"),
        (
            (
                "{company} want a three-year deal for {seats} seats.",
                "{company} are asking for 15% off if they sign this quarter.",
            ),
            (
                "Are you OK with 12% if they sign by {date}?",
                "I think it's worth it: they're our best reference in the sector.",
            ),
        ),
        staff=(
            (
                "Fine by me if they commit to {seats} seats.",
                "Approved.",
                "Let's hold at 10% and see what they say.",
            ),
            ("", "Anything lower needs sign-off from finance.", "Nice work."),
        ),
    ),
    Topic(
        "pipeline",
        "staff",
        ("Pipeline review {day}", "Forecast {quarter}", "Deals slipping to next quarter"),
        (
            (
                "Agenda for {day}: {quarter} commits, slipped deals, and the {company} expansion.",
                "Forecast sheet is updated. We're at 84% of the {quarter} number.",
                "Three deals look like slipping: {company} among them.",
            ),
            ("Please update your opportunities before the meeting.", "Thoughts welcome.", ""),
        ),
        staff=(
            (
                "Updated mine.",
                "Thanks.",
                "{company} is still on track, they're just slow on paperwork.",
            ),
            ("", "Can we also look at renewals due next month?"),
        ),
    ),
    Topic(
        "lunch",
        "staff",
        ("Lunch {day}?", "Team drinks on {day}", "Office closed on the bank holiday"),
        (
            (
                "Anyone up for lunch at the market on {day}? 12:30?",
                "Drinks after work on {day} to celebrate the quarter?",
                "Reminder: the office is closed on the bank holiday.",
            ),
        ),
        staff=(("I'm in!", "Count me in.", "Can't make it, sorry.", "👍"),),
    ),
    Topic(
        "handover",
        "staff",
        ("Handover: {company}", "Covering {company} while I'm away"),
        (
            (
                "I'm away from {date} for two weeks. Could you cover {company}?",
                "I'm handing {company} over to you from next month.",
            ),
            (
                "Open items: the renewal quote and a support ticket ({ticket}).",
                "They're friendly; the main contact prefers calls to email.",
            ),
        ),
        staff=(("Sure, happy to.", "No problem."), ("Send me the notes.", "")),
    ),
    Topic(
        "expenses",
        "staff",
        ("Expenses for {month}", "Reminder: timesheets", "New travel policy"),
        (
            (
                "Please submit your {month} expenses by Friday.",
                "The new travel policy is attached; it starts next month.",
                "Timesheets are due today.",
            ),
        ),
        staff=(("Done.", "Will do.", "Thanks, submitted."),),
        attachment="policy",
    ),
    Topic(
        "forward",
        "staff",
        ("",),
        (("",),),
        staff=(("On it.", "Thanks, I'll reply to them today."),),
    ),
)
INTERNAL_TOPIC_BY_KEY = {t.key: t for t in INTERNAL_TOPICS}
