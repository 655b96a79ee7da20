"""The reader study's web page, served on loopback only (standard library HTTP server).

The page never carries the truth: images have opaque names and the answer is checked only
when scoring.
"""

import html
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, urlparse

from common.errors import UserError
from study.reader import (
    Study,
    answered,
    check_reader,
    next_image,
    record_answer,
)

LOOPBACK = "127.0.0.1"

STYLE = """
body { font-family: system-ui, sans-serif; background: #111; color: #eee; text-align: center; }
img { width: 320px; height: 320px; image-rendering: auto; border: 1px solid #444; }
button { font-size: 1.2em; margin: 0.6em; padding: 0.5em 1.6em; cursor: pointer; }
.meta { color: #aaa; }
"""


def _page(title: str, body: str) -> bytes:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head><body>{body}</body></html>"
    ).encode()


def _welcome() -> bytes:
    return _page(
        "Reader study",
        "<h1>Real or synthetic?</h1><p>You will see chest images one at a time. Some are real "
        "images of patients, some were generated. Answer each as you judge it; you can stop and "
        "come back with the same name.</p><form method='get' action='/'>"
        "<input name='reader' placeholder='your name' required maxlength='64' id='reader'>"
        "<button type='submit' id='start'>Start</button></form>",
    )


def _question(study: Study, reader: str) -> bytes:
    image = next_image(study, reader)
    done = len(answered(study, reader))
    total = len(study.images)
    if image is None:
        return _page(
            "Thank you",
            f"<h1 id='done'>All {total} images answered</h1><p>Thank you, "
            f"{html.escape(reader)}.</p>",
        )
    name = html.escape(reader, quote=True)
    return _page(
        "Real or synthetic?",
        f"<p class='meta' id='progress'>Image {done + 1} of {total} &middot; reader "
        f"{html.escape(reader)}</p><img id='image' alt='image to judge' "
        f"src='/image/{image.id}.png'><p class='meta'>Labelled: {html.escape(image.label)}</p>"
        "<form method='post' action='/answer'>"
        f"<input type='hidden' name='reader' value='{name}'>"
        f"<input type='hidden' name='image' value='{image.id}'>"
        "<button name='answer' value='real' id='real'>Real</button>"
        "<button name='answer' value='synthetic' id='synthetic'>Synthetic</button></form>",
    )


def make_handler(study: Study) -> type[BaseHTTPRequestHandler]:
    class ReaderStudyHandler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args) -> None:  # noqa: A002
            pass  # answers are logged to answers.jsonl; keep the console for the URL

        def _send(self, status: HTTPStatus, body: bytes, kind: str = "text/html") -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def _error(self, status: HTTPStatus, message: str) -> None:
            self._send(status, _page("Error", f"<p id='error'>{html.escape(message)}</p>"))

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            url = urlparse(self.path)
            if url.path.startswith("/image/") and url.path.endswith(".png"):
                image = study.by_id(url.path[len("/image/") : -len(".png")])
                if image is None:
                    return self._error(HTTPStatus.NOT_FOUND, "no such image")
                return self._send(
                    HTTPStatus.OK, study.image_path(image.id).read_bytes(), "image/png"
                )
            if url.path != "/":
                return self._error(HTTPStatus.NOT_FOUND, "no such page")
            reader = parse_qs(url.query).get("reader", [""])[0]
            if not reader:
                return self._send(HTTPStatus.OK, _welcome())
            try:
                self._send(HTTPStatus.OK, _question(study, check_reader(reader)))
            except UserError as error:
                self._error(HTTPStatus.BAD_REQUEST, str(error))

        def do_POST(self) -> None:  # noqa: N802
            if urlparse(self.path).path != "/answer":
                return self._error(HTTPStatus.NOT_FOUND, "no such page")
            length = min(int(self.headers.get("Content-Length") or 0), 4096)
            form = parse_qs(self.rfile.read(length).decode())
            field = {key: values[0] for key, values in form.items()}
            try:
                reader = check_reader(field.get("reader", ""))
                record_answer(study, reader, field.get("image", ""), field.get("answer", ""))
            except UserError as error:
                return self._error(HTTPStatus.BAD_REQUEST, str(error))
            # Post/redirect/get: reloading the page does not submit the answer again.
            self.send_response(HTTPStatus.SEE_OTHER)
            self.send_header("Location", f"/?reader={quote(reader)}")
            self.send_header("Content-Length", "0")
            self.end_headers()

    return ReaderStudyHandler


def serve(study: Study, port: int) -> ThreadingHTTPServer:
    """A server on 127.0.0.1:port (0 = any free port); call serve_forever() on it."""
    try:
        return ThreadingHTTPServer((LOOPBACK, port), make_handler(study))
    except OSError as error:
        raise UserError(
            f"cannot listen on {LOOPBACK}:{port} ({error}); try another --port"
        ) from None
