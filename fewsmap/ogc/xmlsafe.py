"""Text from data and configuration made safe for XML 1.0 documents.

ElementTree escapes ``<``, ``&`` and quotes, but writes control characters as they are, and
XML 1.0 (§2.2 Char) cannot hold them: one ``\\x01`` in a layer title or a units attribute
would make the whole capabilities document unreadable for every client.
"""

from __future__ import annotations

import re

# Everything outside XML 1.0's Char production: C0 controls but tab/LF/CR, lone surrogates,
# U+FFFE and U+FFFF.
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_safe(text: str) -> str:
    """Replace each character XML 1.0 cannot hold with U+FFFD (the replacement character)."""
    return _NOT_XML_CHAR.sub("\ufffd", text)


def is_xml_safe(text: str) -> bool:
    """Tell whether XML 1.0 can hold ``text`` as it is."""
    return _NOT_XML_CHAR.search(text) is None
