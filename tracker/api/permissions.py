"""API-wide gates: signed in, and a read-only token never writes."""

from django.utils.translation import gettext_lazy as _
from rest_framework import permissions

from tracker.models import ApiToken

READ_ONLY_TOKEN = _("This API token is read-only: its scope does not allow writes.")


class TokenScope(permissions.BasePermission):
    """A token acts as its user, capped by its scope."""

    message = READ_ONLY_TOKEN

    def has_permission(self, request, view):
        token = request.auth
        if isinstance(token, ApiToken) and token.scope == ApiToken.Scope.READ:
            if request.method in permissions.SAFE_METHODS:
                return True
            # Refused before DRF's throttles would run: count it (a 429 once the budget is
            # spent), so this answer too carries the RateLimit headers.
            view.check_throttles(request)
            return False
        return True
