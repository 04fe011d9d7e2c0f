#!/usr/bin/env python3
"""A plain static file server for bench/fleet (python's http.server) that appends, for each
request, the path and the bytes of the body it sent to LOG. Usage: serve.py DIR PORT LOG."""
import functools
import http.server
import sys

directory, port, log = sys.argv[1], int(sys.argv[2]), sys.argv[3]


class Handler(http.server.SimpleHTTPRequestHandler):
    def copyfile(self, source, outputfile):
        sent = 0
        while True:
            chunk = source.read(65536)
            if not chunk:
                break
            outputfile.write(chunk)
            sent += len(chunk)
        with open(log, "a") as out:
            out.write(f"{self.path} {sent}\n")

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(
    ("127.0.0.1", port), functools.partial(Handler, directory=directory)
)
server.serve_forever()
