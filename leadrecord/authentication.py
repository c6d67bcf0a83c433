import re

from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication

# DRF token keys are 40 hexadecimal characters.
_TOKEN_KEY = re.compile(r"[0-9a-f]{40}")


class StrictTokenAuthentication(TokenAuthentication):
    """Token auth that refuses a malformed key before it reaches the database.

    A key with a NUL byte, say, would otherwise make PostgreSQL's driver raise
    and the caller get a 500 instead of a 401.
    """

    def authenticate_credentials(self, key: str):
        if not _TOKEN_KEY.fullmatch(key):
            raise exceptions.AuthenticationFailed("Invalid token.")
        return super().authenticate_credentials(key)
