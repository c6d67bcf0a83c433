"""DRF permission classes by role (docs/api.md, "Who may call what")."""

from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from .roles import Role, user_has_role


class RolePermission(BasePermission):
    """Allows reads to ``read_roles`` and writes to ``write_roles``.

    Subclass (or use ``roles_allowed``) to state a resource's row of the
    permission table once; the view lists it in ``permission_classes``.
    """

    read_roles: frozenset[str] = frozenset()
    write_roles: frozenset[str] = frozenset()

    def has_permission(self, request: Request, view: APIView) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        roles = self.read_roles if request.method in SAFE_METHODS else self.write_roles
        return user_has_role(request.user, *roles)


def roles_allowed(*, read: Any = (), write: Any = ()) -> type[RolePermission]:
    """A permission class for a resource readable by ``read`` and writable by ``write``."""
    read_roles = frozenset(str(role) for role in read)
    write_roles = frozenset(str(role) for role in write)
    name = "Roles_" + "_".join(sorted(read_roles)) + "__" + "_".join(sorted(write_roles))
    return type(name, (RolePermission,), {"read_roles": read_roles, "write_roles": write_roles})


EVERY_ROLE = tuple(Role)
HUMAN_ROLES = (Role.MARKETER, Role.SALES_REP, Role.MANAGER, Role.PRIVACY_OFFICER)

IsManager = roles_allowed(read=[Role.MANAGER], write=[Role.MANAGER])
IsAnyRole = roles_allowed(read=EVERY_ROLE, write=EVERY_ROLE)
