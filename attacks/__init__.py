"""Privacy attacks on a finished run: what an attacker could learn from what a consortium releases.

`privsynth attack RUN_DIR` runs the attacks registered in `attacks.registry.ATTACKS` (one per
module) and writes `attacks.json`, `attacks.md` and figures into the run folder.
"""
