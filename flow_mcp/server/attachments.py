"""Attachments for run_flow: read from a path (stdio only) or decoded from base64, named and typed, bounded."""

from __future__ import annotations

import base64
import binascii
import mimetypes
from pathlib import Path

import anyio.to_thread

from flow_mcp.errors import InvalidArgumentError
from flow_mcp.flowhunt.flows import FlowUpload
from flow_mcp.server.arguments import MAX_ATTACHMENTS


async def load_attachments(
    attachments: list[dict[str, str]] | None, *, local: bool, max_bytes: int
) -> list[FlowUpload]:
    """The files to attach, read (a path only when the caller is on this machine) and checked."""
    if len(attachments or []) > MAX_ATTACHMENTS:
        raise InvalidArgumentError(f"At most {MAX_ATTACHMENTS} attachments per run_flow; send the rest with the next.")
    return [await _load(item, local=local, max_bytes=max_bytes) for item in attachments or []]


async def _load(item: dict[str, str], *, local: bool, max_bytes: int) -> FlowUpload:
    path, name, data = item.get("path"), item.get("name"), item.get("content_base64")
    if path is not None and data is None:
        if not local:
            raise InvalidArgumentError(
                "An attachment by path works over stdio only: this server runs on another machine, whose disk is "
                'not yours. Send the file\'s content instead: {"name": "report.pdf", "content_base64": "..."}.'
            )
        name = name or Path(path).name
        content_type = _content_type(name)
        content = await anyio.to_thread.run_sync(_read_file, path, max_bytes)
    elif data is not None and path is None and name:
        content_type = _content_type(name)
        if len(data) > (max_bytes + 2) // 3 * 4 + 4:  # past the limit before decoding: refuse without decoding
            raise _too_large(name, max_bytes)
        try:
            content = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidArgumentError(f"Attachment {name!r}: content_base64 is not valid base64.") from None
    else:
        raise InvalidArgumentError(
            'Each attachment is {"path": "/path/to/file"} (stdio only) or {"name": "file.txt", "content_base64": '
            '"..."}: give exactly one of path and content_base64, and a name with the content.'
        )
    if len(content) > max_bytes:
        raise _too_large(name, max_bytes)
    return FlowUpload(name=_file_name(name), content=content, content_type=content_type)


_MAX_FILE_NAME = 255


def _file_name(name: str) -> str:
    """The name FlowHunt gets: the last part of what was given (no directories), printable, of a sane length."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    if not base or base in (".", "..") or len(base) > _MAX_FILE_NAME or not base.isprintable():
        raise InvalidArgumentError(
            f"Attachment name {name[:80]!r} is not a file name: give a plain name of 1-{_MAX_FILE_NAME} printable "
            "characters with an extension, such as report.pdf."
        )
    return base


def _content_type(name: str) -> str:
    guessed, _ = mimetypes.guess_type(name, strict=False)
    if guessed is None:
        raise InvalidArgumentError(
            f"Attachment {name!r} has a type that cannot be told from its name: give it an extension such as .pdf, "
            ".txt, .csv, .png or .docx."
        )
    return guessed


def _read_file(path: str, max_bytes: int) -> bytes:
    file = Path(path).expanduser()
    try:
        if not file.is_file():
            raise InvalidArgumentError(f"Attachment {path!r}: no such file (give an absolute path to a file).")
        if file.stat().st_size > max_bytes:
            raise _too_large(file.name, max_bytes)
        with file.open("rb") as opened:
            content = opened.read(max_bytes + 1)  # the file may have grown since stat
    except OSError as error:
        raise InvalidArgumentError(f"Attachment {path!r} cannot be read: {error.strerror or 'unreadable'}.") from None
    return content


def _too_large(name: str, max_bytes: int) -> InvalidArgumentError:
    return InvalidArgumentError(
        f"Attachment {name!r} is larger than {max_bytes} bytes (FLOW_MCP_MAX_ATTACHMENT_BYTES): send a smaller "
        "file, or raise that setting."
    )
