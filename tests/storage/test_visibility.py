"""Who sees which interactions, decided in the query every reader goes through."""

from __future__ import annotations

from sqlalchemy import Engine, event, select, update
from sqlalchemy.orm import Session

from storage import history
from storage.contact_lookup import contact_by_id
from storage.models import Interaction, InteractionParticipant, SyncState
from storage.profiles import company_profile, contact_profile
from storage.users import get_user, viewer_of
from storage.visibility import Viewer
from tests.support.web import seed_team


def _subjects(timeline: history.Timeline) -> set[str | None]:
    return {entry.subject for entry in timeline.entries}


def test_a_private_thread_is_seen_only_by_the_owner_of_one_of_its_mailboxes(engine: Engine) -> None:
    team = seed_team(engine)
    with Session(engine) as session:
        among = history.contact_interactions(team.dana_id)
        readers = {
            email: viewer_of(user)
            for email in (team.admin, team.member, team.other)
            if (user := get_user(session, email)) is not None
        }
        seen = {email: history.timeline(session, v, among) for email, v in readers.items()}
        assert team.private_subject in _subjects(seen[team.other])
        assert team.private_subject not in _subjects(seen[team.member])
        assert team.private_subject not in _subjects(seen[team.admin])  # admins administer
        assert team.shared_subject in _subjects(seen[team.member])
        assert (seen[team.member].hidden, seen[team.other].hidden) == (1, 0)
        private_id = session.scalar(
            select(Interaction.id).where(Interaction.subject == team.private_subject)
        )
        assert private_id is not None
        assert history.interaction(session, readers[team.member], private_id) is None
        assert history.interaction(session, readers[team.other], private_id) is not None


def test_the_command_line_hides_private_threads_unless_asked(engine: Engine) -> None:
    team = seed_team(engine)
    with Session(engine) as session:
        among = history.contact_interactions(team.dana_id)
        hidden = history.timeline(session, Viewer.cli(), among)
        everything = history.timeline(session, Viewer.cli(include_private=True), among)
        assert team.private_subject not in _subjects(hidden) and hidden.hidden == 1
        assert team.private_subject in _subjects(everything) and everything.hidden == 0


def test_a_timeline_with_nothing_the_reader_may_see_still_counts_what_it_held_back(
    engine: Engine,
) -> None:
    """The first page's rows carry the held-back count; with no row to carry it, it is
    counted on its own."""
    team = seed_team(engine)
    with Session(engine) as session, session.begin():
        session.execute(update(Interaction).values(visibility="private"))
    with Session(engine) as session:
        among = history.contact_interactions(team.dana_id)
        shown = history.timeline(session, Viewer.cli(), among)
        everything = history.timeline(session, Viewer.cli(include_private=True), among)
    assert shown.entries == () and len(everything.entries) >= 2
    assert shown.hidden == len(everything.entries)


def test_ownership_follows_the_mailbox_not_the_connector_name(engine: Engine) -> None:
    """A connector renamed or re-pointed: its account, recorded on its row, decides."""
    team = seed_team(engine)
    with Session(engine) as session, session.begin():
        row = session.get(SyncState, "cat-mail")
        assert row is not None
        row.account = team.member
    with Session(engine) as session:
        bob = get_user(session, team.member)
        assert bob is not None
        seen = history.timeline(session, viewer_of(bob), history.contact_interactions(team.dana_id))
        assert team.private_subject in _subjects(seen)


def test_teammates_and_last_conversation_count_only_what_the_reader_may_see(engine: Engine) -> None:
    team = seed_team(engine)
    with Session(engine) as session:
        bob, cat = (get_user(session, e) for e in (team.member, team.other))
        assert bob is not None and cat is not None
        dana = contact_by_id(session, team.dana_id)
        assert dana is not None
        as_bob = contact_profile(session, viewer_of(bob), dana)
        as_cat = contact_profile(session, viewer_of(cat), dana)
        assert [(m.email, m.interactions) for m in as_bob.teammates] == [(team.member, 2)]
        assert {(m.email, m.interactions) for m in as_cat.teammates} == {
            (team.member, 2),
            (team.other, 1),
        }
        assert as_bob.last is not None and as_bob.last.subject == "Re: " + team.shared_subject
        company = company_profile(session, viewer_of(bob), team.company_id)
        assert company is not None
        assert [p.email for p in company.people] == ["dana@acme.example"]
        assert team.private_subject not in _subjects(company.timeline)
        assert company.first_at is not None and company.last_at is not None
        assert company.first_at < company.last_at


def test_a_private_thread_counts_every_teammate_in_it_for_its_owner_only(engine: Engine) -> None:
    """Bob, copied on Cat's private thread, is one of the teammates who know Dana for Cat
    (her mailbox holds it) and sees nothing of it himself; teammates are named by the user
    owning their mailbox, whoever reads."""
    team = seed_team(engine)
    with Session(engine) as session, session.begin():
        private = session.scalars(
            select(Interaction.id).where(Interaction.subject == team.private_subject)
        ).one()
        session.add(InteractionParticipant(interaction_id=private, email=team.member, role="cc"))
    with Session(engine) as session:
        bob, cat = (get_user(session, e) for e in (team.member, team.other))
        assert bob is not None and cat is not None
        among = history.contact_interactions(team.dana_id)
        as_cat = history.who_knows(session, viewer_of(cat), among)
        as_bob = history.who_knows(session, viewer_of(bob), among)
    assert [(m.email, m.name, m.interactions) for m in as_cat] == [
        (team.member, "Bob", 3),
        (team.other, "Cat", 1),
    ]
    assert [(m.email, m.name, m.interactions) for m in as_bob] == [(team.member, "Bob", 2)]


def test_my_activity_and_threads_waiting_for_an_answer(engine: Engine) -> None:
    team = seed_team(engine)
    with Session(engine) as session:
        bob = get_user(session, team.member)
        assert bob is not None
        mine = history.my_recent(session, viewer_of(bob))
        assert team.shared_subject in _subjects(mine)
        assert team.private_subject not in _subjects(mine)
        waiting = {e.subject for e in history.unanswered(session, viewer_of(bob))}
        # Dana's thread ends with Bob's reply; the hostile contact wrote last and waits.
        assert team.shared_subject not in waiting
        assert "Re: " + team.shared_subject not in waiting
        assert len(waiting) == 1


def test_a_timeline_never_reads_the_bodies_it_does_not_show(engine: Engine) -> None:
    """Entries show a snippet; a page of 25 stored bodies would be read for nothing."""
    team = seed_team(engine)
    with Session(engine) as session, session.begin():
        for row in session.scalars(select(Interaction)):
            row.body = "the whole stored body " * 50
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    with Session(engine) as session:
        viewer = Viewer.cli(include_private=True)
        shown = history.timeline(session, viewer, history.contact_interactions(team.dana_id))
        assert shown.entries
    read = [s for s in statements if "FROM interactions" in s]
    assert read and not any("interactions.body" in s for s in read)
