"""OpenSLO v1 in and out: streams of ``apiVersion: openslo/v1`` documents as sloguard SLOs, and back.

`sloguard.specfile.parser` hands a YAML stream here when it is OpenSLO (`detect.is_openslo`); the SLOs are
written as the items a sloguard/v1 file would hold and go through the same validation, so both spellings
give the same :class:`~sloguard.core.spec.Config`. ``sloguard convert --to openslo`` uses :func:`to_openslo`.
The field mapping, and what is refused, is ``docs/openslo.md``.

- `detect`: :func:`is_openslo`, without the models;
- `model`: the v1 documents as written (pydantic);
- `stream`: the stream's objects, validated, named ``document 3 (SLO name)``;
- `reader`: one SLO and what it refers to -> a sloguard SLO item, with the OpenSLO origin of each field;
- `parser`: the stream -> Config through the SLO file's schema, checks and mapping;
- `writer`: Config -> OpenSLO v1 documents.

The package imports nothing itself: `detect` is what every SLO file is asked, and the models are loaded
only for a stream that is OpenSLO (or by ``convert``).
"""
