import time
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from demo.buyers import demo_buyers_seed
from demo.people import demo_contacts_seed
from demo.pipeline import DemoTeam, demo_pipeline_seed
from demo.webhooks import demo_endpoint_seed, demo_receiver
from leadrecord.ledger import Actor
from leadrecord.periodic import background_wait
from leadrecord.roles import Role
from leadrecord.services import user_create
from reports.models import RunStatus
from reports.runs import run_execute, run_request
from reports.selectors import run_latest_complete
from webhooks.delivery import deliveries_run

# One demo user per role; the password is for the local demo only.
DEMO_PASSWORD = "leadrecord-demo"  # noqa: S105
DEMO_USERS = (
    ("maria", Role.MARKETER),
    ("sam", Role.SALES_REP),
    ("alex", Role.SALES_REP),
    ("morgan", Role.MANAGER),
    ("priya", Role.PRIVACY_OFFICER),
    ("crm-sync", Role.INTEGRATION),
)


class Command(BaseCommand):
    help = "Create a realistic, reproducible demo data set (safe to run again)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--contacts", type=int, default=200)
        parser.add_argument("--seed", type=int, default=7)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["contacts"] < 0:
            raise CommandError("--contacts must be zero or more")
        actor = Actor.system("manage.py seed_demo")
        # One section per part of the data set, in order (later ones build on
        # earlier ones); each writes through the services and is safe to repeat.
        # One anchor for every section, so the people's times and the pipeline's meet.
        now = timezone.now()
        self.seed_users(actor)
        written = False
        if self.seed_contacts(actor, count=options["contacts"], seed=options["seed"], now=now):
            written = self.seed_pipeline(
                actor, count=options["contacts"], seed=options["seed"], now=now
            )
        if written:
            self.seed_buyers(now=now)
        # The demo CRM's endpoint hears of the attribution run; its receiver runs meanwhile.
        with demo_receiver() as url:
            self.stdout.write(f"Demo webhooks: {demo_endpoint_seed(url=url, actor=actor)}")
            self.seed_attribution(fresh_data=written)
            deliveries_run()
            background_wait(30)

    def seed_users(self, actor: Actor) -> None:
        existing = set(get_user_model().objects.values_list("username", flat=True))
        self.stdout.write(f"Demo users (password for all: {DEMO_PASSWORD}):")
        for username, role in DEMO_USERS:
            if username not in existing:
                user_create(username=username, role=role, password=DEMO_PASSWORD, actor=actor)
            self.stdout.write(f"  {username:<10} {role.label}")

    def seed_contacts(self, actor: Actor, *, count: int, seed: int, now: datetime) -> bool:
        """Write the demo people; False when they were there already."""
        started = time.monotonic()
        summary = demo_contacts_seed(count=count, seed=seed, actor=actor, now=now)
        if summary.skipped:
            self.stdout.write(
                f"Demo contacts: {summary.existing} already exist in the demo organizations; "
                "none created."
            )
            return False
        self.stdout.write(
            f"Demo contacts (seed {seed}, {time.monotonic() - started:.1f}s):\n"
            f"  organizations {summary.organizations:>5} created\n"
            f"  contacts      {summary.contacts:>5} created\n"
            f"  consents      {summary.consents:>5} recorded "
            f"({summary.consents_not_granted} refusals or withdrawals)\n"
            f"  disclosures   {summary.disclosures:>5} recorded "
            f"({summary.disclosures_withdrawn} since withdrawn)"
        )
        return True

    def seed_pipeline(self, actor: Actor, *, count: int, seed: int, now: datetime) -> bool:
        """Write the demo year; False when it was not written (already there, or no people)."""
        users = {user.get_username(): user for user in get_user_model().objects.all()}
        team = DemoTeam(
            marketer=users["maria"],
            manager=users["morgan"],
            reps=tuple(users[name] for name, role in DEMO_USERS if role == Role.SALES_REP),
            integration=users["crm-sync"],
        )
        summary = demo_pipeline_seed(count=count, seed=seed, team=team, now=now, actor=actor)
        if summary.skipped:
            self.stdout.write(f"Demo pipeline: not written ({summary.skipped}).")
            return False
        handoffs = ", ".join(f"{n} {status}" for status, n in sorted(summary.handoffs.items()))
        deals = ", ".join(f"{n} {source}-sourced" for source, n in sorted(summary.deals.items()))
        sales = ", ".join(f"{n} {kind}" for kind, n in sorted(summary.sales.items()))
        self.stdout.write(
            f"Demo pipeline ({summary.seconds:.1f}s):\n"
            f"  campaigns     {summary.campaigns:>5} (cost {summary.campaign_cost})\n"
            f"  touches       {summary.touches:>5} for {summary.people_touched} people\n"
            f"  qualified     {summary.qualified:>5} people now\n"
            f"  handoffs      {sum(summary.handoffs.values()):>5} ({handoffs})\n"
            f"  deals         {sum(summary.deals.values()):>5} ({deals}; "
            f"{summary.overrides} overridden)\n"
            f"  sale events   {sum(summary.sales.values()):>5} ({sales}; revenue {summary.revenue})"
        )
        return True

    def seed_buyers(self, *, now: datetime) -> None:
        """The buyer's side on the demo year: a published form, consented visits that
        became touches, and a person who used the portal."""
        maria = get_user_model().objects.get(username="maria")
        summary = demo_buyers_seed(marketer=Actor.of(maria), now=now)
        if summary.skipped:
            self.stdout.write(f"Demo buyer's side: not written ({summary.skipped}).")
            return
        self.stdout.write(
            f"Demo buyer's side (form {summary.form}):\n"
            f"  submissions   {summary.submissions:>5}\n"
            f"  visits        {summary.visits_kept:>5} kept with consent (now touches), "
            f"{summary.views_counted} counted without\n"
            f"  portal        {summary.portal_changes:>5} changes made by the person"
        )

    def seed_attribution(self, *, fresh_data: bool) -> None:
        """A complete attribution run over the demo year, so the dashboards' attribution,
        ROI and model tables have numbers from the first page view instead of after the
        nightly run. Only when the data is new or no run has completed yet: repeating
        seed_demo then changes nothing (an attribution run goes on the record)."""
        latest = run_latest_complete()
        if latest is not None and not fresh_data:
            self.stdout.write(
                f"Demo attribution: run #{latest.pk} is complete "
                f"({latest.conversions} conversions); none started."
            )
            return
        run, _ = run_request(trigger="seed_demo")
        run = run_execute(run_id=run.pk)
        if run.status in (RunStatus.QUEUED, RunStatus.RUNNING):
            # Another process (a worker, the nightly run) holds the run lock.
            self.stdout.write(f"Demo attribution: run #{run.pk} is {run.status} elsewhere.")
            return
        if run.status != RunStatus.COMPLETE:
            raise CommandError(f"attribution run #{run.pk} {run.status}: {run.error}")
        seconds = (run.finished_at - run.started_at).total_seconds()  # type: ignore[operator]
        self.stdout.write(
            f"Demo attribution (run #{run.pk}, {seconds:.1f}s):\n"
            f"  conversions   {run.conversions:>5} sale events with an amount\n"
            f"  touches       {run.touches:>5} on their paths\n"
            f"  models        {len(run.model_names):>5} ({', '.join(run.model_names)})"
        )
