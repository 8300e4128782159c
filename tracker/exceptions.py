"""The base of every refusal a service can raise, with the HTTP status the API answers."""


class ProblemError(Exception):
    """A rule refused the change and nothing was written.

    `http_status` is the HTTP status the API answers with, `title` the short RFC 9457 title.
    """

    http_status = 400
    title = "Bad request"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message
