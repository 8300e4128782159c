"""A small world for the webhook tests, made through the services as production would:

- ministry M coordinates plan P; companies A and B are members of it;
- task T of plan P is led by A with visibility "participants": A sees it, B does not;
- users: coordinator, manager, contributor and viewer of A; manager of B; a superuser.
"""

from dataclasses import dataclass

from plans import services
from plans.models import Task
from tests.factories import OrganizationFactory, PlanFactory, TaskFactory, UserFactory
from tracker.models import Membership, Organization, User
from tracker.services import system_user

Role = Membership.Role


@dataclass
class World:
    m: Organization
    a: Organization
    b: Organization
    task: Task
    coordinator_a: User
    manager_a: User
    contributor_a: User
    viewer_a: User
    manager_b: User
    superuser: User


def build_world() -> World:
    system = system_user()
    m = OrganizationFactory(name="Ministry M", acronym="MM", kind=Organization.Kind.MINISTRY)
    a = OrganizationFactory(name="Company A", acronym="COA")
    b = OrganizationFactory(name="Company B", acronym="COB")
    plan = PlanFactory(code="WH-1", coordinating=[m], members=[a, b])
    task = TaskFactory(
        plan=plan,
        ref="WH-01",
        title="Hydrogen pilot line",
        lead_organization=a,
        visibility=Task.Visibility.PARTICIPANTS,
    )

    def member(name, organization, role):
        user = UserFactory(username=name)
        services.membership_create(actor=system, user=user, organization=organization, role=role)
        user.refresh_from_db()
        return user

    return World(
        m=m,
        a=a,
        b=b,
        task=task,
        coordinator_a=member("coordinator_a", a, Role.COORDINATOR),
        manager_a=member("manager_a", a, Role.MANAGER),
        contributor_a=member("contributor_a", a, Role.CONTRIBUTOR),
        viewer_a=member("viewer_a", a, Role.VIEWER),
        manager_b=member("manager_b", b, Role.MANAGER),
        superuser=UserFactory(username="root", is_superuser=True, is_staff=True),
    )
