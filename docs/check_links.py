"""Fails on a broken relative link in the book's sources (docs/src) or in the files they
include, and on an include left unexpanded in the built book (target/book)."""

import pathlib
import re
import sys

DOCS = pathlib.Path(__file__).parent
SOURCES = DOCS / "src"
BUILT = DOCS.parent / "target" / "book"
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def broken_links(page):
    """Relative links of `page` whose target file does not exist."""
    text = page.read_text()
    text = re.sub(r"```.*?```", "", text, flags=re.S)  # links in code are not links
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        path = (page.parent / target.split("#")[0]).resolve()
        if not path.exists():
            yield f"{page.relative_to(DOCS.parent)}: broken link {target}"


def main():
    problems = [problem for page in sorted(SOURCES.rglob("*.md")) for problem in broken_links(page)]
    for page in sorted(BUILT.rglob("*.html")) if BUILT.exists() else []:
        if "{{#include" in page.read_text():
            problems.append(f"{page}: an include was left unexpanded")
    if not BUILT.exists():
        problems.append(f"{BUILT} does not exist: build the book first (mdbook build docs)")
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        sys.exit(f"docs: {len(problems)} problem(s)")
    print(f"docs: {sum(1 for _ in SOURCES.rglob('*.md'))} pages, every relative link resolves")


if __name__ == "__main__":
    main()
