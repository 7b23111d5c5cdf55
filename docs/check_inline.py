"""Checks that the code and text the book shows inline are what the repository holds.

The pages in docs/src carry their examples inline, so they read the same on a code host,
in an editor and in the built book. Each inlined part is announced by a marker naming its
source, relative to the repository root:

    <!-- inline: crates/fairway-core/src/app/config.rs#flags -->
    ```rust,ignore
    ...the lines between `ANCHOR: flags` and `ANCHOR_END: flags`...
    ```

The source is `path` (the whole file), `path#name` (the lines between the comments
`ANCHOR: name` and `ANCHOR_END: name`, as mdBook's `{{#include path:name}}`) or
`path#L3-L19` / `path#L3` (lines 3 to 19 / line 3, counted from 1). Lines holding an
`ANCHOR:` or `ANCHOR_END:` marker are never part of the text. When the marker is followed
by a code fence, the fence's body must be the source's text; otherwise the text up to a
line `<!-- /inline -->` must be (inlined Markdown).

    python3 docs/check_inline.py          # fails naming page, line and source on a difference
    python3 docs/check_inline.py --fix    # rewrites every inlined part from its source

Also fails on an mdBook include (`{{#include ...}}`) left in a page other than
docs/src/tutorial.md: the book's pages hold their text inline.
"""

import argparse
import pathlib
import re
import sys

DOCS = pathlib.Path(__file__).resolve().parent
ROOT = DOCS.parent
SOURCES = DOCS / "src"
# Pages that may still use mdBook includes (their inline markers are checked all the same).
INCLUDES_ALLOWED = {SOURCES / "tutorial.md"}

