"""Streaming slide uploads to disk under a byte cap."""

from __future__ import annotations

from django.conf import settings
from django.core.files.uploadhandler import StopUpload, TemporaryFileUploadHandler


class UploadTooLarge(Exception):
    """Raised by views when the capped handler stopped an upload."""


class CappedTemporaryFileUploadHandler(TemporaryFileUploadHandler):
    """Streams each uploaded file to a temporary file and stops past ``SLIDE_UPLOAD_MAX_BYTES``.

    Django would otherwise write any size to disk; stopping mid-stream bounds the disk a
    single request can fill.
    """

    def __init__(self, request: object = None) -> None:
        super().__init__(request)
        self.received = 0
        self.exceeded = False

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):  # noqa: ANN001, ANN201, N803
        if content_length and content_length > settings.SLIDE_UPLOAD_MAX_BYTES + 1024 * 1024:
            self.exceeded = True
        return None

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        if self.exceeded:
            raise StopUpload(connection_reset=True)
        self.received += len(raw_data)
        if self.received > settings.SLIDE_UPLOAD_MAX_BYTES:
            self.exceeded = True
            raise StopUpload(connection_reset=True)
        return super().receive_data_chunk(raw_data, start)
