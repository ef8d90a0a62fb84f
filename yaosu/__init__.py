"""The composition root of Yaosu: the `yaosu` command, and the wiring of every entrypoint.

It is the only package that may import every layer: `domain` ← `infra` ← `projections` ←
`api` | `consumers` ← `yaosu` (checked by the import-linter contract in `pyproject.toml`).
"""
