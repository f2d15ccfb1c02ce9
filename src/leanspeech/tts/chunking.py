"""Sentence-aware chunking of long text."""

from __future__ import annotations

import re

from leanspeech.errors import InvalidOptionError

_SENTENCE = re.compile(r"(?<=[.!?;:…。！？])\s+")
_CLAUSE = re.compile(r"(?<=[,])\s+")


def check_text(text: str, max_total: int) -> str:
    """The text with white space collapsed, or ``InvalidOptionError`` when it is blank or
    longer than ``max_total`` characters (as sent: the HTTP API declares it as maxLength)."""
    text = text or ""
    if len(text) > max_total:
        raise InvalidOptionError(
            f"input is {len(text)} characters, over the limit of {max_total} (MAX_TOTAL_LENGTH)", "input")
    cleaned = " ".join(text.replace("\ufeff", " ").split())
    if not cleaned:
        raise InvalidOptionError("input is empty (nothing to say)", "input")
    return cleaned


def chunks(text: str, max_chunk: int) -> list[str]:
    """Split at sentence ends, then at commas, then at spaces, so that no chunk is longer
    than ``max_chunk`` characters (a single longer word is cut)."""
    out: list[str] = []
    for sentence in _SENTENCE.split(text.strip()):
        if len(sentence) <= max_chunk:
            out.append(sentence)
            continue
        current = ""
        for piece in _CLAUSE.split(sentence):
            for word in piece.split(" "):
                while len(word) > max_chunk:
                    if current:
                        out.append(current)
                        current = ""
                    out.append(word[:max_chunk])
                    word = word[max_chunk:]
                candidate = f"{current} {word}".strip()
                if len(candidate) > max_chunk:
                    out.append(current)
                    current = word
                else:
                    current = candidate
        if current:
            out.append(current)
    # merge short neighbours so synthesis calls stay few
    merged: list[str] = []
    for chunk in (c for c in out if c.strip()):
        if merged and len(merged[-1]) + 1 + len(chunk) <= max_chunk // 2:
            merged[-1] = f"{merged[-1]} {chunk}"
        else:
            merged.append(chunk)
    return merged


def complete_sentences(text: str) -> tuple[list[str], str]:
    """Streamed text so far -> (the sentences it has finished, the rest). A sentence is
    finished once its end mark is followed by white space (more text came after it)."""
    parts = _SENTENCE.split(text)
    done = [p.strip() for p in parts[:-1] if p.strip()]
    return done, parts[-1]
