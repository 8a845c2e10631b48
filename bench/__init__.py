"""What the suite costs against faster-whisper in a script, on real speech: `python -m bench`.

Modules: `plan` (which recordings, in which order, make each bench file), `media` (the
recordings from ../shared/media rendered to MP4 and cached), `wer` (word error rate),
`baseline` (single-process faster-whisper candidates), `suite` (`vtx up` driven over
HTTP, RSS sampling, /metrics), `schedule` (interleaved repetitions), `targets` (issue
13's and 14's verdicts), `summary` (medians, ratios, tables), `report` (table, plot),
`speakers` (the speakers scenario: conversations through the suite with and without
speakers, scored), `conversations` (those conversations, with reference turns),
`speaker_score` (words on the right speaker), `run` (one run), `explore` (tuning
experiments, `python -m bench.explore`).
"""
