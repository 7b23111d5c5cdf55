"""Walks the book's tutorial (docs/src/tutorial.md) as a new user would, outside this
repository: runs every shell command it shows, in order, in a new temporary directory,
checks every file it shows against the file on disk, and writes every file it asks the
reader to edit.

The page's conventions (all visible to a reader):
- A ```sh block is typed line by line. `# → text` after a command means its output
  contains `text`. `cd DIR` changes directory. `cargo run` starts the app in the
  background (on a free port: every `localhost:8080` of later commands is rewritten to
  it) and waits until it serves; it is stopped with Ctrl-C (SIGINT) at the end, and must
  exit cleanly. A GET request (curl without -XPOST) is retried for up to 10 s until its
  output holds the expected text, as views follow the log asynchronously.
- A block preceded by `<!-- walk: checkout -->` runs in the Fairway checkout instead.
- A ```rust or ```toml block whose first line is a comment naming a file (`// src/lib.rs`,
  `# Cargo.toml`) shows that file: the walk checks the file on disk is exactly the rest
  of the block. Preceded by `<!-- walk: write -->`, the block is an edit the reader makes:
  the walk writes it.

The temporary directory is removed when the walk holds and kept, named, when it fails.
"""

import difflib
import os
import pathlib
import re
import shlex
import signal
import socket
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

CHECKOUT = pathlib.Path(__file__).resolve().parent.parent
TUTORIAL = CHECKOUT / "docs" / "src" / "tutorial.md"
FENCE = re.compile(r"^```(\S*)\s*$")
FILE_LINE = re.compile(r"^(?://|#) ((?:[\w.-]+/)*[\w.-]+\.(?:rs|toml|md))$")
DIRECTIVE = re.compile(r"^<!-- walk: (\w+) -->$")


def blocks(text):
    """Yields (info, directive, body lines, line number) for each fenced block."""
    lines = text.splitlines()
    i, directive = 0, None
    while i < len(lines):
        match = DIRECTIVE.match(lines[i].strip())
        if match:
            directive = match.group(1)
            i += 1
            continue
        fence = FENCE.match(lines[i])
        if fence:
            start, body = i + 1, []
            i += 1
            while i < len(lines) and lines[i] != "```":
                body.append(lines[i])
                i += 1
            yield fence.group(1), directive, body, start
            directive = None
        elif lines[i].strip():
            directive = None
        i += 1


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Walk:
    def __init__(self, root):
        self.root = root
        self.cwd = root
        self.port = free_port()
        self.server = None
        self.server_log = root / "app.log"
        self.env = dict(os.environ)
        cargo_bin = pathlib.Path(os.environ.get("CARGO_HOME", pathlib.Path.home() / ".cargo")) / "bin"
        self.env["PATH"] = f"{cargo_bin}{os.pathsep}{self.env['PATH']}"
        self.env["CARGO_TERM_COLOR"] = "never"
        self.env.pop("CARGO_TARGET_DIR", None)

    def fail(self, where, message):
        self.stop(check=False)
        sys.exit(f"tutorial walk: {TUTORIAL.name}:{where}: {message} (kept for a look: {self.root})")

    def run_block(self, body, start, directive):
        for offset, line in enumerate(body):
            where = start + offset + 1
            command, _, expected = line.partition("# →")
            command, expected = command.strip(), expected.strip()
            if not command or command.startswith("#"):
                continue
            command = re.sub(r"\s{2,}#.*$", "", command)  # a comment after two spaces
            print(f"walk: $ {command}", flush=True)
            if command.startswith("cd "):
                self.cwd = (self.cwd / shlex.split(command)[1]).resolve()
                continue
            if command == "cargo run":
                self.start(where)
                continue
            cwd = CHECKOUT if directive == "checkout" else self.cwd
            command = command.replace("localhost:8080", f"127.0.0.1:{self.port}")
            retry = command.startswith("curl") and "-XPOST" not in command
            deadline = time.monotonic() + (10 if retry else 0)
            while True:
                done = subprocess.run(command, shell=True, cwd=cwd, env=self.env, capture_output=True, text=True)
                output = done.stdout + done.stderr
                if done.returncode == 0 and expected in output:
                    break
                if time.monotonic() >= deadline:
                    print(output)
                    if done.returncode != 0:
                        self.fail(where, f"`{command}` failed with exit status {done.returncode}")
                    self.fail(where, f"the output of `{command}` does not contain {expected!r}")
                time.sleep(0.2)
            if expected:
                print(f"walk:   → {expected}", flush=True)

    def start(self, where):
        env = dict(self.env, FAIRWAY_LISTEN=f"127.0.0.1:{self.port}")
        log = open(self.server_log, "w")
        self.server = subprocess.Popen(["cargo", "run"], cwd=self.cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                print(self.server_log.read_text())
                self.fail(where, f"`cargo run` exited with {self.server.returncode}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as answer:
                    if answer.status == 200:
                        print(f"walk:   serving on 127.0.0.1:{self.port}", flush=True)
                        return
            except OSError:
                pass
            time.sleep(0.5)
        self.fail(where, "`cargo run` did not serve within 10 minutes")

    def stop(self, check=True):
        if self.server is None:
            return
        self.server.send_signal(signal.SIGINT)
        try:
            code = self.server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.server.kill()
            code = "killed after 60 s"
        self.server = None
        log = self.server_log.read_text()
        if check and (code != 0 or "stopped" not in log):
            print(log)
            sys.exit(f"tutorial walk: the app did not stop cleanly on Ctrl-C ({code})")

    def file_block(self, info, body, start, directive):
        match = FILE_LINE.match(body[0]) if body else None
        if not match or info.split(",")[0] not in ("rust", "toml"):
            return
        path = self.cwd / match.group(1)
        shown = "\n".join(body[1:]) + "\n"
        if directive == "write":
            print(f"walk: edit {path.relative_to(self.cwd)}", flush=True)
            path.write_text(shown)
            return
        actual = path.read_text() if path.exists() else None
        if actual != shown:
            if actual is not None:
                diff = difflib.unified_diff(shown.splitlines(), actual.splitlines(), "book", str(path), lineterm="")
                print("\n".join(diff))
            self.fail(start, f"{match.group(1)} is not what the page shows ({'differs' if actual else 'missing'})")
        print(f"walk: {match.group(1)} is as shown", flush=True)


def main():
    text = TUTORIAL.read_text()
    root = pathlib.Path(tempfile.mkdtemp(prefix="fairway-tutorial-"))
    print(f"walk: in {root}", flush=True)
    walk = Walk(root)
    steps = 0
    for info, directive, body, start in blocks(text):
        if info == "sh":
            walk.run_block(body, start, directive)
            steps += 1
        elif info.split(",")[0] in ("rust", "toml"):
            walk.file_block(info, body, start, directive)
    walk.stop()
    if steps == 0:
        sys.exit("tutorial walk: the page has no shell step")
    print(f"walk: the tutorial holds, {steps} shell blocks run", flush=True)
    # The app's build is about a gigabyte: keep it only when the walk fails, to look at.
    shutil.rmtree(root)


if __name__ == "__main__":
    main()
