"""A damaged PDF that PDFium refuses, rewritten by pypdf so that PDFium can open it.

PDFium rebuilds a broken cross-reference table by itself, but gives up on a document whose
page tree it cannot read. Two kinds of damage are saved here:

- objects pypdf reads more leniently than PDFium (a mangled object header, say): the pages
  are copied as pypdf finds them through the page tree;
- a page tree that is lost (its root overwritten, as in a file whose tail was zeroed by a
  failed copy): the page objects that survive are found among all the file's objects and
  put in a new tree in the order they stand in the file, which is the order producers write
  them in. A page whose own objects are too damaged to copy is left out.

Text and images of the surviving pages come through; what the damage destroyed (a page's
fonts, say) stays destroyed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["repaired_copy"]

logger = logging.getLogger(__name__)


def _page_objects(reader: Any) -> list[Any]:
    """Every object of the file that says it is a page, in the order they stand in the file."""
    from pypdf import PageObject
    from pypdf.generic import DictionaryObject, IndirectObject

    offsets: dict[int, int] = {}
    for table in reader.xref.values():
        offsets.update(table)
    # Objects inside an object stream stand where their stream stands, in their own order.
    places = {number: (offset, 0) for number, offset in offsets.items()}
    for number, (stream, index) in reader.xref_objStm.items():
        places[number] = (offsets.get(stream, 0), 1 + index)
    generations = {n: g for g, table in reader.xref.items() for n in table}
    found = []
    for number, place in places.items():
        reference = IndirectObject(number, generations.get(number, 0), reader)
        try:
            obj = reference.get_object()
        except Exception:  # a damaged object is no page we can use
            logger.debug("object %d is unreadable", number, exc_info=True)
            continue
        if isinstance(obj, DictionaryObject) and obj.get("/Type") == "/Page":
            page = PageObject(reader, reference)
            page.update(obj)
            found.append((place, page))
    return [page for _place, page in sorted(found, key=lambda item: item[0])]


def _tree_pages(reader: Any) -> list[Any]:
    try:
        return list(reader.pages)
    except Exception:  # pypdf raises many kinds on a broken page tree
        logger.debug("pypdf could not read the page tree", exc_info=True)
        return []


@contextmanager
def pypdf_quiet() -> Iterator[None]:
    """Keep pypdf's warnings off the user's terminal while it reads a file for us.

    pypdf narrates every piece of damage it works around as a warning; what we make of the
    file is ours to report, and a terminal should not fill with pypdf's notes."""
    pypdf_logger = logging.getLogger("pypdf")
    level = pypdf_logger.level
    pypdf_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        pypdf_logger.setLevel(level)


def repaired_copy(path: str) -> str | None:
    """The PDF at ``path`` rewritten by pypdf next to it; None if no page could be saved."""
    try:
        import pypdf  # noqa: F401
    except ImportError:
        return None
    try:
        with pypdf_quiet():
            return _rewrite(path, f"{path}.repaired.pdf")
    except Exception:  # pypdf raises many kinds on broken files; any of them means no repair
        logger.debug("pypdf could not rewrite %s", path, exc_info=True)
        return None


def _rewrite(path: str, target: str) -> str | None:
    from pypdf import PdfReader, PdfWriter

    reader = PdfReader(path, strict=False)
    if reader.is_encrypted:
        return None
    pages = _tree_pages(reader)
    rebuilt = not pages
    if rebuilt:
        pages = _page_objects(reader)
    writer = PdfWriter()
    for number, page in enumerate(pages, start=1):
        try:
            writer.add_page(page)
        except Exception:  # this page's objects are damaged; the others may not be
            logger.info("page object %d of %s is too damaged to copy", number, path)
    if not writer.pages:
        return None
    with open(target, "wb") as handle:
        writer.write(handle)
    if rebuilt:
        logger.info("the page tree of %s is lost; rebuilt from %d pages", path, len(writer.pages))
    return target
