"""Request parsers shared by every endpoint."""
from django.conf import settings
from rest_framework.parsers import JSONParser

from sparkexport.api.middleware import too_large_error
from sparkexport.errors import InvalidRequest
from sparkexport.json_input import JSONInputError, parse_json


class NestingSafeJSONParser(JSONParser):
    """JSON bodies through the API's one bounded parser (sparkexport/json_input.py): too deep,
    duplicate keys or not JSON is a 400 saying which; over DATA_UPLOAD_MAX_MEMORY_SIZE a 413."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        text = stream.read(limit + 1) if limit is not None else stream.read()
        if limit is not None and len(text) > limit:
            raise too_large_error("The request body", limit)
        try:
            return parse_json(text)
        except JSONInputError as exc:
            raise InvalidRequest(
                f"The request body is {exc}. Send a JSON object with Content-Type: application/json."
            ) from None
