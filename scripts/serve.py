#!/usr/bin/env python3
"""Serves a built site (dist/) on 127.0.0.1 the way the page wants to be served.

Every response carries Cross-Origin-Opener-Policy: same-origin and
Cross-Origin-Embedder-Policy: require-corp, which make the page cross-origin isolated: only
then do browsers give it SharedArrayBuffer, which the threaded CPU engine (pkg-mt/) needs.
Everything the page loads is same-origin, so require-corp blocks nothing. No
Cross-Origin-Resource-Policy header is sent, so other sites may still embed the widget.
--plain serves without the two headers (what a host like GitHub Pages does; the page then
isolates itself with its service worker, coi-sw.js, or runs single-threaded).

    python3 scripts/serve.py [--port 8080] [--plain] [DIR]
"""

import argparse
import functools
import http.server
import sys

ISOLATION = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
}


class Handler(http.server.SimpleHTTPRequestHandler):
    isolate = True
    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".js": "text/javascript",
        ".mjs": "text/javascript",
        ".wasm": "application/wasm",
        ".json": "application/json",
        ".svg": "image/svg+xml",
        ".safetensors": "application/octet-stream",
    }

    def end_headers(self):
        if self.isolate:
            for k, v in ISOLATION.items():
                self.send_header(k, v)
        # The page keeps the weights in Cache Storage itself; always revalidate the rest, so
        # a rebuilt site is picked up on reload.
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir", nargs="?", default="dist")
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--plain", action="store_true", help="no COOP/COEP headers")
    a = ap.parse_args()
    handler = type("H", (Handler,), {"isolate": not a.plain})
    server = http.server.ThreadingHTTPServer((a.bind, a.port), functools.partial(handler, directory=a.dir))
    what = "without isolation headers" if a.plain else "cross-origin isolated (COOP/COEP)"
    print(f"serving {a.dir} at http://{a.bind}:{a.port}/ {what}  (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
