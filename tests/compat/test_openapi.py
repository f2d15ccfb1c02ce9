"""schemathesis against the live server's /openapi.json: no server error, no undocumented
status or content type, responses as declared, schema-invalid requests refused and
schema-valid ones accepted.

The audio routes get a real WAV in ``file`` (random bytes are schema-valid ``binary`` but
not audio) and are spared the "schema-valid request accepted" check: a schema cannot say
that bytes must decode as audio, or that an English-only model refuses ``language=de``;
those answers are 400s, declared with the error schema, which the other checks hold them to.
POST /plan is spared that check too (which models are on disk, and which precisions the
device runs, are not in a schema either).
"""

import io
import wave

import numpy as np
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    allow_header_conformance,
    content_type_conformance,
    missing_required_header,
    negative_data_rejection,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

pytestmark = [pytest.mark.model]

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance, negative_data_rejection, positive_data_acceptance, missing_required_header,
          unsupported_method, allow_header_conformance]
AUDIO_ROUTES = ("/v1/audio/transcriptions", "/v1/audio/translations", "/v1/audio/diarization")
# spared "schema-valid is accepted" too: which models are on disk and which precisions this
# device runs are not in a schema (their 404 and 400 are declared with the error schema)
SPARED = (*AUDIO_ROUTES, "/plan")


def _wav(seconds: float = 1.0) -> bytes:
    t = np.arange(int(16000 * seconds)) / 16000
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((np.sin(2 * np.pi * 220 * t) * 3000).astype("<i2").tobytes())
    return buf.getvalue()


WAV = _wav()


def text_fields(document: dict) -> dict[str, set[str]]:
    """Per path, the multipart form fields whose schema takes a string."""
    out: dict[str, set[str]] = {}
    refs = document.get("components", {}).get("schemas", {})
    for path, methods in document["paths"].items():
        for op in methods.values():
            content = op.get("requestBody", {}).get("content", {}).get("multipart/form-data")
            if not content:
                continue
            body = content["schema"]
            body = refs[body["$ref"].rsplit("/", 1)[1]] if "$ref" in body else body
            for name, prop in body.get("properties", {}).items():
                kinds = [prop.get("type")] + [alt.get("type") for alt in prop.get("anyOf", [])]
                if "string" in kinds:
                    out.setdefault(path, set()).add(name)
    return out


def _call(case, base_url: str, text: dict[str, set[str]]) -> None:
    negative = case.meta is not None and case.meta.generation.mode == GenerationMode.NEGATIVE
    if negative and isinstance(case.body, dict) and any(v == [] for v in case.body.values()):
        # a multipart form cannot carry an empty array: [] sends no part at all, which is the
        # same request as leaving the field out (valid), so no server can refuse it
        return
    if negative and isinstance(case.body, dict) and any(
            isinstance(v, (bool, int, float)) and k in text.get(case.path, ()) for k, v in case.body.items()):
        # nor a boolean or a number apart from text: sent into a string field, true is the text "true"
        return
    audio = case.path in AUDIO_ROUTES
    if audio and isinstance(case.body, dict) and "file" in case.body:
        case.body["file"] = WAV
    case.call_and_validate(base_url=base_url, checks=CHECKS,
                           excluded_checks=[positive_data_acceptance] if case.path in SPARED else [], timeout=120)


def test_the_server_answers_as_its_openapi_document_says(make_server):
    # Hypothesis is driven by hand (schemathesis' pytest plugin does not load on this pytest)
    from hypothesis import given
    from hypothesis.errors import Unsatisfiable

    server = make_server({"LEANSPEECH_TTS__MAX_TOTAL_LENGTH": "200"})
    schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
    import httpx

    text = text_fields(httpx.get(server.url + "/openapi.json").json())
    failures, tested, calls = [], 0, []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                      database=None)
            def check(case):
                calls.append(case.path)
                _call(case, server.url, text)

            try:
                check()
                tested += 1
            except Unsatisfiable:  # nothing to get wrong: an operation without parameters or body
                tested += 1
            except Exception as exc:  # every operation is checked; all failures are reported together
                failures.append(f"{operation.method.upper()} {operation.path} ({mode.value}): {str(exc)[:1500]}")
    assert tested + len(failures) >= 20, "fewer operations than expected in the document"
    assert not failures, "\n\n".join(failures)
    assert len(calls) >= 100 and AUDIO_ROUTES[0] in calls, f"only {len(calls)} requests were generated"