MARKER = re.compile(r"^\s{0,3}<!--\s*inline:\s*(?P<source>\S+?)\s*-->\s*$")
LOOSE_MARKER = re.compile(r"<!--\s*inline\b")
END = re.compile(r"^\s{0,3}<!--\s*/inline\s*-->\s*$")
FENCE = re.compile(r"^ {0,3}(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
INCLUDE = re.compile(r"\{\{\s*#(?:include|rustdoc_include)\b")
# mdBook's anchor comments (its `ANCHOR_START` and `ANCHOR_END` patterns).
ANCHOR_START = re.compile(r"ANCHOR:\s*(?P<name>[\w_-]+)")
ANCHOR_END = re.compile(r"ANCHOR_END:\s*(?P<name>[\w_-]+)")
LINES = re.compile(r"^L(?P<first>[1-9][0-9]*)(?:-L(?P<last>[1-9][0-9]*))?$")
ANCHOR_NAME = re.compile(r"^[\w-]+$")


class Problem(Exception):
    """A marker whose source cannot be read."""


def split_lines(text):
    """The lines of `text` as Rust's `str::lines` (and so mdBook) splits them."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def is_anchor_line(line):
    return ANCHOR_START.search(line) is not None or ANCHOR_END.search(line) is not None


def region(source):
    """The lines `source` (`path`, `path#anchor` or `path#L3-L19`) stands for, each with
    its line number in the file."""
    path, _, spec = source.partition("#")
    file = ROOT / path
    if not path or not file.is_file():
        raise Problem(f"source file {path or '(none)'} does not exist")
    try:
        lines = split_lines(file.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise Problem(f"source file {path} is not UTF-8 text: {err}") from err
    numbered = list(enumerate(lines, start=1))
    if not spec:
        picked = numbered
    elif match := LINES.match(spec):
        first = int(match["first"])
        last = int(match["last"] or first)
        if last < first:
            raise Problem(f"line range {spec} of {path} ends before it starts")
        if last > len(lines):
            raise Problem(f"line range {spec} of {path} is past its end ({len(lines)} lines)")
        picked = numbered[first - 1 : last]
    elif ANCHOR_NAME.match(spec):
        start = next((i for i, line in numbered if (m := ANCHOR_START.search(line)) and m["name"] == spec), None)
        if start is None:
            raise Problem(f"anchor {spec} not found in {path} (no `ANCHOR: {spec}` comment)")
        end = next(
            (i for i, line in numbered[start:] if (m := ANCHOR_END.search(line)) and m["name"] == spec), None
        )
        if end is None:
            raise Problem(f"anchor {spec} of {path} is never closed (no `ANCHOR_END: {spec}` comment)")
        picked = numbered[start : end - 1]
    else:
        raise Problem(f"{spec!r} is neither an anchor name nor a line range like L3-L19")
    return [(number, line) for number, line in picked if not is_anchor_line(line)]


def closes(line, fence):
    """Whether `line` closes a code block opened with `fence` (CommonMark's rule)."""
    stripped = line.lstrip(" ")
    if len(line) - len(stripped) > 3:
        return False
    run = len(stripped) - len(stripped.lstrip(fence[0]))
    return run >= len(fence) and stripped[run:].strip() == ""


class Block:
    """One inlined part of a page: its marker, and where its text starts and ends (line
    indexes into the page, `end` excluded)."""

    def __init__(self, marker, source, start, end, fence):
        self.marker, self.source, self.start, self.end, self.fence = marker, source, start, end, fence


def scan(page, lines, problems):
    """The inlined parts of `page`; malformed markers go to `problems`."""
    blocks = []
    name = page.relative_to(ROOT)
    fence = None  # the fence of the page's own code block the scan is in
    i = 0
    while i < len(lines):
        line = lines[i]
        if fence is not None:
            if closes(line, fence):
                fence = None
            i += 1
            continue
        if opened := FENCE.match(line):
            if not (opened["fence"][0] == "`" and "`" in opened["info"]):
                fence = opened["fence"]
            i += 1
            continue
        if END.match(line):
            problems.append(f"{name}:{i + 1}: `<!-- /inline -->` without an `<!-- inline: ... -->` marker before it")
            i += 1
            continue
        marker = MARKER.match(line)
        if not marker:
            if LOOSE_MARKER.search(line):
                problems.append(
                    f"{name}:{i + 1}: malformed marker; write `<!-- inline: path/from/repo/root#anchor -->` "
                    "alone on its line"
                )
            i += 1
            continue
        source = marker["source"]
        following = lines[i + 1] if i + 1 < len(lines) else ""
        if opened := FENCE.match(following):
            close = next((j for j in range(i + 2, len(lines)) if closes(lines[j], opened["fence"])), None)
            if close is None:
                problems.append(f"{name}:{i + 2}: the code block after the marker for {source} is never closed")
                return blocks
            blocks.append(Block(i, source, i + 2, close, opened["fence"]))
            i = close + 1
            continue
        end = None
        for j in range(i + 1, len(lines)):
            if END.match(lines[j]):
                end = j
                break
            if MARKER.match(lines[j]):
                break
        if end is None:
            problems.append(
                f"{name}:{i + 1}: the marker for {source} is followed neither by a code fence (on the next line) "
                "nor, later, by a closing `<!-- /inline -->`"
            )
            i += 1
            continue
        blocks.append(Block(i, source, i + 1, end, None))
        i = end + 1
    return blocks


def shown(text):
    return repr(text) if len(text) <= 100 else repr(text[:97] + "...")


def difference(name, block, body, expected):
    """A message naming the first line where `body` (the page's text) and `expected` (the
    source's) part, or None when they agree."""
    if [line for _, line in expected] == body:
        return None
    where = f"{name}:{block.marker + 1}: the text inlined from {block.source}"
    for k, (page_line, (source_number, source_line)) in enumerate(zip(body, expected)):
        if page_line != source_line:
            return (
                f"{where} differs at page line {block.start + k + 1}: {shown(page_line)}, "
                f"source line {source_number}: {shown(source_line)}"
            )
    if len(body) > len(expected):
        return f"{where} has extra lines from page line {block.start + len(expected) + 1}: {shown(body[len(expected)])}"
    source_number, source_line = expected[len(body)]
    return f"{where} lacks the source's lines from line {source_number}: {shown(source_line)}"


def check(page, fix, problems):
    """Checks (or with `fix`, rewrites) the inlined parts of `page`; returns how many it holds
    and how many it rewrote."""
    text = page.read_text(encoding="utf-8")
    lines = split_lines(text)
    name = page.relative_to(ROOT)
    if page not in INCLUDES_ALLOWED:
        for number, line in enumerate(lines, start=1):
            if INCLUDE.search(line):
                problems.append(
                    f"{name}:{number}: an mdBook include is left: inline the text with an "
                    "`<!-- inline: path -->` marker instead"
                )
    blocks = scan(page, lines, problems)
    rewritten = 0
    for block in reversed(blocks):  # from the end, so earlier indexes stay valid
        try:
            expected = region(block.source)
        except Problem as err:
            problems.append(f"{name}:{block.marker + 1}: {err}")
            continue
        if block.fence is not None:
            closing = next((number for number, line in expected if closes(line, block.fence)), None)
            if closing is not None:
                problems.append(
                    f"{name}:{block.start}: line {closing} of {block.source} would close the "
                    f"{block.fence} fence: open the block with a longer fence"
                )
                continue
        body = lines[block.start : block.end]
        message = difference(name, block, body, expected)
        if message is None:
            continue
        if fix:
            lines[block.start : block.end] = [line for _, line in expected]
            rewritten += 1
        else:
            problems.append(message)
    if rewritten:
        page.write_text("\n".join(lines) + ("\n" if text.endswith("\n") else ""), encoding="utf-8")
    return len(blocks), rewritten


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fix", action="store_true", help="rewrite every inlined part from its source")
    args = parser.parse_args()
    problems, blocks, rewritten, pages = [], 0, 0, 0
    for page in sorted(SOURCES.rglob("*.md")):
        held, fixed = check(page, args.fix, problems)
        blocks, rewritten, pages = blocks + held, rewritten + fixed, pages + 1
        if fixed:
            print(f"{page.relative_to(ROOT)}: rewrote {fixed} inlined part(s) from their sources")
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        hint = "" if args.fix else " (`python3 docs/check_inline.py --fix` rewrites differing text from its source)"
        sys.exit(f"docs: {len(problems)} problem(s) with inlined sources{hint}")
    verb = "now match" if rewritten else "match"
    print(f"docs: {blocks} inlined part(s) in {pages} pages {verb} their sources")


if __name__ == "__main__":
    main()
