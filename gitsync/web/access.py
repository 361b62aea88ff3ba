"""Who may see the pages, and who may act from them.

The pages are reads, and follow the API's rule: open on loopback, behind the API token otherwise. A browser
cannot send a bearer header when it follows a link, so off loopback `/login` takes the token once and sets a
cookie (HttpOnly, SameSite=Strict) holding a keyed digest of it, never the token; changing the token ends every
such session. The cookie opens the pages only: what changes something (a run, a kill, a pause) needs the token
itself, sent by the page's script as a bearer header or typed into the Run form, so no other site can make a
logged-in browser act.
"""

from __future__ import annotations

import hashlib
import hmac

from starlette.requests import Request

from gitsync.config import Settings
from gitsync.http.guard import is_loopback

COOKIE = "gitsync_session"
_SESSION_KEY = b"gitsync web session v1"


def session_value(token: str) -> str:
    return hmac.new(token.encode("utf-8"), _SESSION_KEY, hashlib.sha256).hexdigest()


class Access:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @property
    def open_reads(self) -> bool:
        return is_loopback(self.settings.http.host)

    def token(self) -> str | None:
        return self.settings.http.api_token()

    def token_matches(self, given: str | None) -> bool:
        token = self.token()
        if not token or not given:
            return False
        return hmac.compare_digest(token.encode("utf-8"), given.strip().encode("utf-8", "replace"))

    def may_read(self, request: Request) -> bool:
        """Loopback, the session cookie, or the token as a bearer header."""
        if self.open_reads:
            return True
        token = self.token()
        if not token:
            return False
        cookie = request.cookies.get(COOKIE, "")
        if cookie and hmac.compare_digest(cookie.encode("ascii", "replace"), session_value(token).encode()):
            return True
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and self.token_matches(given)

    def refusal(self, given: str | None) -> str | None:
        """Why `given` does not allow a change (None when it does)."""
        if not self.token():
            return f"runs from the web UI need the API token: set {self.settings.http.token_env} for the daemon"
        if not given or not given.strip():
            return "give the API token (the value of the environment variable the daemon's http.token_env names)"
        if not self.token_matches(given):
            return "wrong API token"
        return None


def local_path(target: str | None) -> str:
    """Where to go back to after the login: a path of this site only (never `//host` nor a scheme)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
