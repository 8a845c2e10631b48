"""What the suite costs against faster-whisper in a script: `python -m bench`.

Modules: `media` (test files and their reference text), `wer` (word error rate),
`baseline` (single-process faster-whisper candidates), `suite` (`vtx up` driven over
HTTP, RSS sampling, /metrics), `report` (ratios, JSON record, plot), `explore`
(tuning experiments, `python -m bench.explore`).
"""
