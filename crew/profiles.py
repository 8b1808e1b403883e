"""Compliance profiles per channel and jurisdiction: required wording, banned phrasing, restricted topics.

A profile is a YAML file: the shipped ones in ``prompts/compliance/`` (global, eu, uk, us, cn) and any in
``compliance.profiles_dir`` (same name: replaces the shipped one). Its banned phrasings and restricted topics
compile through ``crew.compliance.compile_rules`` (one matcher for all of them); its required wording is
checked like the disclaimer, so a negated or retracted warning does not count. Every rule names its source
and an action: ``block`` refuses the channel, ``needs_override`` holds the draft for a reviewer's reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

from crew.compliance import ACTIONS, Family, Source, check_compliance, compile_rules, disclaimer_problem
from crew.model import Problem
from crew.textfold import visible
from sources.errors import ConfigError


@dataclass(frozen=True)
class Wording:
    """Wording a channel's text must carry (a risk warning), in any of its languages."""

    id: str
    label: str
    texts: Mapping[str, str]  # language → the wording
    action: str
    reason: str
    source: Source

    def problem(self, rendered: str, where: str, profile: str) -> Problem | None:
        """A problem when no language's wording is in ``rendered`` as written and meant, else None."""
        vis = visible(rendered)
        reasons = [disclaimer_problem(vis, text) for text in self.texts.values()]
        if any(not r for r in reasons):
            return None
        return Problem("missing_wording", f"{self.label}: the required wording {next(iter(self.texts.values()))!r} "
                       f"{reasons[0]}", where, profile=profile, rule=self.id, source=self.source.cite(),
                       action=self.action)


@dataclass(frozen=True)
class Profile:
    """One compiled profile."""

    name: str
    title: str
    path: str
    rules: tuple[Family, ...]
    required: tuple[Wording, ...]
    notes: str = ""

    def check(self, rendered: str, where: str) -> list[Problem]:
        """This profile's problems in one format of a draft, as rendered."""
        problems = check_compliance(rendered, where, disclaimer="", require_disclaimer=False, rules=self.rules)
        problems += [p for w in self.required if (p := w.problem(rendered, where, self.name)) is not None]
        return problems


def load_profile(path: str, text: str) -> Profile:
    """Compile one profile file; ConfigError naming the file and the rule when anything in it is wrong."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"compliance profile {path}: not valid YAML ({' '.join(str(exc).split())[:200]})") from exc
    if not isinstance(data, Mapping) or not data.get("profile"):
        raise ConfigError(f"compliance profile {path}: needs a 'profile:' name and families or topics")
    if data["profile"] != "global":  # the global profile's macros ("negation", "money", …) serve every profile
        base = _global_data()
        data = {**data, "macros": {**(base.get("macros") or {}), **(data.get("macros") or {})},
                "shared": {**(base.get("shared") or {}), **(data.get("shared") or {})}}
    rules = compile_rules(data, path)
    required = tuple(_wording(spec, data.get("defaults") or {}, path) for spec in data.get("required") or [])
    return Profile(str(data["profile"]), str(data.get("title", "")), path, rules, required,
                   " ".join(str(data.get("notes", "")).split()))


def _wording(spec: Any, defaults: Mapping[str, Any], path: str) -> Wording:
    name = spec.get("id", "?") if isinstance(spec, Mapping) else "?"
    try:
        texts = {str(k): str(v) for k, v in dict(spec["wording"]).items() if str(v).strip()}
        if not texts:
            raise ValueError("no wording in any language")
        action = str(spec.get("action", defaults.get("action", "needs_override")))
        if action not in ACTIONS:
            raise ValueError(f"action {action!r} is not one of {', '.join(ACTIONS)}")
        src = spec.get("source", defaults.get("source"))
        if not isinstance(src, Mapping) or not src.get("document"):
            raise ValueError("every rule names its source document (source: {document, article})")
        return Wording(str(spec["id"]), str(spec.get("label", spec["id"])), texts, action,
                       str(spec.get("reason", "")),
                       Source(str(src["document"]), str(src.get("article") or ""), bool(src.get("verify", False))))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ConfigError(f"compliance profile {path}, rule {name}: {type(exc).__name__}: {exc}") from exc


@cache
def shipped() -> tuple[str, ...]:
    """The names of the profiles shipped in ``prompts/compliance/``, global first."""
    names = sorted(p.name[:-5] for p in files("prompts").joinpath("compliance").iterdir() if p.name.endswith(".yaml"))
    return tuple(sorted(names, key=lambda n: n != "global"))


@cache
def _global_data() -> Mapping[str, Any]:
    data = yaml.safe_load(files("prompts").joinpath("compliance", "global.yaml").read_text(encoding="utf-8"))
    return data if isinstance(data, Mapping) else {}


@cache
def _shipped(name: str) -> Profile:
    resource = files("prompts").joinpath("compliance", f"{name}.yaml")
    return load_profile(f"prompts/compliance/{name}.yaml", resource.read_text(encoding="utf-8"))


@cache
def _custom(path: str, mtime: float) -> Profile:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"compliance profile {path}: cannot be read ({exc})") from exc
    return load_profile(path, text)


def profiles(directory: Path | None = None) -> dict[str, Profile]:
    """Every profile by name: the shipped ones, then those in ``directory`` (which replace same-named ones)."""
    found = {name: _shipped(name) for name in shipped()}
    if directory is not None:
        if not directory.is_dir():
            raise ConfigError(f"compliance.profiles_dir {directory} is not a directory")
        for path in sorted(directory.glob("*.y*ml")):
            profile = _custom(str(path), path.stat().st_mtime)
            found[profile.name] = profile
    return found


def resolve(names: Iterable[str], directory: Path | None = None) -> tuple[Profile, ...]:
    """The named profiles, in order; ConfigError listing the known ones for a name that is not."""
    known = profiles(directory)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(f"unknown compliance profile(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return tuple(known[n] for n in dict.fromkeys(names))


def check_profiles(rendered: str, where: str, chosen: Sequence[Profile]) -> list[Problem]:
    """Every chosen profile's problems in one format of a draft."""
    return [p for profile in chosen for p in profile.check(rendered, where)]
